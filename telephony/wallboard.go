package telephony

import (
	"context"
	"fmt"
	"time"

	"hotline/ticketing/org"
)

// Live is the call side of the supervisors' wallboard (监控大屏) at one moment, read from the CDRs and agent states.
type Live struct {
	Waiting       int            `json:"waiting"`              // answered by us (greeting, queue, hold music), no agent yet
	LongestWait   float64        `json:"longest_wait_seconds"` // of those, the one waiting longest
	InProgress    int            `json:"in_progress"`          // with an agent now
	AgentsByState map[string]int `json:"agents_by_state"`      // offline, ready, paused, busy, acw
}

// liveWindow bounds the CDRs read as live: a call is up for minutes, and a CDR left open by a process that died
// (no ended_at) must not sit on the wallboard for ever.
const liveWindow = 4 * time.Hour

// Live reads the call tiles at now (supervisors, heads, admins: the KPIs' rule).
func (s *Service) Live(ctx context.Context, actor org.Actor, now time.Time) (Live, error) {
	if !supervising(actor) {
		return Live{}, forbidden("live")
	}
	l := Live{AgentsByState: map[string]int{"offline": 0, "ready": 0, "paused": 0, "busy": 0, "acw": 0}}
	err := s.db.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE agent_answered_at IS NULL),
			coalesce(extract(epoch FROM $1 - min(offered_at) FILTER (WHERE agent_answered_at IS NULL)), 0),
			count(*) FILTER (WHERE agent_answered_at IS NOT NULL)
		FROM calls WHERE direction = 'inbound' AND ended_at IS NULL AND disposition IS NULL
			AND answered_at IS NOT NULL AND offered_at > $2`, now, now.Add(-liveWindow)).
		Scan(&l.Waiting, &l.LongestWait, &l.InProgress)
	if err != nil {
		return Live{}, fmt.Errorf("live calls: %w", err)
	}
	if l.LongestWait < 0 {
		l.LongestWait = 0
	}
	rows, err := s.db.Query(ctx, `SELECT a.state, count(*) FROM agent_status a JOIN users u ON u.id = a.user_id
		WHERE u.active AND u.role = 'agent' GROUP BY 1`)
	if err != nil {
		return Live{}, fmt.Errorf("live agents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return Live{}, fmt.Errorf("live agents: %w", err)
		}
		l.AgentsByState[st] = n
	}
	if err := rows.Err(); err != nil {
		return Live{}, fmt.Errorf("live agents: %w", err)
	}
	return l, nil
}
