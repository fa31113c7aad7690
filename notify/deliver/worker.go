package deliver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"hotline/notify/sms"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/phone"
)

// claimed is a delivery a worker holds for one attempt.
type claimed struct {
	id               int64
	channel          string
	recipient        string
	address          string
	sealed           []byte
	masked           string
	title, body      string
	providerTemplate string
	params           [][2]string
	idemKey          string
	attempts         int
	budgetFrom       int
	eventAt          time.Time
	ticketID         *int64
}

type outcome struct {
	ref string
	err error
}

func (s *Service) runWorkers(ctx context.Context) error {
	lanes := (s.opt.Concurrency + s.opt.Batch - 1) / s.opt.Batch
	g, ctx := errgroup.WithContext(ctx)
	for range lanes {
		g.Go(func() error { return s.lane(ctx) })
	}
	return g.Wait()
}

// lane claims, sends and records one batch after another; it rests for Poll (or until kicked) when nothing is due.
func (s *Service) lane(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		n, err := s.SendDue(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := s.opt.Poll
		if err != nil {
			s.log.Warn("notify: send round failed", "err", err)
			wait = time.Second
		} else if n == s.opt.Batch {
			continue
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
			if !t.Stop() {
				<-t.C
			}
		case <-t.C:
		}
	}
}

// SendDue claims up to Batch due deliveries, sends them concurrently and records the answers. It returns how
// many it claimed.
func (s *Service) SendDue(ctx context.Context) (int, error) {
	now := s.now()
	var open []string
	for ch, b := range s.breakers {
		if b.open(now) {
			open = append(open, ch)
		}
	}
	if open == nil {
		open = []string{}
	}
	rows, err := s.db.Query(ctx, `WITH c AS (
			SELECT id FROM notify_deliveries
			WHERE status = 'pending' AND next_at <= $1 AND NOT (channel = ANY($2))
			ORDER BY next_at LIMIT $3 FOR UPDATE SKIP LOCKED
		), u AS (
			UPDATE notify_deliveries d SET attempts = d.attempts + 1, next_at = $4
			FROM c WHERE d.id = c.id
			RETURNING d.id, d.channel, d.recipient, d.address, d.address_sealed, d.address_masked, d.title, d.body,
				d.provider_template, d.params, d.idem_key, d.attempts, d.budget_from, d.event_at, d.ticket_id
		), a AS (
			INSERT INTO notify_attempts (delivery_id, n, idem_key, started_at) SELECT id, attempts, idem_key, $1 FROM u
		)
		SELECT * FROM u`, now, open, s.opt.Batch, now.Add(s.opt.Lease))
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		var params []byte
		err := r.Scan(&c.id, &c.channel, &c.recipient, &c.address, &c.sealed, &c.masked, &c.title, &c.body,
			&c.providerTemplate, &params, &c.idemKey, &c.attempts, &c.budgetFrom, &c.eventAt, &c.ticketID)
		if err == nil {
			err = json.Unmarshal(params, &c.params)
		}
		return c, err
	})
	if err != nil {
		return 0, fmt.Errorf("notify: claim: %w", err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	outs := make([]outcome, len(batch))
	var wg sync.WaitGroup
	for i, c := range batch {
		wg.Go(func() {
			// A send under way finishes (within SendTimeout) even when the process is stopping, so its answer is
			// recorded rather than left to the lease.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opt.SendTimeout)
			defer cancel()
			ref, err := s.send(sctx, c)
			outs[i] = outcome{ref: ref, err: err}
		})
	}
	wg.Wait()
	if s.opt.afterSend != nil {
		for _, c := range batch {
			if err := s.opt.afterSend(c.id); err != nil {
				return 0, err // as if the process died here: the answers are never recorded
			}
		}
	}
	// Record even when ctx ended during the sends.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.record(rctx, batch, outs); err != nil {
		return 0, err
	}
	return len(batch), nil
}

// send opens the address (a phone only now) and calls the channel.
func (s *Service) send(ctx context.Context, c claimed) (string, error) {
	switch c.channel {
	case ChannelSMS:
		if s.opt.Channels.SMS == nil {
			return "", errNoChannel
		}
		ph, err := s.opt.Box.Open(pii.FieldPhone, c.sealed)
		if err != nil {
			return "", permanentError{fmt.Errorf("open phone: %w", err)}
		}
		ps := make([]sms.Param, len(c.params))
		for i, p := range c.params {
			ps[i] = sms.Param{Name: p[0], Value: p[1]}
		}
		return s.opt.Channels.SMS.Send(ctx, sms.Message{Phone: ph, Template: c.providerTemplate, Params: ps, Text: c.body, IdemKey: c.idemKey})
	case ChannelWecomRobot:
		if s.opt.Channels.Robot == nil {
			return "", errNoChannel
		}
		return "", s.opt.Channels.Robot.Send(ctx, c.address, c.body)
	case ChannelWecomApp:
		if s.opt.Channels.App == nil {
			return "", errNoChannel
		}
		return s.opt.Channels.App.Send(ctx, []string{c.address}, c.body)
	case ChannelEmail:
		if s.opt.Channels.Mail == nil {
			return "", errNoChannel
		}
		return "", s.opt.Channels.Mail.Send(ctx, c.address, c.title, c.body, c.idemKey)
	}
	return "", permanentError{fmt.Errorf("unknown channel %q", c.channel)}
}

