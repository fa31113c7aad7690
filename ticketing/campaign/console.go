package campaign

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// What the campaign pages of the console need beyond the engine: the live count of a target query, the defaults a
// new campaign starts from, the answers arriving, filtered results, and the opt-out list kept by hand.

// CanManage is the rule of who builds and runs campaigns and keeps the opt-out list: campaign managers and admins.
func CanManage(a org.Actor) error { return canManage(a) }

func canRead(a org.Actor) error {
	if CanRead(a) {
		return nil
	}
	return fmt.Errorf("campaigns: %w", org.ErrForbidden)
}

// Defaults is what a new campaign starts from in the console: every rule that NewCampaign fills in when left zero.
func Defaults() NewCampaign {
	w, r := DefaultWindows(), DefaultRetry()
	return NewCampaign{Purpose: PurposeCheckin, Windows: &w, Retry: &r, MaxConcurrent: DefaultMaxConcurrent, Pace: DefaultPace,
		DailyCap: DefaultDailyCap, RingTimeoutMS: DefaultRingTimeoutMS, OptOutKey: "9", Trunk: "default",
		Script: Script{SilenceMS: int(Script{}.Silence().Milliseconds())}}
}

// TargetCount is what launching a query would call now: households matched, and those left out because they
// opted out of the purpose.
type TargetCount struct {
	Matched  int `json:"matched"`
	OptedOut int `json:"opted_out"`
	Targets  int `json:"targets"`
}

