package main

// TicketingConfig holds the settings of ticketing (SLA clocks, routing, queues, outbox relay).
type TicketingConfig struct{}

// Rows of this feature's settings are appended to `settings` in an init function here (see config.go).