var errNoChannel = errors.New("channel not configured in this process")

type permanentError struct{ error }

func (p permanentError) Permanent() bool { return true }
func (p permanentError) Unwrap() error   { return p.error }

func isPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

func retryAfter(err error) time.Duration {
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// mobileRE finds mainland mobile numbers in provider messages, so an error text never carries one whole.
var mobileRE = regexp.MustCompile(`1[3-9]\d{9}`)

func scrub(s string) string {
	s = mobileRE.ReplaceAllStringFunc(s, phone.Mask)
	if len(s) > 500 {
		s = s[:500]
	}
	return s
}

// backoff is exponential from BackoffBase, capped, with "equal jitter" (half fixed, half random) so retries of
// many rows after one outage spread out instead of arriving together.
func (s *Service) backoff(attempt int) time.Duration {
	d := s.opt.BackoffBase
	for i := 1; i < attempt && d < s.opt.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.opt.BackoffMax)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// record writes the answers of one batch: the rows' new state and the attempts' outcome, in one round trip.
func (s *Service) record(ctx context.Context, batch []claimed, outs []outcome) error {
	now := s.now()
	b := &pgx.Batch{}
	type after func()
	var done []after
	for i, c := range batch {
		o := outs[i]
		if o.err == nil {
			b.Queue(`UPDATE notify_deliveries SET status = 'sent', sent_at = $2, provider_ref = $3, last_error = '' WHERE id = $1`,
				c.id, now, o.ref)
			b.Queue(`UPDATE notify_attempts SET finished_at = $3, ok = true, provider_ref = $4 WHERE delivery_id = $1 AND n = $2`,
				c.id, c.attempts, now, o.ref)
			done = append(done, func() {
				s.breakers[c.channel].success()
				s.m.sent.WithLabelValues(c.channel).Inc()
				s.m.lag.WithLabelValues(c.channel).Observe(now.Sub(c.eventAt).Seconds())
				s.log.Info("notify: sent", "delivery_id", c.id, "channel", c.channel, "to", c.masked, "attempt", c.attempts, "ticket_id", c.ticketID)
			})
			continue
		}
		msg := scrub(o.err.Error())
		perm := isPermanent(o.err)
		dead := perm || c.attempts-c.budgetFrom >= s.opt.MaxAttempts
		if dead {
			b.Queue(`UPDATE notify_deliveries SET status = 'dead', last_error = $2 WHERE id = $1 AND status = 'pending'`, c.id, msg)
		} else {
			next := now.Add(max(s.backoff(c.attempts-c.budgetFrom), retryAfter(o.err)))
			if c.recipient == "caller" && c.channel == ChannelSMS {
				next = quietUntil(next, s.opt.QuietStart, s.opt.QuietEnd)
			}
			b.Queue(`UPDATE notify_deliveries SET next_at = $2, last_error = $3 WHERE id = $1 AND status = 'pending'`, c.id, next, msg)
		}
		b.Queue(`UPDATE notify_attempts SET finished_at = $3, ok = false, error = $4 WHERE delivery_id = $1 AND n = $2`,
			c.id, c.attempts, now, msg)
		done = append(done, func() {
			s.m.failed.WithLabelValues(c.channel).Inc()
			if !perm && !errors.Is(o.err, errNoChannel) && s.breakers[c.channel].failure(now) {
				s.log.Warn("notify: channel failing, pausing it", "channel", c.channel, "until", s.breakers[c.channel].openUntil())
			}
			if dead {
				s.m.dead.WithLabelValues(c.channel).Inc()
				s.log.Warn("notify: delivery dead", "delivery_id", c.id, "channel", c.channel, "to", c.masked, "attempts", c.attempts, "err", msg)
			} else {
				s.m.retried.WithLabelValues(c.channel).Inc()
				s.log.Info("notify: attempt failed, will retry", "delivery_id", c.id, "channel", c.channel, "to", c.masked, "attempt", c.attempts, "err", msg)
			}
		})
	}
	if err := s.db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("notify: record answers: %w", err)
	}
	for _, f := range done {
		f()
	}
	return nil
}