// CountTargets runs a target query the way Launch does, without freezing anything.
func (s *Service) CountTargets(ctx context.Context, actor org.Actor, purpose Purpose, q TargetQuery) (*TargetCount, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	v := &org.ValidationError{}
	if !purpose.Valid() {
		v.Add("purpose", "one of checkin, callback, notice")
	}
	if q.RegionPrefix != "" && (len(q.RegionPrefix) > 12 || !strings.HasPrefix(q.RegionPrefix, "43") || strings.Trim(q.RegionPrefix, "0123456789") != "") {
		v.Add("target_query.region_prefix", "digits of a Hunan region code, starting 43")
	}
	if q.MinDaysSinceContact < 0 || q.Limit < 0 {
		v.Add("target_query", "negative numbers are not allowed")
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	if s.dir == nil {
		return nil, errors.New("count targets: no household directory configured")
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("count targets: %w", err)
	}
	defer tx.Rollback(ctx) // read only: nothing to keep
	hs, err := s.dir.SelectHouseholds(ctx, tx, q)
	if err != nil {
		return nil, fmt.Errorf("count targets: %w", err)
	}
	ids := make([]int64, len(hs))
	for i, h := range hs {
		ids[i] = int64(h.ID)
	}
	out := &TargetCount{Matched: len(hs)}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM campaign_optouts WHERE purpose = $1 AND household_id = ANY($2)`,
		purpose, ids).Scan(&out.OptedOut); err != nil {
		return nil, fmt.Errorf("count targets: opted out: %w", err)
	}
	out.Targets = out.Matched - out.OptedOut
	return out, nil
}

// Answer is one finished attempt, as the run page lists them arriving.
type Answer struct {
	AttemptID   AttemptID         `json:"attempt_id"`
	HouseholdID HouseholdID       `json:"household_id"`
	PhoneMasked string            `json:"phone_masked"`
	EndedAt     *time.Time        `json:"ended_at,omitempty"`
	Outcome     Outcome           `json:"outcome"`
	Answers     map[string]string `json:"answers"`
	Risk        []string          `json:"risk"`
}

// RecentAnswers lists a campaign's last finished attempts, newest first.
func (s *Service) RecentAnswers(ctx context.Context, actor org.Actor, id ID, limit int) ([]Answer, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	rows, err := s.db.Query(ctx, `SELECT id, household_id, phone_masked, ended_at, outcome, answers FROM campaign_attempts
		WHERE campaign_id = $1 AND outcome <> 'in_progress' ORDER BY ended_at DESC NULLS LAST, id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, fmt.Errorf("answers of campaign %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Answer, error) {
		var a Answer
		err := r.Scan(&a.AttemptID, &a.HouseholdID, &a.PhoneMasked, &a.EndedAt, &a.Outcome, &a.Answers)
		a.Risk = RiskQuestions(c.Script, a.Answers)
		sort.Strings(a.Risk)
		if a.Risk == nil {
			a.Risk = []string{}
		}
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("answers of campaign %d: %w", id, err)
	}
	return out, nil
}

// ResultFilter narrows the results table and its exports.
type ResultFilter struct {
	State    TargetState // "" = any
	Outcome  Outcome     // last outcome; "" = any
	RiskOnly bool        // only targets with an answer on a risk key (of the script's questions)
	Region   string      // region code prefix
	Limit    int         // rows of a page (0: all, for the exports)
	Offset   int
}

func (f ResultFilter) validate() error {
	v := &org.ValidationError{}
	switch f.State {
	case "", TargetPending, TargetQueued, TargetDialing, TargetCompleted, TargetExhausted, TargetOptedOut, TargetManual, TargetCancelled:
	default:
		v.Add("state", "unknown target state")
	}
	switch f.Outcome {
	case "", OutcomeInProgress, OutcomeAnswered, OutcomeNoAnswer, OutcomeBusy, OutcomeFailed, OutcomeInterrupted:
	default:
		v.Add("outcome", "unknown outcome")
	}
	if f.Region != "" && (len(f.Region) > 12 || strings.Trim(f.Region, "0123456789") != "") {
		v.Add("region", "digits of a region code")
	}
	if f.Limit < 0 || f.Limit > 500 || f.Offset < 0 {
		v.Add("limit", "0 to 500, offset not negative")
	}
	return v.Err()
}

// ResultRow is one target in the results table.
type ResultRow struct {
	Target
	Risk []string `json:"risk"`
}

// Results are a page of the results table.
type Results struct {
	Campaign  *Campaign   `json:"-"`
	Total     int         `json:"total"`
	Rows      []ResultRow `json:"rows"`
	Questions []string    `json:"questions"`
}

// Results lists a campaign's targets under a filter, with the question IDs in script order.
func (s *Service) Results(ctx context.Context, actor org.Actor, id ID, f ResultFilter) (*Results, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	// A risk answer is one on a risk key of its question: the script's risk keys go in as {question: keys}.
	risk := map[string]string{}
	for _, q := range c.Script.Questions {
		if q.RiskKeys != "" {
			risk[q.ID] = q.RiskKeys
		}
	}
	where := `campaign_id = $1 AND ($2 = '' OR state = $2) AND ($3 = '' OR last_outcome = $3) AND region_code LIKE $4 || '%'
		AND (NOT $5 OR EXISTS (SELECT 1 FROM jsonb_each_text($6::jsonb) r(q, keys)
			WHERE coalesce(answers->>r.q, '') <> '' AND strpos(r.keys, answers->>r.q) > 0))`
	args := []any{id, f.State, f.Outcome, f.Region, f.RiskOnly, risk}
	out := &Results{Campaign: c, Rows: []ResultRow{}, Questions: []string{}}
	for _, q := range c.Script.Questions {
		out.Questions = append(out.Questions, q.ID)
	}
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM campaign_targets WHERE `+where, args...).Scan(&out.Total); err != nil {
		return nil, fmt.Errorf("results %d: %w", id, err)
	}
	limit := any(nil) // all rows, for the exports
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := s.db.Query(ctx, `SELECT `+targetCols+` FROM campaign_targets WHERE `+where+` ORDER BY id LIMIT $7 OFFSET $8`,
		append(args, limit, f.Offset)...)
	if err != nil {
		return nil, fmt.Errorf("results %d: %w", id, err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Target, error) { return scanTarget(r) })
	if err != nil {
		return nil, fmt.Errorf("results %d: %w", id, err)
	}
	for _, t := range ts {
		rq := RiskQuestions(c.Script, t.Answers)
		sort.Strings(rq)
		if rq == nil {
			rq = []string{}
		}
		out.Rows = append(out.Rows, ResultRow{Target: *t, Risk: rq})
	}
	return out, nil
}

// Table is the results as the exports write them: a header and one line per target, in Chinese for the reader of
// the spreadsheet. Phone numbers are never in it.
func (r *Results) Table() (head []string, lines [][]string) {
	head = []string{"监测户ID", "工单ID", "区域代码", "状态", "拨打次数", "最后结果", "风险题"}
	for _, q := range r.Campaign.Script.Questions {
		head = append(head, "题目 "+q.ID)
	}
	for _, t := range r.Rows {
		ticket := ""
		if t.TicketID != 0 {
			ticket = strconv.FormatInt(int64(t.TicketID), 10)
		}
		line := []string{strconv.FormatInt(int64(t.HouseholdID), 10), ticket, t.RegionCode, StateNames[t.State],
			strconv.Itoa(t.Attempts), OutcomeNames[t.LastOutcome], strings.Join(t.Risk, " ")}
		for _, q := range r.Campaign.Script.Questions {
			line = append(line, t.Answers[q.ID])
		}
		lines = append(lines, line)
	}
	return head, lines
}

// StateNames and OutcomeNames are the Chinese words of the console and the exports.
var (
	StateNames = map[TargetState]string{TargetPending: "待拨打", TargetQueued: "排队中", TargetDialing: "拨打中",
		TargetCompleted: "已完成", TargetExhausted: "未接通（已用尽次数）", TargetOptedOut: "已退订", TargetManual: "转人工",
		TargetCancelled: "已取消"}
	OutcomeNames = map[Outcome]string{"": "", OutcomeInProgress: "通话中", OutcomeAnswered: "已接听", OutcomeNoAnswer: "无人接听",
		OutcomeBusy: "忙", OutcomeFailed: "失败", OutcomeInterrupted: "中断"}
)

// ---- the opt-out list ------------------------------------------------------------------------------------------

// OptOut is a household that is not called for a purpose.
type OptOut struct {
	HouseholdID   HouseholdID `json:"household_id"`
	Purpose       Purpose     `json:"purpose"`
	CampaignID    *ID         `json:"campaign_id,omitempty"` // pressed the opt-out key on this campaign's call
	Reason        string      `json:"reason"`
	CreatedBy     *int64      `json:"created_by,omitempty"`
	CreatedByName string      `json:"created_by_name,omitempty"`
	CreatedAt     time.Time   `json:"created_at"`
}

// OptOutChange is one line of the opt-out list's history.
type OptOutChange struct {
	ID          int64       `json:"id"`
	HouseholdID HouseholdID `json:"household_id"`
	Purpose     Purpose     `json:"purpose"`
	Action      string      `json:"action"` // add, remove
	Reason      string      `json:"reason"`
	ActorID     *int64      `json:"actor_id,omitempty"`
	ActorName   string      `json:"actor_name,omitempty"`
	At          time.Time   `json:"at"`
}

// OptOutRequest adds or removes a household.
type OptOutRequest struct {
	HouseholdID HouseholdID `json:"household_id"`
	Purpose     Purpose     `json:"purpose"`
	Reason      string      `json:"reason"`
}

func (r *OptOutRequest) validate() error {
	v := &org.ValidationError{}
	r.Reason = strings.TrimSpace(r.Reason)
	if r.HouseholdID <= 0 {
		v.Add("household_id", "required")
	}
	if !r.Purpose.Valid() {
		v.Add("purpose", "one of checkin, callback, notice")
	}
	if r.Reason == "" || len([]rune(r.Reason)) > 500 {
		v.Add("reason", "1 to 500 characters")
	}
	return v.Err()
}

// OptOuts lists the opt-out list, newest first; household 0 lists all.
func (s *Service) OptOuts(ctx context.Context, actor org.Actor, household HouseholdID, limit int) ([]OptOut, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 200
	}
	rows, err := s.db.Query(ctx, `SELECT o.household_id, o.purpose, o.campaign_id, o.reason, o.created_by,
		coalesce(u.display_name, ''), o.created_at FROM campaign_optouts o LEFT JOIN users u ON u.id = o.created_by
		WHERE $1 = 0 OR o.household_id = $1 ORDER BY o.created_at DESC, o.household_id LIMIT $2`, household, limit)
	if err != nil {
		return nil, fmt.Errorf("opt-outs: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OptOut, error) {
		var o OptOut
		err := r.Scan(&o.HouseholdID, &o.Purpose, &o.CampaignID, &o.Reason, &o.CreatedBy, &o.CreatedByName, &o.CreatedAt)
		return o, err
	})
}

// OptOutHistory lists the changes of the opt-out list, newest first; household 0 lists all.
func (s *Service) OptOutHistory(ctx context.Context, actor org.Actor, household HouseholdID, limit int) ([]OptOutChange, error) {
	if err := canRead(actor); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 200
	}
	rows, err := s.db.Query(ctx, `SELECT l.id, l.household_id, l.purpose, l.action, l.reason, l.actor_id,
		coalesce(u.display_name, ''), l.created_at FROM campaign_optout_log l LEFT JOIN users u ON u.id = l.actor_id
		WHERE $1 = 0 OR l.household_id = $1 ORDER BY l.id DESC LIMIT $2`, household, limit)
	if err != nil {
		return nil, fmt.Errorf("opt-out history: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OptOutChange, error) {
		var c OptOutChange
		err := r.Scan(&c.ID, &c.HouseholdID, &c.Purpose, &c.Action, &c.Reason, &c.ActorID, &c.ActorName, &c.At)
		return c, err
	})
}

func actorRef(a org.Actor) *int64 {
	if a.UserID == 0 {
		return nil
	}
	u := int64(a.UserID)
	return &u
}

// AddOptOut puts a household on the opt-out list of a purpose and logs who did it and why, in one transaction.
// A household already on the list is a conflict (its first reason stands).
func (s *Service) AddOptOut(ctx context.Context, actor org.Actor, r OptOutRequest) (*OptOut, error) {
	if err := canManage(actor); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("add opt-out: %w", err)
	}
	defer tx.Rollback(ctx)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM households WHERE id = $1)`, r.HouseholdID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("add opt-out: %w", err)
	}
	if !exists {
		return nil, fmt.Errorf("household %d: %w", r.HouseholdID, org.ErrNotFound)
	}
	o := OptOut{HouseholdID: r.HouseholdID, Purpose: r.Purpose, Reason: r.Reason, CreatedBy: actorRef(actor), CreatedByName: actor.Name}
	err = tx.QueryRow(ctx, `INSERT INTO campaign_optouts (household_id, purpose, reason, created_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING RETURNING created_at`, r.HouseholdID, r.Purpose, r.Reason, o.CreatedBy).Scan(&o.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("household %d already opted out of %s: %w", r.HouseholdID, r.Purpose, org.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("add opt-out: %w", err)
	}
	if err := logOptOut(ctx, tx, r, "add", o.CreatedBy); err != nil {
		return nil, err
	}
	// Targets still waiting in running campaigns of the purpose are not called either.
	if _, err := tx.Exec(ctx, `UPDATE campaign_targets t SET state = 'opted_out', updated_at = now() FROM campaigns c
		WHERE c.id = t.campaign_id AND c.purpose = $2 AND t.household_id = $1 AND t.state IN ('pending', 'queued')`,
		r.HouseholdID, r.Purpose); err != nil {
		return nil, fmt.Errorf("add opt-out: waiting targets: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("add opt-out: %w", err)
	}
	s.log.Info("campaign opt-out added", "household_id", r.HouseholdID, "purpose", r.Purpose, "by", actor.UserID)
	return &o, nil
}

// RemoveOptOut takes a household off the opt-out list of a purpose (it may be called again) and logs who did it and
// why, in one transaction.
func (s *Service) RemoveOptOut(ctx context.Context, actor org.Actor, r OptOutRequest) error {
	if err := canManage(actor); err != nil {
		return err
	}
	if err := r.validate(); err != nil {
		return err
	}
	tx, err := s.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("remove opt-out: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `DELETE FROM campaign_optouts WHERE household_id = $1 AND purpose = $2`, r.HouseholdID, r.Purpose)
	if err != nil {
		return fmt.Errorf("remove opt-out: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("household %d is not opted out of %s: %w", r.HouseholdID, r.Purpose, org.ErrNotFound)
	}
	if err := logOptOut(ctx, tx, r, "remove", actorRef(actor)); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("remove opt-out: %w", err)
	}
	s.log.Info("campaign opt-out removed", "household_id", r.HouseholdID, "purpose", r.Purpose, "by", actor.UserID)
	return nil
}

func logOptOut(ctx context.Context, tx pgx.Tx, r OptOutRequest, action string, by *int64) error {
	if _, err := tx.Exec(ctx, `INSERT INTO campaign_optout_log (household_id, purpose, action, reason, actor_id)
		VALUES ($1, $2, $3, $4, $5)`, r.HouseholdID, r.Purpose, action, r.Reason, by); err != nil {
		if org.SQLState(err) == pgerrcode.ForeignKeyViolation {
			return fmt.Errorf("opt-out log: unknown user: %w", org.ErrForbidden)
		}
		return fmt.Errorf("opt-out log: %w", err)
	}
	return nil
}
