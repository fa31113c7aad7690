// Package ticketing owns the 12345 work order: tickets, their state machine (one function per action,
// transition.go), routing, SLA clocks, events and the outbox that feeds the Redis queues. Identity, units, IDs and
// errors live in the leaf package ticketing/org. It imports nothing of hotline's own beyond its subpackages;
// telephony, notify and web depend on it through small interfaces they declare themselves.
//
// Every change of a ticket is one statement written by one writer (store.go): the ticket row (optimistic version
// check), its append-only event rows (the database refuses UPDATE, DELETE and TRUNCATE of ticket_events) and
// their outbox rows, inside the action's transaction. Other features hook in
// with Service.OnTransition (runs inside that transaction) and write their own events with Publish.
//
// Two workers run beside the API, each as Run(ctx) until ctx ends, safe to run in several processes at once:
// the Relay moves outbox rows to Redis (the event stream and the unit queues; see queue.go for the keys), and
// Service.RunSweeper emits sla.yellow / sla.red exactly once per ticket, clock and deadline (a co-unit's opinion
// deadline included, addressed to that co-unit). Redis holds work,
// not truth: Queues.RebuildQueues refills every unit queue from PostgreSQL.
package ticketing
