package campaign

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Target is one household (or 回访 ticket) of a campaign.
type Target struct {
	ID          TargetID          `json:"id"`
	CampaignID  ID                `json:"campaign_id"`
	HouseholdID HouseholdID       `json:"household_id"`
	TicketID    TicketID          `json:"ticket_id,omitempty"`
	RegionCode  string            `json:"region_code"`
	PhoneCount  int               `json:"phone_count"`
	PhoneIndex  int               `json:"phone_index"`
	State       TargetState       `json:"state"`
	Attempts    int               `json:"attempts"`
	NextAt      time.Time         `json:"next_at"`
	LastOutcome Outcome           `json:"last_outcome"`
	Answers     map[string]string `json:"answers"`
}

// Attempt is one call.
type Attempt struct {
	ID          AttemptID         `json:"id"`
	CampaignID  ID                `json:"campaign_id"`
	TargetID    TargetID          `json:"target_id"`
	HouseholdID HouseholdID       `json:"household_id"`
	No          int               `json:"attempt_no"`
	PhoneIndex  int               `json:"phone_index"`
	PhoneMasked string            `json:"phone_masked"`
	Worker      string            `json:"worker"`
	CallID      string            `json:"call_id"`
	StartedAt   time.Time         `json:"started_at"`
	AnsweredAt  *time.Time        `json:"answered_at,omitempty"`
	EndedAt     *time.Time        `json:"ended_at,omitempty"`
	SIPCode     int               `json:"sip_code"`
	Outcome     Outcome           `json:"outcome"`
	Answers     map[string]string `json:"answers"`
}

// Queued is a target put on the stream: the attempt number it is queued for makes a duplicate entry harmless.
type Queued struct {
	Campaign ID
	Target   TargetID
	Attempts int
}

// Enqueue marks up to limit due targets of a running campaign as queued and returns them, oldest due first. The
// caller puts them on the stream; a target left queued (the process died in between) is found by StaleQueued.
func (s *Service) Enqueue(ctx context.Context, c ID, limit int) ([]Queued, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.db.Query(ctx, `UPDATE campaign_targets t SET state = 'queued', queued_at = now(), updated_at = now()
		FROM (SELECT id FROM campaign_targets WHERE campaign_id = $1 AND state = 'pending' AND next_at <= $2
		      ORDER BY next_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) d
		WHERE t.id = d.id AND EXISTS (SELECT 1 FROM campaigns WHERE id = $1 AND status = 'running')
		RETURNING t.campaign_id, t.id, t.attempts`, c, s.now(), limit)
	if err != nil {
		return nil, fmt.Errorf("enqueue campaign %d: %w", c, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Queued, error) {
		var q Queued
		return q, r.Scan(&q.Campaign, &q.Target, &q.Attempts)
	})
}

// StaleQueued re-stamps and returns targets queued longer than age ago: their stream entry was lost (Redis
// flushed, or the scheduler died between marking and adding). Re-adding is safe: Claim takes a target once.
func (s *Service) StaleQueued(ctx context.Context, age time.Duration) ([]Queued, error) {
	rows, err := s.db.Query(ctx, `UPDATE campaign_targets SET queued_at = now()
		WHERE state = 'queued' AND queued_at < now() - make_interval(secs => $1)
		RETURNING campaign_id, id, attempts`, age.Seconds())
	if err != nil {
		return nil, fmt.Errorf("stale queued targets: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Queued, error) {
		var q Queued
		return q, r.Scan(&q.Campaign, &q.Target, &q.Attempts)
	})
}

