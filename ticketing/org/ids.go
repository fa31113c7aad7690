// Package org is the shared layer every other package builds on, and imports nothing of hotline's own: the
// organisation tree (承办单位: units), users, their roles and permissions, the acting user (Actor) and bearer
// tokens; the ID types every package refers to; the error kinds callers branch on (ErrNotFound, ErrForbidden,
// ValidationError, StateError…); and the DB interface store functions take, with SQLState for PostgreSQL's error
// codes.
package org

// IDs of the records every package refers to, defined once here so one cannot be passed for another.
type (
	TicketID    int64
	HouseholdID int64
)
