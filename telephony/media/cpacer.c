//go:build linux && cgo

// The C pacer's thread. Everything here runs either on that thread or under the engine's mutex, which Go holds
// only for a few field writes (the mutex inherits priority, so a Go thread holding it is never left behind a
// CPU burner while the real-time thread waits for it). The thread never waits for Go: it posts events and writes
// an eventfd that a Go goroutine reads.

#define _GNU_SOURCE
#include "cpacer.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#define HP_TICK_NS 20000000LL // one packet time
#define HP_MAX_CATCHUP 3      // packets per stream per wake-up when the thread woke late (as the Go loops)
#define HP_HDR 12             // RTP header without CSRC or extension

struct hp_stream {
	int idx; // position in e->streams (thread and mutex)
	int fd;
	struct sockaddr_storage addr;
	socklen_t alen;
	int retarget; // Go asked to send from newfd to newaddr from the next tick on
	int newfd;
	struct sockaddr_storage newaddr;
	socklen_t newalen;

	uint8_t pt, silence;
	uint32_t ssrc, ts, frame;
	uint16_t seq;
	int marker;

	const uint8_t *audio; // the play being sent; NULL: silence
	size_t len, pos;
	int loop;
	uint64_t play;

	const uint8_t *nx_audio; // the next play, started on the next tick with the marker bit
	size_t nx_len;
	int nx_loop;
	uint64_t nx_play;

	int stopping, stop_code, gone;
	int idle; // consecutive silence packets

	// This tick's work (thread only).
	uint8_t *pk; // HP_MAX_CATCHUP packets of HP_HDR + frame bytes
	int npk;
	uint64_t ended[HP_MAX_CATCHUP];
	int nended;
	int senderr;
};

struct hp_engine {
	pthread_mutex_t mu;
	pthread_t th;
	int efd;
	int linger, idle;
	hp_stream **streams;
	int n, cap;
	hp_stream **batch; // thread only
	int bn, bcap;
	hp_event *ev;
	int nev, evcap;
	int exiting;
	_Atomic uint64_t wakeups, packets, silence, drops, late;
};

static int64_t hp_now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

// hp_post appends an event (under mu). It grows the queue rather than drop an event: Go drains it every tick.
static int hp_post(hp_engine *e, int kind, int err, uint64_t id, hp_stream *s) {
	if (e->nev == e->evcap) {
		int cap = e->evcap ? 2 * e->evcap : 256;
		hp_event *ev = realloc(e->ev, (size_t)cap * sizeof(hp_event));
		if (ev == NULL) {
			return 0; // out of memory: nothing sensible left to do; Go's Play would wait for its context
		}
		e->ev = ev;
		e->evcap = cap;
	}
	hp_event *v = &e->ev[e->nev++];
	memset(v, 0, sizeof(*v));
	v->kind = kind;
	v->err = err;
	v->id = id;
	v->stream = s;
	if (s != NULL) {
		v->seq = s->seq;
		v->ts = s->ts;
	}
	return 1;
}

static void hp_wake(hp_engine *e) {
	uint64_t one = 1;
	ssize_t r = write(e->efd, &one, sizeof(one)); // EAGAIN (counter full) still leaves Go woken
	(void)r;
}

// hp_remove takes a stream off the schedule (under mu), closes its socket and tells Go.
static void hp_remove(hp_engine *e, hp_stream *s, int code) {
	int i = s->idx;
	s->gone = 1;
	close(s->fd);
	s->fd = -1;
	if (s->retarget) {
		close(s->newfd);
		s->retarget = 0;
	}
	if (s->audio != NULL) {
		hp_post(e, HP_EV_PLAY, code, s->play, NULL);
		s->audio = NULL;
	}
	if (s->nx_audio != NULL) {
		hp_post(e, HP_EV_PLAY, code, s->nx_play, NULL);
		s->nx_audio = NULL;
	}
	hp_post(e, HP_EV_STREAM, code, 0, s);
	e->n--;
	e->streams[i] = e->streams[e->n];
	e->streams[i]->idx = i;
	e->streams[e->n] = NULL;
}

