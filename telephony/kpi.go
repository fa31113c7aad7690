package telephony

import (
	"context"
	"fmt"
	"hotline/ticketing/org"
	"time"

	"github.com/jackc/pgx/v5"
	"hotline/ticketing/calendar"
)

// KPI is one bucket (hour or day, China Standard Time) of call-centre figures read from CDRs. Rates are
// fractions of offered calls (rejected calls are counted apart: they never reached the queue).
type KPI struct {
	Bucket        time.Time `json:"bucket"`
	Offered       int       `json:"offered"`
	Answered      int       `json:"answered"`
	AnsweredIn15s int       `json:"answered_in_15s"`
	Abandoned     int       `json:"abandoned"`
	Voicemail     int       `json:"voicemail"`
	Rejected      int       `json:"rejected"`
	AnswerRate    float64   `json:"answer_rate"`     // 接通率
	Answer15Rate  float64   `json:"answer_15s_rate"` // 15 秒接通率 (GB/T 33358)
	AbandonRate   float64   `json:"abandon_rate"`
	AvgWait       float64   `json:"avg_wait_seconds"`
	MaxWait       float64   `json:"max_wait_seconds"`
}

// KPIs returns buckets of "hour" or "day" between from and to (offered time), oldest first.
func KPIs(ctx context.Context, db org.DB, per string, from, to time.Time) ([]KPI, error) {
	if per != "hour" && per != "day" {
		return nil, org.Invalid("per", "hour or day")
	}
	if !to.After(from) {
		return nil, org.Invalid("to", "must be after from")
	}
	rows, err := db.Query(ctx, `
		SELECT date_trunc($1, offered_at AT TIME ZONE $4) AT TIME ZONE $4 AS bucket,
			count(*) FILTER (WHERE disposition IS DISTINCT FROM 'rejected'),
			count(*) FILTER (WHERE agent_answered_at IS NOT NULL),
			count(*) FILTER (WHERE agent_answered_at IS NOT NULL AND wait_seconds <= 15),
			count(*) FILTER (WHERE disposition = 'abandoned'),
			count(*) FILTER (WHERE disposition = 'voicemail'),
			count(*) FILTER (WHERE disposition = 'rejected'),
			coalesce(avg(wait_seconds) FILTER (WHERE disposition IS DISTINCT FROM 'rejected'), 0),
			coalesce(max(wait_seconds) FILTER (WHERE disposition IS DISTINCT FROM 'rejected'), 0)
		FROM calls WHERE offered_at >= $2 AND offered_at < $3 AND direction = 'inbound'
		GROUP BY 1 ORDER BY 1`, per, from, to, calendar.Zone)
	if err != nil {
		return nil, fmt.Errorf("KPIs: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (KPI, error) {
		var k KPI
		err := row.Scan(&k.Bucket, &k.Offered, &k.Answered, &k.AnsweredIn15s, &k.Abandoned, &k.Voicemail, &k.Rejected, &k.AvgWait, &k.MaxWait)
		if k.Offered > 0 {
			k.AnswerRate = float64(k.Answered) / float64(k.Offered)
			k.Answer15Rate = float64(k.AnsweredIn15s) / float64(k.Offered)
			k.AbandonRate = float64(k.Abandoned) / float64(k.Offered)
		}
		return k, err
	})
}
