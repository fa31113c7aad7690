package campaign

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Progress is a campaign's live state, published every second while it runs.
type Progress struct {
	Campaign        ID                  `json:"campaign_id"`
	Status          Status              `json:"status"`
	Targets         int                 `json:"targets"`
	ByState         map[TargetState]int `json:"targets_by_state"`
	ByOutcome       map[Outcome]int     `json:"attempts_by_outcome"`
	Attempts        int                 `json:"attempts"`
	Rate            float64             `json:"rate"` // attempts started per second over the last 10 s
	EstimatedFinish *time.Time          `json:"estimated_finish,omitempty"`
	At              time.Time           `json:"at"`
}

// Progress computes a campaign's progress.
func (s *Service) Progress(ctx context.Context, id ID) (*Progress, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &Progress{Campaign: id, Status: c.Status, ByState: map[TargetState]int{}, ByOutcome: map[Outcome]int{}, At: time.Now()}
	rows, err := s.db.Query(ctx, `SELECT state, count(*) FROM campaign_targets WHERE campaign_id = $1 GROUP BY state`, id)
	if err != nil {
		return nil, fmt.Errorf("progress %d: %w", id, err)
	}
	var st TargetState
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&st, &n}, func() error { p.ByState[st] = n; p.Targets += n; return nil }); err != nil {
		return nil, fmt.Errorf("progress %d: %w", id, err)
	}
	var o Outcome
	rows, err = s.db.Query(ctx, `SELECT outcome, count(*) FROM campaign_attempts WHERE campaign_id = $1 GROUP BY outcome`, id)
	if err != nil {
		return nil, fmt.Errorf("progress %d: %w", id, err)
	}
	if _, err := pgx.ForEachRow(rows, []any{&o, &n}, func() error { p.ByOutcome[o] = n; p.Attempts += n; return nil }); err != nil {
		return nil, fmt.Errorf("progress %d: %w", id, err)
	}
	var recent int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM campaign_attempts WHERE campaign_id = $1
		AND started_at > $2`, id, s.now().Add(-10*time.Second)).Scan(&recent); err != nil {
		return nil, fmt.Errorf("progress %d: %w", id, err)
	}
	p.Rate = float64(recent) / 10
	if c.Status == StatusRunning {
		left := p.ByState[TargetPending] + p.ByState[TargetQueued] + p.ByState[TargetDialing]
		rate := p.Rate
		if rate <= 0 {
			rate = c.Pace
		}
		eta := EstimateFinish(time.Now(), left, rate)
		p.EstimatedFinish = &eta
	}
	return p, nil
}

// WriteResultsCSV writes one line per target: household, region, state, attempts, last outcome and each
// question's answer. Phone numbers are never in it (masked numbers are in the attempts).
func (s *Service) WriteResultsCSV(ctx context.Context, id ID, w io.Writer) error {
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	head := []string{"household_id", "ticket_id", "region_code", "state", "attempts", "last_outcome", "risk"}
	for _, q := range c.Script.Questions {
		head = append(head, "q_"+q.ID)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rows, err := s.db.Query(ctx, `SELECT `+targetCols+` FROM campaign_targets WHERE campaign_id = $1 ORDER BY id`, id)
	if err != nil {
		return fmt.Errorf("results %d: %w", id, err)
	}
	ts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Target, error) { return scanTarget(r) })
	if err != nil {
		return fmt.Errorf("results %d: %w", id, err)
	}
	for _, t := range ts {
		risk := RiskQuestions(c.Script, t.Answers)
		sort.Strings(risk)
		ticket := ""
		if t.TicketID != 0 {
			ticket = strconv.FormatInt(int64(t.TicketID), 10)
		}
		rec := []string{strconv.FormatInt(int64(t.HouseholdID), 10), ticket, t.RegionCode, string(t.State),
			strconv.Itoa(t.Attempts), string(t.LastOutcome), strings.Join(risk, " ")}
		for _, q := range c.Script.Questions {
			rec = append(rec, t.Answers[q.ID])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Attempts lists a target's attempts, oldest first.
func (s *Service) Attempts(ctx context.Context, t TargetID) ([]Attempt, error) {
	rows, err := s.db.Query(ctx, `SELECT id, campaign_id, target_id, household_id, attempt_no, phone_index, phone_masked,
		worker, call_id, started_at, answered_at, ended_at, sip_code, outcome, answers
		FROM campaign_attempts WHERE target_id = $1 ORDER BY attempt_no`, t)
	if err != nil {
		return nil, fmt.Errorf("attempts of target %d: %w", t, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.ID, &a.CampaignID, &a.TargetID, &a.HouseholdID, &a.No, &a.PhoneIndex, &a.PhoneMasked, &a.Worker,
			&a.CallID, &a.StartedAt, &a.AnsweredAt, &a.EndedAt, &a.SIPCode, &a.Outcome, &a.Answers)
		return a, err
	})
}
