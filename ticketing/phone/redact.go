package phone

import (
	"context"
	"log/slog"
	"regexp"
)

// Digit runs that are personal numbers: an 18-character ID number, a mainland mobile (optionally after 86/0086).
var (
	idRun     = regexp.MustCompile(`\b[1-9][0-9]{16}[0-9Xx]\b`)
	mobileRun = regexp.MustCompile(`\b(?:0086|86)?1[3-9][0-9]{9}\b`)
)

// Redact masks ID and mobile numbers in free text: 430903********1234, 138****5678.
func Redact(s string) string {
	s = idRun.ReplaceAllStringFunc(s, func(m string) string { return m[:6] + "********" + m[14:] })
	return mobileRun.ReplaceAllStringFunc(s, func(m string) string { return m[:len(m)-8] + "****" + m[len(m)-4:] })
}

// RedactHandler wraps a slog.Handler so that no log line carries a full phone or ID number: string attributes
// are passed through Redact, and an attribute named "data" (the raw SIP message sipgo logs when it cannot parse
// one, From and Contact headers included) is replaced by its length.
func RedactHandler(h slog.Handler) slog.Handler { return redactHandler{h} }

type redactHandler struct{ next slog.Handler }

func (r redactHandler) Enabled(ctx context.Context, l slog.Level) bool { return r.next.Enabled(ctx, l) }

func (r redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.next.Handle(ctx, out)
}

func (r redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(as))
	for i, a := range as {
		red[i] = redactAttr(a)
	}
	return redactHandler{r.next.WithAttrs(red)}
}

func (r redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{r.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if a.Key == "data" {
			return slog.Int("data_bytes", len(v.String()))
		}
		return slog.String(a.Key, Redact(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, len(g))
		for i, x := range g {
			out[i] = redactAttr(x)
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, Redact(err.Error()))
		}
	}
	return a
}
