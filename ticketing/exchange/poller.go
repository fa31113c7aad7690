package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// pollDue polls every polling platform whose interval has passed, under a lease so one process polls a platform
// at a time.
func (s *Service) pollDue(ctx context.Context) error {
	var errs []error
	for _, name := range s.Platforms() {
		p := s.platforms[name]
		if p.Poll <= 0 {
			continue
		}
		if _, err := s.PollOnce(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// PollOnce pulls the platform's new messages after the stored cursor and applies each as a push would be
// applied; the cursor moves only past messages applied (or refused as malformed: those are logged, not retried
// for ever). It returns how many messages it applied; 0 when another process holds the lease or the interval has
// not passed.
func (s *Service) PollOnce(ctx context.Context, name string) (int, error) {
	p, err := s.platform(name)
	if err != nil {
		return 0, err
	}
	now := s.now()
	if _, err := s.db.Exec(ctx, `INSERT INTO exchange_cursors (platform) VALUES ($1) ON CONFLICT DO NOTHING`, name); err != nil {
		return 0, fmt.Errorf("exchange: poll %s: %w", name, err)
	}
	var cursor string
	err = s.db.QueryRow(ctx, `UPDATE exchange_cursors SET lease_until = $2
		WHERE platform = $1 AND lease_until < $3 AND (polled_at IS NULL OR polled_at <= $4)
		RETURNING cursor`, name, now.Add(time.Minute), now, now.Add(-p.Poll)).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // not due, or another process polls it now
	}
	if err != nil {
		return 0, fmt.Errorf("exchange: poll %s: lease: %w", name, err)
	}
	applied, next, perr := s.poll(ctx, p, cursor)
	if next == "" {
		next = cursor
	}
	if _, err := s.db.Exec(context.WithoutCancel(ctx), `UPDATE exchange_cursors SET cursor = $2, polled_at = $3, lease_until = '-infinity'
		WHERE platform = $1`, name, next, s.now()); err != nil {
		return applied, fmt.Errorf("exchange: poll %s: store cursor: %w", name, err)
	}
	return applied, perr
}

func (s *Service) poll(ctx context.Context, p *platform, cursor string) (int, string, error) {
	resp, err := s.do(ctx, p, http.MethodGet, p.d.PollTarget(cursor), nil, "")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return 0, "", fmt.Errorf("platform %s: poll: %w", p.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("platform %s: poll answered %d", p.Name, resp.StatusCode)
	}
	msgs, next, err := p.d.ParsePoll(body)
	if err != nil {
		return 0, "", fmt.Errorf("platform %s: %w", p.Name, err)
	}
	applied := 0
	for _, raw := range msgs {
		m, err := p.d.ParseMessage(raw)
		if err == nil {
			_, err = s.apply(ctx, p, m, "")
		}
		if errors.Is(err, org.ErrInvalid) || errors.Is(err, org.ErrNotFound) {
			s.log.Error("exchange: polled message refused", "platform", p.Name, "order_id", m.OrderID, "err", err)
			continue
		}
		if err != nil {
			// Not the message's fault: stop here, so the cursor stays before it and the next poll tries again.
			return applied, "", fmt.Errorf("platform %s: apply polled message: %w", p.Name, err)
		}
		applied++
	}
	return applied, next, nil
}
