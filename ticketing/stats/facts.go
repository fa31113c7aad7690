package stats

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"hotline/ticketing/org"
)

// RefreshBatch is how many tickets one Refresh transaction recomputes. Kept small: while a batch runs, an action
// on one of its tickets waits for it (the action's trigger marks the ticket again), for a fraction of a second.
const RefreshBatch = 1000

// factsSQL derives every countable fact of the tickets in $1 from their events, as ticket_kpi_facts rows
// (migration 0012). A fact belongs to a period by the time it happened and to a unit as follows:
//
//	created   the ticket's opening, for its lead unit now; ok = it has a caller number; hours = since that
//	          caller's previous ticket (重复来电率 compares it with the look-back asked for)
//	dispatch  each 派单, for the unit it named; state = how that dispatch ended: signed on_time or late against
//	          the sign-by it set, returned (退单), other (merged or re-dispatched unsigned), open (not yet; overdue
//	          once deadline, its sign-by, has passed); hours = dispatch → sign
//	reply     each 办结答复, for the unit of the dispatch before it; ok = by the reply deadline in force (the last
//	          one set before it: dispatch, approved extension or 重办); ext = that deadline came from an extension;
//	          hours = dispatch → reply
//	callback  each 回访 result, for the unit of the dispatch before it; ok = 满意 or 基本满意
//	reopen    each manual 重办 (an unsatisfied 回访 reopens too and is counted from its callback row)
//
// The look-ups of the dispatch and deadline before an event use the partial indexes of migration 0012.
const factsSQL = `
	INSERT INTO ticket_kpi_facts (ticket_id, kind, unit_id, region_code, category, at, ok, state, deadline, hours, ext)
	SELECT t.id, 'created', t.lead_unit_id, t.region_code, t.category, t.created_at, t.caller_phone <> '', NULL, NULL,
		CASE WHEN t.caller_phone <> '' THEN extract(epoch FROM t.created_at - (
			SELECT max(p.created_at) FROM tickets p WHERE p.caller_phone = t.caller_phone AND p.caller_phone <> ''
				AND p.id <> t.id AND p.created_at < t.created_at)) / 3600 END, false
	FROM tickets t WHERE t.id = ANY($1)
	UNION ALL
	SELECT t.id, 'dispatch', (e.data->>'unit_id')::bigint, t.region_code, t.category, e.at, NULL,
		CASE WHEN n.action = 'sign' AND n.at <= (e.data->>'sign_by')::timestamptz THEN 'on_time'
			WHEN n.action = 'sign' THEN 'late'
			WHEN n.action = 'return' THEN 'returned'
			WHEN n.action IS NOT NULL THEN 'other'
			ELSE 'open' END,
		(e.data->>'sign_by')::timestamptz,
		CASE WHEN n.action = 'sign' THEN extract(epoch FROM n.at - e.at) / 3600 END, false
	FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
	LEFT JOIN LATERAL (SELECT n.action, n.at FROM ticket_events n WHERE n.ticket_id = e.ticket_id AND n.id > e.id
		AND n.action IN ('sign', 'return', 'dispatch', 'merge') ORDER BY n.id LIMIT 1) n ON true
	WHERE e.ticket_id = ANY($1) AND e.action = 'dispatch'
	UNION ALL
	SELECT t.id, CASE e.action WHEN 'reply' THEN 'reply' WHEN 'callback_result' THEN 'callback' ELSE 'reopen' END,
		d.unit_id, t.region_code, t.category, e.at,
		CASE e.action WHEN 'reply' THEN coalesce(e.at <= r.reply_by, true)
			WHEN 'callback_result' THEN e.data->>'result' IN ('satisfied', 'basically_satisfied') END,
		NULL, NULL, CASE WHEN e.action = 'reply' THEN extract(epoch FROM e.at - d.at) / 3600 END,
		coalesce(r.action = 'approve_extension', false)
	FROM ticket_events e JOIN tickets t ON t.id = e.ticket_id
	LEFT JOIN LATERAL (SELECT (d.data->>'unit_id')::bigint AS unit_id, d.at FROM ticket_events d
		WHERE d.ticket_id = e.ticket_id AND d.action = 'dispatch' AND d.id < e.id ORDER BY d.id DESC LIMIT 1) d ON true
	LEFT JOIN LATERAL (SELECT r.action, (r.data->>'reply_by')::timestamptz AS reply_by FROM ticket_events r
		WHERE e.action = 'reply' AND r.ticket_id = e.ticket_id AND r.data ? 'reply_by' AND r.id < e.id
		ORDER BY r.id DESC LIMIT 1) r ON true
	WHERE e.ticket_id = ANY($1) AND e.action IN ('reply', 'callback_result', 'reopen')`

// Refresh recomputes the facts of every ticket an event has marked since (ticket_kpi_dirty), RefreshBatch
// tickets per transaction, and returns how many it recomputed. Refreshes are serialised by an advisory lock, so
// a caller that waited finds the work done and reads complete facts; each batch deletes a ticket's facts and
// writes them again whole, so a refresh cut short leaves only the unprocessed tickets marked. After a migration
// over an existing database every ticket is marked, and the first call does them all.
func Refresh(ctx context.Context, db org.TxBeginner) (int, error) {
	return RefreshReporting(ctx, db, nil)
}

// RefreshReporting is Refresh telling report, when not nil, the running total after each batch (for a long
// refresh run by hand: `hotline stats refresh`).
func RefreshReporting(ctx context.Context, db org.TxBeginner, report func(done int)) (int, error) {
	total := 0
	for {
		n, err := refreshBatch(ctx, db)
		total += n
		if report != nil && n > 0 {
			report(total)
		}
		if err != nil || n < RefreshBatch {
			return total, err
		}
	}
}

// MarkAll marks every ticket for recomputation, so the next refresh derives all facts and day sums again from
// the events (after a change to how facts are derived, or to check nothing drifted); it returns how many it
// marked (those not marked already).
func MarkAll(ctx context.Context, db org.DB) (int64, error) {
	tag, err := db.Exec(ctx, `INSERT INTO ticket_kpi_dirty (ticket_id) SELECT id FROM tickets ON CONFLICT DO NOTHING`)
	if err != nil {
		return 0, fmt.Errorf("mark every ticket for KPI refresh: %w", err)
	}
	return tag.RowsAffected(), nil
}

func refreshBatch(ctx context.Context, db org.TxBeginner) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('hotline.ticket_kpi_facts'))`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL jit = off`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM ticket_kpi_dirty WHERE ticket_id IN (
			SELECT ticket_id FROM ticket_kpi_dirty ORDER BY ticket_id LIMIT $1) RETURNING ticket_id`, RefreshBatch)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) == 0 {
			return err
		}
		n = len(ids)
		// The day sums lose the tickets' old facts and gain their new ones in this transaction, so they are always
		// the sums of the facts (ticket_kpi_daily, migration 0020).
		if err := addDaily(ctx, tx, ids, -1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ticket_kpi_facts WHERE ticket_id = ANY($1)`, ids); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, factsSQL, ids); err != nil {
			return err
		}
		return addDaily(ctx, tx, ids, 1)
	})
	if err != nil {
		return 0, fmt.Errorf("refresh KPI facts: %w", err)
	}
	return n, nil
}