static void hp_put16(uint8_t *p, uint16_t v) {
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void hp_put32(uint8_t *p, uint32_t v) {
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

// hp_build (under mu) drops the streams Go stopped and writes this tick's packets of the others into their
// buffers; the sends happen after the mutex is released.
static int hp_build(hp_engine *e, int due) {
	int posted = 0;
	if (e->bcap < e->n) {
		int cap = e->n + e->n / 2 + 16;
		hp_stream **b = realloc(e->batch, (size_t)cap * sizeof(hp_stream *));
		if (b == NULL) {
			return 0;
		}
		e->batch = b;
		e->bcap = cap;
	}
	e->bn = 0;
	uint64_t audio = 0, silence = 0;
	for (int i = 0; i < e->n;) {
		hp_stream *s = e->streams[i];
		if (s->stopping) {
			hp_remove(e, s, s->stop_code);
			posted = 1;
			continue; // the last stream moved to i
		}
		if (s->retarget) {
			close(s->fd);
			s->fd = s->newfd;
			s->addr = s->newaddr;
			s->alen = s->newalen;
			s->retarget = 0;
		}
		s->npk = 0;
		s->nended = 0;
		s->senderr = 0;
		for (int k = 0; k < due; k++) {
			if (s->audio == NULL && s->nx_audio != NULL) {
				s->audio = s->nx_audio;
				s->len = s->nx_len;
				s->loop = s->nx_loop;
				s->play = s->nx_play;
				s->pos = 0;
				s->marker = 1;
				s->nx_audio = NULL;
			}
			uint8_t *p = s->pk + (size_t)k * (HP_HDR + s->frame);
			p[0] = 0x80; // version 2
			p[1] = (uint8_t)((s->marker ? 0x80 : 0) | (s->pt & 0x7f));
			hp_put16(p + 2, s->seq);
			hp_put32(p + 4, s->ts);
			hp_put32(p + 8, s->ssrc);
			if (s->audio != NULL) {
				memcpy(p + HP_HDR, s->audio + s->pos, s->frame);
				s->pos += s->frame;
				s->idle = 0;
				audio++;
				if (s->pos + s->frame > s->len) {
					if (s->loop) {
						s->pos = 0;
					} else {
						// Its last packet is out with this tick: Go hears of it after the send, and the
						// stream goes on with silence until the next play or the linger time.
						s->ended[s->nended++] = s->play;
						s->audio = NULL;
					}
				}
			} else {
				memset(p + HP_HDR, s->silence, s->frame);
				s->idle++;
				silence++;
			}
			s->marker = 0;
			s->seq++;
			s->ts += s->frame;
			s->npk++;
		}
		e->batch[e->bn++] = s;
		i++;
	}
	atomic_fetch_add(&e->packets, audio);
	atomic_fetch_add(&e->silence, silence);
	return posted;
}

// hp_send writes the packets built for this tick, without the mutex: fd, addr and pk belong to the thread.
static void hp_send(hp_engine *e) {
	uint64_t drops = 0;
	for (int i = 0; i < e->bn; i++) {
		hp_stream *s = e->batch[i];
		for (int k = 0; k < s->npk; k++) {
			uint8_t *p = s->pk + (size_t)k * (HP_HDR + s->frame);
			ssize_t r = sendto(s->fd, p, HP_HDR + s->frame, MSG_DONTWAIT | MSG_NOSIGNAL,
			                   (struct sockaddr *)&s->addr, s->alen);
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS || errno == EINTR) {
					drops++; // socket buffer full: the packet is lost, as a congested network would lose it
					continue;
				}
				s->senderr = errno;
				break;
			}
		}
	}
	if (drops) {
		atomic_fetch_add(&e->drops, drops);
	}
}

// hp_finish (under mu) tells Go of the plays whose audio is out, and removes streams that failed or lingered.
static int hp_finish(hp_engine *e) {
	int posted = 0;
	for (int i = 0; i < e->bn; i++) {
		hp_stream *s = e->batch[i];
		for (int k = 0; k < s->nended; k++) {
			hp_post(e, HP_EV_PLAY, 0, s->ended[k], NULL);
			posted = 1;
		}
		if (s->senderr) {
			hp_remove(e, s, s->senderr);
			posted = 1;
		} else if (s->audio == NULL && s->nx_audio == NULL && s->idle >= e->linger) {
			hp_remove(e, s, 0);
			posted = 1;
		}
	}
	e->bn = 0;
	return posted;
}

