// Package ticketing owns the organisation tree (承办单位), users and their roles, and the 12345 work order:
// tickets, their state machine, routing, SLA clocks, events and the outbox that feeds the Redis queues.
// It imports nothing of hotline's own; telephony, notify and web depend on it through small interfaces
// they declare themselves.
//
// Every change of a ticket is one transaction: the ticket row (optimistic version check), an append-only event
// row (the database refuses UPDATE, DELETE and TRUNCATE of ticket_events) and outbox rows. Other features hook in
// with Service.OnTransition (runs inside that transaction) and write their own events with Publish.
//
// Two workers run beside the API, each as Run(ctx) until ctx ends, safe to run in several processes at once:
// the Relay moves outbox rows to Redis (the event stream and the unit queues; see queue.go for the keys), and
// Service.RunSweeper emits sla.yellow / sla.red exactly once per ticket, clock and deadline. Redis holds work,
// not truth: Queues.RebuildQueues refills every unit queue from PostgreSQL.
package ticketing
