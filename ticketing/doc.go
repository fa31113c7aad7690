// Package ticketing owns the organisation tree (承办单位), users and their roles, and the 12345 work order:
// tickets, their state machine, routing, SLA clocks, events and the outbox that feeds the Redis queues.
// It imports nothing of hotline's own; telephony, notify and web depend on it through small interfaces
// they declare themselves.
package ticketing