// InFlight is how many targets of a campaign wait on the stream (queued) and how many are being called
// (dialing). The scheduler keeps queued small, so a backlog cannot turn into a burst above the pace, and
// queued + dialing within the campaign's concurrency, so workers do not hold entries they cannot call.
func (s *Service) InFlight(ctx context.Context, c ID) (queued, dialing int, err error) {
	err = s.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'queued'), count(*) FILTER (WHERE state = 'dialing')
		FROM campaign_targets WHERE campaign_id = $1 AND state IN ('queued', 'dialing')`, c).Scan(&queued, &dialing)
	return queued, dialing, err
}

// QueuedCount is how many targets of a campaign wait on the stream.
func (s *Service) QueuedCount(ctx context.Context, c ID) (int, error) {
	q, _, err := s.InFlight(ctx, c)
	return q, err
}

// Job is a claimed attempt: what a dialer worker needs to place the call.
type Job struct {
	Campaign *Campaign
	Target   *Target
	Attempt  *Attempt
}

// ErrNotClaimable means the queued entry is stale: the target was taken, paused, cancelled or re-queued.
var ErrNotClaimable = errors.New("target not claimable")

const targetCols = `id, campaign_id, household_id, coalesce(ticket_id, 0), region_code, phone_count, phone_index, state,
	attempts, next_at, last_outcome, answers`

func scanTarget(row pgx.Row) (*Target, error) {
	var t Target
	err := row.Scan(&t.ID, &t.CampaignID, &t.HouseholdID, &t.TicketID, &t.RegionCode, &t.PhoneCount, &t.PhoneIndex,
		&t.State, &t.Attempts, &t.NextAt, &t.LastOutcome, &t.Answers)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// Claim turns a queued target into an attempt in progress, in one transaction: it checks again everything that
// may have changed since queueing (campaign still running, window open, household not opted out, under its daily
// cap), counts the attempt, and writes the attempt row naming the worker. Only then is the call placed, so a
// crash after Claim leaves an attempt that the sweeper records as interrupted.
func (s *Service) Claim(ctx context.Context, q Queued, worker string) (*Job, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	t, err := scanTarget(tx.QueryRow(ctx, `SELECT `+targetCols+` FROM campaign_targets WHERE id = $1 FOR UPDATE`, q.Target))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (t.State != TargetQueued || t.Attempts != q.Attempts)) {
		return nil, ErrNotClaimable
	}
	if err != nil {
		return nil, fmt.Errorf("claim target %d: %w", q.Target, err)
	}
	c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1`, t.CampaignID))
	if err != nil {
		return nil, fmt.Errorf("claim target %d: %w", q.Target, err)
	}
	now := s.now()
	putBack := func(state TargetState, next time.Time) (*Job, error) {
		if _, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = $2, next_at = $3, updated_at = now() WHERE id = $1`,
			t.ID, state, next); err != nil {
			return nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
		return nil, ErrNotClaimable
	}
	if c.Status != StatusRunning {
		if c.Status == StatusCancelled || c.Status == StatusFinished {
			return putBack(TargetCancelled, t.NextAt)
		}
		return putBack(TargetPending, t.NextAt)
	}
	if next, ok := c.Windows.NextOpen(now, s.hol); !ok || !next.Equal(now) {
		if !ok {
			return putBack(TargetExhausted, t.NextAt)
		}
		return putBack(TargetPending, next)
	}
	day := c.Windows.LocalDay(now)
	// A 回访 of a caller who is not a monitored household (household 0) has only its retry rules.
	if t.HouseholdID != 0 {
		// One household at a time across campaigns: the opt-out and daily-cap checks below must not race.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('hotline.household', $1))`, int64(t.HouseholdID)); err != nil {
			return nil, err
		}
		var optedOut bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM campaign_optouts WHERE household_id = $1 AND purpose = $2)`,
			t.HouseholdID, c.Purpose).Scan(&optedOut); err != nil {
			return nil, err
		}
		if optedOut {
			return putBack(TargetOptedOut, t.NextAt)
		}
		var today int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE household_id = $1 AND local_day = $2`,
			t.HouseholdID, day).Scan(&today); err != nil {
			return nil, err
		}
		if today >= c.DailyCap {
			next, ok := c.Windows.NextOpen(c.Windows.StartOfNextDay(now), s.hol)
			if !ok {
				return putBack(TargetExhausted, t.NextAt)
			}
			return putBack(TargetPending, next)
		}
	}
	a := &Attempt{CampaignID: c.ID, TargetID: t.ID, HouseholdID: t.HouseholdID, No: t.Attempts + 1,
		PhoneIndex: t.PhoneIndex % max(t.PhoneCount, 1), Worker: worker, StartedAt: now, Outcome: OutcomeInProgress}
	if err := tx.QueryRow(ctx, `INSERT INTO campaign_attempts (campaign_id, target_id, household_id, attempt_no, phone_index,
		worker, started_at, local_day) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING id`,
		a.CampaignID, a.TargetID, a.HouseholdID, a.No, a.PhoneIndex, worker, now, day).Scan(&a.ID); err != nil {
		return nil, fmt.Errorf("claim target %d: %w", t.ID, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = 'dialing', attempts = attempts + 1, updated_at = now()
		WHERE id = $1`, t.ID); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("claim target %d: %w", t.ID, err)
	}
	t.State, t.Attempts = TargetDialing, a.No
	return &Job{Campaign: c, Target: t, Attempt: a}, nil
}

// Unclaim undoes a claim whose call was never placed (the process began to stop, or Redis failed, while the
// attempt waited for its pacing slot): the attempt row goes and the target is queued for the next process at
// once, in one transaction. Leaving it in progress instead would have the sweeper record an interruption that
// never reached the household, spending one of its attempts under the retry rules. An attempt that is no longer
// in progress is left alone.
func (s *Service) Unclaim(ctx context.Context, attempt AttemptID) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("unclaim attempt %d: %w", attempt, err)
	}
	defer tx.Rollback(ctx)
	var target TargetID
	err = tx.QueryRow(ctx, `DELETE FROM campaign_attempts WHERE id = $1 AND outcome = 'in_progress' AND call_id = ''
		RETURNING target_id`, attempt).Scan(&target)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unclaim attempt %d: %w", attempt, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = 'pending', attempts = attempts - 1, next_at = now(),
		updated_at = now() WHERE id = $1 AND state = 'dialing'`, target); err != nil {
		return fmt.Errorf("unclaim attempt %d: %w", attempt, err)
	}
	return tx.Commit(ctx)
}

