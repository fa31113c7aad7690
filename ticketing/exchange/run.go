package exchange

import (
	"context"
	"time"
)

// Run does the exchange's background work until ctx ends: sends due outbound rows, fetches attachments, polls
// the platforms that cannot push, runs the daily reconciliation and forgets expired nonces. Errors are logged
// and the work is tried again at the next round.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	var lastChores time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-t.C:
		}
		s.Round(ctx)
		if now := s.now(); now.Sub(lastChores) >= time.Minute {
			lastChores = now
			s.chores(ctx)
		}
		t.Reset(s.cfg.Interval)
	}
}

// Round sends what is due, fetches due attachments and polls due platforms once.
func (s *Service) Round(ctx context.Context) {
	if _, err := s.sendDue(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("exchange: sending", "err", err)
	}
	for ctx.Err() == nil {
		ok, err := s.fetchOne(ctx)
		if err != nil {
			s.log.Warn("exchange: fetching attachments", "err", err)
		}
		if !ok || err != nil {
			break
		}
	}
	if err := s.pollDue(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("exchange: polling", "err", err)
	}
}

func (s *Service) chores(ctx context.Context) {
	if err := s.reconcileDaily(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("exchange: daily reconciliation", "err", err)
	}
	if err := s.alertDeadlines(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("exchange: platform deadlines", "err", err)
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM exchange_nonces WHERE expires_at < $1`, s.now()); err != nil && ctx.Err() == nil {
		s.log.Warn("exchange: expiring nonces", "err", err)
	}
}
