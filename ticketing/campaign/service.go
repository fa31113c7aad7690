package campaign

import (
	"context"
	"errors"
	"fmt"
	"github.com/jackc/pgerrcode"
	"hotline/ticketing/org"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Household is a monitored household as a campaign needs it.
type Household struct {
	ID         HouseholdID
	RegionCode string
	PhoneCount int
}

// Directory selects the households a target query matches; the monitoring records satisfy it. It runs in the
// launch transaction so that the list is frozen at one moment.
type Directory interface {
	SelectHouseholds(ctx context.Context, db org.DB, q TargetQuery) ([]Household, error)
}

// Hooks are what other features do inside an attempt's closing transaction. Each may be nil.
type Hooks struct {
	// Contact puts the attempt and its answers on the household's timeline.
	Contact func(ctx context.Context, tx pgx.Tx, c *Campaign, t *Target, a *Attempt) error
	// Risk opens a verification ticket for the county bureau of the household's region; questions are the IDs of
	// the questions answered with a risk key.
	Risk func(ctx context.Context, tx pgx.Tx, c *Campaign, t *Target, a *Attempt, questions []string) error
	// CallbackResult records a 回访 answer on its ticket: key "1" 满意, "2" 基本满意, "3" 不满意.
	CallbackResult func(ctx context.Context, tx pgx.Tx, ticket TicketID, key string) error
	// ManualCallback hands a 回访 that could not reach the caller to an agent.
	ManualCallback func(ctx context.Context, tx pgx.Tx, t *Target) error
}

// Options configure a Service.
type Options struct {
	Directory Directory
	Holidays  Holidays
	Hooks     Hooks
	Clock     func() time.Time // campaign time: windows, next_at; default time.Now
	Log       *slog.Logger
	// Prompt checks that a prompt file exists and plays (8 kHz 16-bit mono WAV); nil: not checked.
	Prompt func(name string) error
}

// Service is the campaign domain over PostgreSQL.
type Service struct {
	db     org.TxBeginner
	dir    Directory
	hol    Holidays
	hooks  Hooks
	now    func() time.Time
	log    *slog.Logger
	prompt func(string) error
}

// NewService returns the campaign service.
func NewService(db org.TxBeginner, o Options) *Service {
	if o.Holidays == nil {
		o.Holidays = NoHolidays{}
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: db, dir: o.Directory, hol: o.Holidays, hooks: o.Hooks, now: o.Clock, log: o.Log, prompt: o.Prompt}
}

// Now is the campaign clock (injected in tests).
func (s *Service) Now() time.Time { return s.now() }

// Holidays is the calendar the windows skip.
func (s *Service) Holidays() Holidays { return s.hol }

func canManage(a org.Actor) error {
	if a.Role == org.RoleCampaignManager || a.Role == org.RoleAdmin {
		return nil
	}
	return fmt.Errorf("campaigns are managed by campaign managers: %w", org.ErrForbidden)
}

const campaignCols = `id, name, purpose, status, standing, target_query, script, windows, max_concurrent, pace, retry,
	daily_cap, ring_timeout_ms, caller_id, trunk, optout_key, coalesce(created_by, 0), created_at, launched_at, ended_at`

func scanCampaign(row pgx.Row) (*Campaign, error) {
	var c Campaign
	err := row.Scan(&c.ID, &c.Name, &c.Purpose, &c.Status, &c.Standing, &c.Query, &c.Script, &c.Windows,
		&c.MaxConcurrent, &c.Pace, &c.Retry, &c.DailyCap, &c.RingTimeoutMS, &c.CallerID, &c.Trunk, &c.OptOutKey,
		&c.CreatedBy, &c.CreatedAt, &c.LaunchedAt, &c.EndedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, org.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Create stores a draft campaign.
func (s *Service) Create(ctx context.Context, actor org.Actor, n NewCampaign) (*Campaign, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	c, err := n.normalize()
	if err != nil {
		return nil, err
	}
	if s.prompt != nil {
		// A missing prompt would be silence on every call: refuse it now, by field.
		v := &org.ValidationError{}
		for i, q := range c.Script.Questions {
			if err := s.prompt(q.Prompt); err != nil {
				v.Add(fmt.Sprintf("script.questions[%d].prompt", i), err.Error())
			}
		}
		if c.Script.Final != "" {
			if err := s.prompt(c.Script.Final); err != nil {
				v.Add("script.final", err.Error())
			}
		}
		if err := v.Err(); err != nil {
			return nil, err
		}
	}
	var by *int64
	if actor.UserID != 0 {
		u := int64(actor.UserID)
		by = &u
	}
	row := s.db.QueryRow(ctx, `INSERT INTO campaigns (name, purpose, standing, target_query, script, windows, max_concurrent,
		pace, retry, daily_cap, ring_timeout_ms, caller_id, trunk, optout_key, created_by)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15) RETURNING `+campaignCols,
		c.Name, c.Purpose, c.Standing, c.Query, c.Script, c.Windows, c.MaxConcurrent, c.Pace, c.Retry, c.DailyCap,
		c.RingTimeoutMS, c.CallerID, c.Trunk, c.OptOutKey, by)
	out, err := scanCampaign(row)
	if err != nil {
		if org.SQLState(err) == pgerrcode.UniqueViolation {
			return nil, fmt.Errorf("a standing %s campaign already exists: %w", c.Purpose, org.ErrConflict)
		}
		return nil, fmt.Errorf("create campaign: %w", err)
	}
	return out, nil
}

// Get returns one campaign.
func (s *Service) Get(ctx context.Context, id ID) (*Campaign, error) {
	c, err := scanCampaign(s.db.QueryRow(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("campaign %d: %w", id, err)
	}
	return c, nil
}

// List returns campaigns, newest first.
func (s *Service) List(ctx context.Context, limit int) ([]*Campaign, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.db.Query(ctx, `SELECT `+campaignCols+` FROM campaigns ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Campaign, error) { return scanCampaign(r) })
}

// Running returns the campaigns the scheduler serves.
func (s *Service) Running(ctx context.Context) ([]*Campaign, error) {
	rows, err := s.db.Query(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE status = 'running' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("running campaigns: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Campaign, error) { return scanCampaign(r) })
}

// Launch freezes the target list (one target per household, opted-out households left out) and starts calling.
func (s *Service) Launch(ctx context.Context, actor org.Actor, id ID) (*Campaign, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, "launch", func(tx pgx.Tx, c *Campaign) error {
		if c.Standing {
			return nil // targets join one by one (replied tickets)
		}
		if s.dir == nil {
			return errors.New("no household directory configured")
		}
		hs, err := s.dir.SelectHouseholds(ctx, tx, c.Query)
		if err != nil {
			return fmt.Errorf("select households: %w", err)
		}
		if len(hs) == 0 {
			return org.Invalid("target_query", "matches no household")
		}
		return s.insertTargets(ctx, tx, c, hs)
	})
}

// insertTargets copies households into the target list in batches, skipping opted-out ones.
func (s *Service) insertTargets(ctx context.Context, tx pgx.Tx, c *Campaign, hs []Household) error {
	start := s.now()
	const batch = 5000
	for i := 0; i < len(hs); i += batch {
		part := hs[i:min(i+batch, len(hs))]
		ids := make([]int64, len(part))
		regions := make([]string, len(part))
		counts := make([]int32, len(part))
		for j, h := range part {
			ids[j], regions[j], counts[j] = int64(h.ID), h.RegionCode, int32(max(h.PhoneCount, 1))
		}
		_, err := tx.Exec(ctx, `INSERT INTO campaign_targets (campaign_id, household_id, region_code, phone_count, next_at)
			SELECT $1, h, r, n, $5 FROM unnest($2::bigint[], $3::text[], $4::int[]) AS x(h, r, n)
			WHERE NOT EXISTS (SELECT 1 FROM campaign_optouts o WHERE o.household_id = x.h AND o.purpose = $6)
			ON CONFLICT DO NOTHING`, c.ID, ids, regions, counts, start, c.Purpose)
		if err != nil {
			return fmt.Errorf("insert targets: %w", err)
		}
	}
	return nil
}

// Pause stops placing new calls; calls in progress finish.
func (s *Service) Pause(ctx context.Context, actor org.Actor, id ID) (*Campaign, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, "pause", func(tx pgx.Tx, c *Campaign) error {
		// Targets waiting on the stream go back to pending; a worker that still takes one finds it not queued.
		_, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = 'pending', updated_at = now()
			WHERE campaign_id = $1 AND state = 'queued'`, c.ID)
		return err
	})
}

// Resume continues a paused campaign.
func (s *Service) Resume(ctx context.Context, actor org.Actor, id ID) (*Campaign, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, "resume", nil)
}

// Cancel ends a campaign: no further calls; calls in progress finish and are recorded.
func (s *Service) Cancel(ctx context.Context, actor org.Actor, id ID) (*Campaign, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, "cancel", func(tx pgx.Tx, c *Campaign) error {
		_, err := tx.Exec(ctx, `UPDATE campaign_targets SET state = 'cancelled', updated_at = now()
			WHERE campaign_id = $1 AND state IN ('pending', 'queued')`, c.ID)
		return err
	})
}