static void *hp_run(void *arg) {
	hp_engine *e = arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); // signals are Go's business, on Go's threads
	int64_t start = hp_now(), sent = 0;
	int idle = 0;
	for (;;) {
		// Tick k is due at start + k×20 ms on the monotonic clock, however late the one before ran.
		int64_t at = start + (sent + 1) * HP_TICK_NS;
		struct timespec ts = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
		}
		int64_t due = (hp_now() - start) / HP_TICK_NS - sent;
		if (due < 1) {
			due = 1;
		}
		if (due > 1) {
			atomic_fetch_add(&e->late, 1);
		}
		if (due > HP_MAX_CATCHUP) {
			// Far behind (the machine stood still): send what a jitter buffer absorbs, drop the backlog.
			sent += due - HP_MAX_CATCHUP;
			due = HP_MAX_CATCHUP;
		}
		atomic_fetch_add(&e->wakeups, 1);
		pthread_mutex_lock(&e->mu);
		int posted = hp_build(e, (int)due);
		pthread_mutex_unlock(&e->mu);
		hp_send(e);
		pthread_mutex_lock(&e->mu);
		posted |= hp_finish(e);
		if (e->n == 0 && ++idle >= e->idle) {
			e->exiting = 1;
			hp_post(e, HP_EV_EXIT, 0, 0, NULL);
			pthread_mutex_unlock(&e->mu);
			hp_wake(e);
			return NULL;
		}
		if (e->n > 0) {
			idle = 0;
		}
		pthread_mutex_unlock(&e->mu);
		if (posted) {
			hp_wake(e);
		}
		sent += due;
	}
}

hp_engine *hp_new(int prio, int linger, int idle, int *policy, int *got_prio, int *err) {
	*err = 0;
	hp_engine *e = calloc(1, sizeof(hp_engine));
	if (e == NULL) {
		*err = ENOMEM;
		return NULL;
	}
	e->linger = linger;
	e->idle = idle;
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->efd < 0) {
		*err = errno;
		free(e);
		return NULL;
	}
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&e->mu, &ma);
	pthread_mutexattr_destroy(&ma);

	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setinheritsched(&a, PTHREAD_EXPLICIT_SCHED);
	struct sched_param sp = {0};
	int rc = EPERM;
	if (prio > 0) {
		sp.sched_priority = prio;
		pthread_attr_setschedpolicy(&a, SCHED_FIFO);
		pthread_attr_setschedparam(&a, &sp);
		rc = pthread_create(&e->th, &a, hp_run, e);
		*err = rc; // EPERM: no CAP_SYS_NICE and no RLIMIT_RTPRIO that covers prio
	}
	if (rc != 0) {
		sp.sched_priority = 0;
		pthread_attr_setschedpolicy(&a, SCHED_OTHER);
		pthread_attr_setschedparam(&a, &sp);
		rc = pthread_create(&e->th, &a, hp_run, e);
	}
	pthread_attr_destroy(&a);
	if (rc != 0) {
		*err = rc;
		pthread_mutex_destroy(&e->mu);
		close(e->efd);
		free(e);
		return NULL;
	}
	int pol = 0;
	if (pthread_getschedparam(e->th, &pol, &sp) == 0) {
		*policy = pol;
		*got_prio = sp.sched_priority;
	}
	return e;
}

int hp_efd(hp_engine *e) { return e->efd; }

static void hp_sockaddr(struct sockaddr_storage *ss, socklen_t *len, int family, const uint8_t *ip, int port) {
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		memcpy(&a->sin_addr, ip, 4);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		memcpy(&a->sin6_addr, ip, 16);
		*len = sizeof(*a);
	}
}

