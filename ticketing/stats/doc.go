// Package stats computes the case statistics the 12345 practice is judged by — 按时签收率, 按时办结率, 满意率, 重办率,
// 退单率, 延期率, 重复来电率 and the average times to sign and to reply — per unit, region, category and period, and
// the ticket side of the supervisors' live wallboard, and writes the daily, weekly and monthly reports (统计报表)
// as .xlsx and CSV.
//
// Every figure comes from the append-only ticket events and the tickets' own deadlines, never from counters kept on
// the side. The events of each ticket are turned into fact rows (facts.go: a dispatch and how it ended, a reply
// and the deadline it met, …) that are always recomputed whole from the events; the trigger of migration 0012
// marks a ticket in the transaction that writes its event, and every KPI read first recomputes the marked tickets,
// so the figures are as fresh as the events. The same refresh keeps the facts' day sums (daily.go), and a
// KPI query reads the sums of the period's whole days and the facts of its partial days. Deadlines were computed on the
// working-day calendar when they were set (dispatch, approved extension, 重办) and travel in the events' data, so
// "on time" is right across holidays and extensions without the calendar being consulted again here.
//
// Authorization is Authorize (which units an actor may count) and AuthorizeBureau (the whole bureau side by side).
// The package starts no goroutines: the facts are brought up to date by the reads that need them.
package stats
