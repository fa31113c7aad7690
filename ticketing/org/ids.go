package org

// IDs of the records every package refers to, defined once here so one cannot be passed for another.
type (
	TicketID    int64
	HouseholdID int64
)