hp_stream *hp_add(hp_engine *e, int fd, int family, const uint8_t *ip, int port, uint8_t pt, uint8_t silence,
                  uint32_t ssrc, uint16_t seq, uint32_t ts, uint32_t frame, uint64_t play, const uint8_t *audio,
                  size_t len, int loop) {
	hp_stream *s = calloc(1, sizeof(hp_stream));
	if (s == NULL) {
		return NULL;
	}
	s->pk = malloc((size_t)HP_MAX_CATCHUP * (HP_HDR + frame));
	if (s->pk == NULL) {
		free(s);
		return NULL;
	}
	s->fd = fd;
	hp_sockaddr(&s->addr, &s->alen, family, ip, port);
	s->pt = pt;
	s->silence = silence;
	s->ssrc = ssrc;
	s->seq = seq;
	s->ts = ts;
	s->frame = frame;
	s->nx_audio = audio; // taken on the first tick, with the marker bit
	s->nx_len = len;
	s->nx_loop = loop;
	s->nx_play = play;
	pthread_mutex_lock(&e->mu);
	if (e->exiting) {
		pthread_mutex_unlock(&e->mu);
		free(s->pk);
		free(s);
		return NULL; // the caller still owns fd
	}
	if (e->n == e->cap) {
		int cap = e->cap ? 2 * e->cap : 64;
		hp_stream **st = realloc(e->streams, (size_t)cap * sizeof(hp_stream *));
		if (st == NULL) {
			pthread_mutex_unlock(&e->mu);
			free(s->pk);
			free(s);
			return NULL;
		}
		e->streams = st;
		e->cap = cap;
	}
	s->idx = e->n;
	e->streams[e->n++] = s;
	pthread_mutex_unlock(&e->mu);
	return s;
}

int hp_play(hp_engine *e, hp_stream *s, uint64_t id, const uint8_t *audio, size_t len, int loop) {
	int rc = 0;
	pthread_mutex_lock(&e->mu);
	if (s->gone || s->stopping) {
		rc = -1;
	} else if (s->nx_audio != NULL) {
		rc = -2;
	} else {
		s->nx_audio = audio;
		s->nx_len = len;
		s->nx_loop = loop;
		s->nx_play = id;
	}
	pthread_mutex_unlock(&e->mu);
	return rc;
}

void hp_stop(hp_engine *e, hp_stream *s, int code) {
	pthread_mutex_lock(&e->mu);
	if (!s->gone && !s->stopping) {
		s->stopping = 1;
		s->stop_code = code;
	}
	pthread_mutex_unlock(&e->mu);
}

int hp_retarget(hp_engine *e, hp_stream *s, int fd, int family, const uint8_t *ip, int port) {
	int rc = 0;
	pthread_mutex_lock(&e->mu);
	if (s->gone || s->stopping) {
		rc = -1; // the caller still owns fd
	} else {
		if (s->retarget) {
			close(s->newfd);
		}
		s->newfd = fd;
		hp_sockaddr(&s->newaddr, &s->newalen, family, ip, port);
		s->retarget = 1;
	}
	pthread_mutex_unlock(&e->mu);
	return rc;
}

void hp_position(hp_engine *e, hp_stream *s, uint16_t *seq, uint32_t *ts) {
	pthread_mutex_lock(&e->mu);
	*seq = s->seq;
	*ts = s->ts;
	pthread_mutex_unlock(&e->mu);
}

int hp_drain(hp_engine *e, hp_event *out, int max, int *more) {
	pthread_mutex_lock(&e->mu);
	int n = e->nev < max ? e->nev : max;
	memcpy(out, e->ev, (size_t)n * sizeof(hp_event));
	memmove(e->ev, e->ev + n, (size_t)(e->nev - n) * sizeof(hp_event));
	e->nev -= n;
	*more = e->nev > 0;
	pthread_mutex_unlock(&e->mu);
	return n;
}

void hp_stats_read(hp_engine *e, hp_stats *st) {
	st->wakeups = atomic_load(&e->wakeups);
	st->packets = atomic_load(&e->packets);
	st->silence = atomic_load(&e->silence);
	st->drops = atomic_load(&e->drops);
	st->late = atomic_load(&e->late);
}

void hp_join_free(hp_engine *e) {
	pthread_join(e->th, NULL);
	pthread_mutex_destroy(&e->mu);
	free(e->streams);
	free(e->batch);
	free(e->ev);
	free(e); // efd is closed by Go, which reads it
}

void hp_free_stream(hp_stream *s) {
	free(s->pk);
	free(s);
}