// Result is how a call ended.
type Result struct {
	Outcome     Outcome
	SIPCode     int
	CallID      string
	PhoneMasked string
	AnsweredAt  *time.Time
	EndedAt     time.Time
	Answers     map[string]string // question ID → key ("" = no key after the repeat)
	OptedOut    bool
}

// ErrAlreadyFinished means the attempt was closed before (swept as interrupted while its worker looked dead).
var ErrAlreadyFinished = errors.New("attempt already finished")

// Finish records an attempt's result and decides the target's next step in one transaction, together with the
// household timeline entry, a verification ticket for a risk answer, the 回访 result or the manual task.
func (s *Service) Finish(ctx context.Context, attempt AttemptID, r Result) error {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := s.finishTx(ctx, tx, attempt, r); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (s *Service) finishTx(ctx context.Context, tx pgx.Tx, attemptID AttemptID, r Result) error {
	if r.Answers == nil {
		r.Answers = map[string]string{}
	}
	if r.EndedAt.IsZero() {
		r.EndedAt = s.now()
	}
	a := &Attempt{ID: attemptID}
	err := tx.QueryRow(ctx, `UPDATE campaign_attempts SET outcome = $2, sip_code = $3, call_id = $4, phone_masked = $5,
		answered_at = $6, ended_at = $7, answers = $8
		WHERE id = $1 AND outcome = 'in_progress'
		RETURNING campaign_id, target_id, household_id, attempt_no, phone_index, worker, started_at`,
		attemptID, r.Outcome, r.SIPCode, r.CallID, r.PhoneMasked, r.AnsweredAt, r.EndedAt, r.Answers).
		Scan(&a.CampaignID, &a.TargetID, &a.HouseholdID, &a.No, &a.PhoneIndex, &a.Worker, &a.StartedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrAlreadyFinished
	}
	if err != nil {
		return fmt.Errorf("finish attempt %d: %w", attemptID, err)
	}
	a.Outcome, a.SIPCode, a.CallID, a.PhoneMasked, a.AnsweredAt, a.EndedAt, a.Answers =
		r.Outcome, r.SIPCode, r.CallID, r.PhoneMasked, r.AnsweredAt, &r.EndedAt, r.Answers
	t, err := scanTarget(tx.QueryRow(ctx, `SELECT `+targetCols+` FROM campaign_targets WHERE id = $1 FOR UPDATE`, a.TargetID))
	if err != nil {
		return fmt.Errorf("finish attempt %d: target: %w", attemptID, err)
	}
	c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1`, a.CampaignID))
	if err != nil {
		return fmt.Errorf("finish attempt %d: campaign: %w", attemptID, err)
	}
	d := Decide(c, t.Attempts, r.Outcome, r.OptedOut, s.now(), s.hol)
	if d.State == TargetPending && c.Status == StatusCancelled {
		d.State = TargetCancelled
	}
	nextAt := t.NextAt
	if d.State == TargetPending {
		nextAt = d.NextAt
	}
	answers := t.Answers
	if r.Outcome == OutcomeAnswered {
		answers = r.Answers
	}
	phoneIndex := t.PhoneIndex
	if r.Outcome != OutcomeAnswered && t.PhoneCount > 1 {
		phoneIndex = (t.PhoneIndex + 1) % t.PhoneCount // its phones tried in order
	}
	if _, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = $2, next_at = $3, last_outcome = $4, answers = $5,
		phone_index = $6, updated_at = now() WHERE id = $1`, t.ID, d.State, nextAt, r.Outcome, answers, phoneIndex); err != nil {
		return fmt.Errorf("finish attempt %d: update target: %w", attemptID, err)
	}
	t.State, t.NextAt, t.LastOutcome, t.Answers, t.PhoneIndex = d.State, nextAt, r.Outcome, answers, phoneIndex
	if r.OptedOut && t.HouseholdID != 0 {
		// The opt-out list's history names the key press and the campaign (no user did it).
		if _, err := tx.Exec(ctx, `WITH o AS (INSERT INTO campaign_optouts (household_id, purpose, campaign_id, reason)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING household_id)
			INSERT INTO campaign_optout_log (household_id, purpose, action, reason) SELECT household_id, $2, 'add', $4 FROM o`,
			t.HouseholdID, c.Purpose, c.ID, fmt.Sprintf("通话中按 %s 键退订（任务 #%d）", c.OptOutKey, c.ID)); err != nil {
			return fmt.Errorf("record opt-out: %w", err)
		}
	}
	if s.hooks.Contact != nil {
		if err := s.hooks.Contact(ctx, tx, c, t, a); err != nil {
			return fmt.Errorf("finish attempt %d: household timeline: %w", attemptID, err)
		}
	}
	if r.Outcome == OutcomeAnswered {
		if risky := RiskQuestions(c.Script, r.Answers); len(risky) > 0 && s.hooks.Risk != nil {
			if err := s.hooks.Risk(ctx, tx, c, t, a, risky); err != nil {
				return fmt.Errorf("finish attempt %d: verification ticket: %w", attemptID, err)
			}
		}
		if c.Purpose == PurposeCallback && t.TicketID != 0 && s.hooks.CallbackResult != nil && len(c.Script.Questions) > 0 {
			if key := r.Answers[c.Script.Questions[0].ID]; key != "" {
				if err := s.hooks.CallbackResult(ctx, tx, t.TicketID, key); err != nil {
					return fmt.Errorf("finish attempt %d: 回访 result: %w", attemptID, err)
				}
			}
		}
	}
	if d.State == TargetManual && s.hooks.ManualCallback != nil {
		if err := s.hooks.ManualCallback(ctx, tx, t); err != nil {
			return fmt.Errorf("finish attempt %d: manual callback: %w", attemptID, err)
		}
	}
	return nil
}

