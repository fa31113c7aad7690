package media

import (
	"context"
	"log/slog"
)

// rrForeignSSRC is what diago logs (at Warn, once per RTCP receiver report) when the far end reports on an SSRC
// its RTP session did not write. With the C pacer that is every report on the prompts' SSRC (see
// cpacer_linux.go): at 1,500 calls, a few hundred lines a second that say nothing wrong.
const rrForeignSSRC = "Reception report SSRC does not match our internal"

// DiagoLogHandler wraps the handler given to diago's media layer (dmedia.SetDefaultLogger) and drops its
// warning about receiver reports on the pacer's SSRC; everything else passes.
func DiagoLogHandler(h slog.Handler) slog.Handler { return diagoLog{h} }

type diagoLog struct{ slog.Handler }

func (d diagoLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && r.Message == rrForeignSSRC {
		return nil
	}
	return d.Handler.Handle(ctx, r)
}

func (d diagoLog) WithAttrs(as []slog.Attr) slog.Handler { return diagoLog{d.Handler.WithAttrs(as)} }
func (d diagoLog) WithGroup(g string) slog.Handler       { return diagoLog{d.Handler.WithGroup(g)} }