func (s *Service) transition(ctx context.Context, id ID, action string, f func(pgx.Tx, *Campaign) error) (*Campaign, error) {
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM campaigns WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", action, id, err)
	}
	to, err := Transition(c.Status, action)
	if err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", action, id, err)
	}
	if f != nil {
		if err := f(tx, c); err != nil {
			return nil, fmt.Errorf("%s campaign %d: %w", action, id, err)
		}
	}
	c, err = scanCampaign(tx.QueryRow(ctx, `UPDATE campaigns SET status = $2, updated_at = now(),
		launched_at = CASE WHEN $3 = 'launch' THEN now() ELSE launched_at END,
		ended_at = CASE WHEN $2 IN ('finished', 'cancelled') THEN now() ELSE ended_at END
		WHERE id = $1 RETURNING `+campaignCols, id, to, action))
	if err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", action, id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("%s campaign %d: %w", action, id, err)
	}
	s.log.Info("campaign "+action, "campaign_id", id, "status", to)
	return c, nil
}

// ErrNoStandingCampaign is returned when a 回访 is asked for but no standing callback campaign exists.
var ErrNoStandingCampaign = errors.New("no standing 回访 campaign")

// AddCallbackTx adds a 回访 target for a replied ticket to the standing callback campaign, inside the caller's
// transaction (the ticketing transition hook), so the callback exists exactly when the reply does.
func (s *Service) AddCallbackTx(ctx context.Context, tx pgx.Tx, ticket TicketID, h Household) (TargetID, error) {
	var cid ID
	err := tx.QueryRow(ctx, `SELECT id FROM campaigns WHERE standing AND purpose = 'callback'
		AND status IN ('draft', 'running', 'paused') ORDER BY id LIMIT 1`).Scan(&cid)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNoStandingCampaign
	}
	if err != nil {
		return 0, fmt.Errorf("find 回访 campaign: %w", err)
	}
	var id TargetID
	err = tx.QueryRow(ctx, `INSERT INTO campaign_targets (campaign_id, household_id, ticket_id, region_code, phone_count, next_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (campaign_id, ticket_id) WHERE ticket_id IS NOT NULL
		DO UPDATE SET state = 'pending', attempts = 0, next_at = excluded.next_at, answers = '{}', last_outcome = '',
			updated_at = now()
		WHERE campaign_targets.state IN ('completed', 'exhausted', 'manual')
		RETURNING id`, cid, h.ID, ticket, h.RegionCode, max(h.PhoneCount, 1), s.now()).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		// Already waiting for its callback: nothing to add.
		err = tx.QueryRow(ctx, `SELECT id FROM campaign_targets WHERE campaign_id = $1 AND ticket_id = $2`, cid, ticket).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("add 回访 for ticket %d: %w", ticket, err)
	}
	return id, nil
}

// EnsureStandingCallback creates and launches the standing 回访 campaign if there is none; script prompts name
// the question ("1 满意 2 基本满意 3 不满意") and the closing words.
func (s *Service) EnsureStandingCallback(ctx context.Context, n NewCampaign) (*Campaign, error) {
	var id ID
	err := s.db.QueryRow(ctx, `SELECT id FROM campaigns WHERE standing AND purpose = 'callback'
		AND status IN ('draft', 'running', 'paused') ORDER BY id LIMIT 1`).Scan(&id)
	if err == nil {
		return s.Get(ctx, id)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	n.Purpose, n.Standing = PurposeCallback, true
	c, err := s.Create(ctx, org.System, n)
	if errors.Is(err, org.ErrConflict) {
		return s.EnsureStandingCallback(ctx, n) // another process made it first
	}
	if err != nil {
		return nil, err
	}
	return s.Launch(ctx, org.System, c.ID)
}