// RiskQuestions returns the IDs of questions answered with one of their risk keys.
func RiskQuestions(s Script, answers map[string]string) []string {
	var out []string
	for _, q := range s.Questions {
		if k := answers[q.ID]; k != "" && q.RiskKeys != "" && strings.Contains(q.RiskKeys, k) {
			out = append(out, q.ID)
		}
	}
	return out
}

// Heartbeat says the worker process is alive; its attempts in progress are not interrupted while it beats.
func (s *Service) Heartbeat(ctx context.Context, worker, host string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO dialer_workers (id, host) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, worker, host)
	if err != nil {
		return fmt.Errorf("dialer heartbeat: %w", err)
	}
	return nil
}

// Retire removes a worker that stopped cleanly.
func (s *Service) Retire(ctx context.Context, worker string) error {
	_, err := s.db.Exec(ctx, `DELETE FROM dialer_workers WHERE id = $1`, worker)
	return err
}

// SweepInterrupted closes, as interrupted, every attempt in progress whose worker has not beaten for deadAfter
// (the process died), and lets the retry rules decide whether to call again. It returns how many it closed.
func (s *Service) SweepInterrupted(ctx context.Context, deadAfter time.Duration) (int, error) {
	rows, err := s.db.Query(ctx, `SELECT a.id FROM campaign_attempts a
		LEFT JOIN dialer_workers w ON w.id = a.worker
		WHERE a.outcome = 'in_progress' AND (w.id IS NULL OR w.heartbeat_at < now() - make_interval(secs => $1))`,
		deadAfter.Seconds())
	if err != nil {
		return 0, fmt.Errorf("sweep interrupted: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[AttemptID])
	if err != nil {
		return 0, fmt.Errorf("sweep interrupted: %w", err)
	}
	n := 0
	for _, id := range ids {
		err := s.Finish(ctx, id, Result{Outcome: OutcomeInterrupted})
		if errors.Is(err, ErrAlreadyFinished) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		s.log.Warn("attempts interrupted by a dead dialer process", "count", n)
		_, _ = s.db.Exec(ctx, `DELETE FROM dialer_workers WHERE heartbeat_at < now() - make_interval(secs => $1)`,
			(10 * deadAfter).Seconds())
	}
	return n, nil
}

// FinishDone marks running campaigns whose targets are all final as finished (the standing 回访 campaign never).
func (s *Service) FinishDone(ctx context.Context) ([]ID, error) {
	rows, err := s.db.Query(ctx, `UPDATE campaigns c SET status = 'finished', ended_at = now(), updated_at = now()
		WHERE status = 'running' AND NOT standing AND NOT EXISTS (SELECT 1 FROM campaign_targets t
			WHERE t.campaign_id = c.id AND t.state IN ('pending', 'queued', 'dialing'))
		RETURNING id`)
	if err != nil {
		return nil, fmt.Errorf("finish campaigns: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[ID])
}
