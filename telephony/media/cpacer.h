//go:build linux && cgo

// The C pacer: one POSIX thread, outside the Go scheduler, that sends the RTP packets of many calls on a 20 ms
// grid. See cpacer_linux.go for the why and for the Go side.

#ifndef HOTLINE_CPACER_H
#define HOTLINE_CPACER_H

#include <stddef.h>
#include <stdint.h>

// Event kinds, read by Go with hp_drain.
enum {
	HP_EV_PLAY = 1,   // a play's audio was sent to its end (err 0), or the play was ended (err ≠ 0)
	HP_EV_STREAM = 2, // a stream was removed (its fd closed); seq/ts are where it stopped. Go frees it.
	HP_EV_EXIT = 3,   // the thread has stopped (no stream for idle ticks); Go joins it and frees the engine
};

// Codes a play ends with besides 0 and a positive errno.
enum {
	HP_STOPPED = -1, // hp_stop: the caller's context ended (or Go removed the stream)
	HP_CLOSED = -2,  // hp_stop: the call's socket was closed
	HP_MOVED = -3,   // hp_stop: the call's media session changed and cannot be followed
};

typedef struct hp_stream hp_stream;
typedef struct hp_engine hp_engine;

typedef struct {
	int kind;
	int err;
	uint64_t id; // HP_EV_PLAY
	hp_stream *stream;
	uint16_t seq; // HP_EV_STREAM: the next sequence number and timestamp the stream would have used
	uint32_t ts;
} hp_event;

typedef struct {
	uint64_t wakeups, packets, silence, drops, late;
} hp_stats;

hp_engine *hp_new(int prio, int linger, int idle, int *policy, int *got_prio, int *err);
int hp_efd(hp_engine *e);
hp_stream *hp_add(hp_engine *e, int fd, int family, const uint8_t *ip, int port, uint8_t pt, uint8_t silence,
                  uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t frame, uint64_t play, const uint8_t *audio,
                  size_t len, int loop);
int hp_play(hp_engine *e, hp_stream *s, uint64_t id, const uint8_t *audio, size_t len, int loop);
void hp_stop(hp_engine *e, hp_stream *s, int code);
int hp_retarget(hp_engine *e, hp_stream *s, int fd, int family, const uint8_t *ip, int port);
void hp_position(hp_engine *e, hp_stream *s, uint16_t *seq, uint32_t *ts);
int hp_drain(hp_engine *e, hp_event *out, int max, int *more);
void hp_stats_read(hp_engine *e, hp_stats *st);
void hp_join_free(hp_engine *e);
void hp_free_stream(hp_stream *s);

#endif
