// Package exchange is the adapter between hotline and a 12345 government-hotline platform (政务服务便民热线平台):
// work orders the platform pushes to us (or that we poll for) become tickets through ticketing.Service; our 签收,
// 办结答复, 退单, 延期申请, 回访 results, 阶段性答复, approved 挂起 (with the request's reason) and 解除挂起 go back
// to the platform, which runs its own 办理时限 and public progress page (outboundActions says what stays ours).
//
// The wire format of a platform is a Dialect (dialect.go); the province's 12345 contract we implement is
// dialect_12345v1.go, so a second platform's format is one more file. Signing (sign.go) is shared by every
// dialect: HMAC-SHA256 over method, request target, timestamp, nonce and body with the platform's secret.
//
// Inbound (inbound.go): a request is checked (signature, timestamp within ±5 minutes, nonce never seen — Redis
// first, then a PostgreSQL table that survives a Redis flush) and applied in one transaction: the order row
// (unique per platform and order id, so the same order twice makes one ticket), the ticket, and for updates
// (补充材料, 催办, 撤单) an event on the ticket, once per update id.
//
// Outbound (outbound.go): a TransitionHook writes an exchange_outbound row in the transaction of every ticket
// action the platform must hear of — the transactional outbox, kept in a table of its own because the generic
// outbox rows are deleted once Redis has them and the platform's answer is ours to record. The sender (Run)
// sends each row with the event's idempotency key, one order's rows in order, retries with back-off and
// dead-letters after the last attempt; admins send dead rows again. A crash between the platform's answer and
// our commit sends the row again with the same key, which the platform recognises.
//
// Run is the one background loop per process (sender, attachment fetcher, poller, daily reconciliation, nonce
// expiry); several processes may run it at once: rows are taken with FOR UPDATE SKIP LOCKED, a platform is
// polled under a lease, a day's reconciliation is one row. It returns when ctx ends.
package exchange
