-- Statistics (ticketing/stats): indexes for the KPI queries, which read the ticket events of a period and, for each,
-- the dispatch and the deadline in force before it. No new tables: every figure is computed from the events and
-- the tickets' own deadlines, never from counters kept on the side.

-- Events of one action in a period (dispatches, signs, replies, 回访 results of a month).
CREATE INDEX ticket_events_action_at_idx ON ticket_events (action, at);
-- The dispatch that governs a later event (its unit, its sign-by and time), found backwards from the event.
CREATE INDEX ticket_events_dispatch_idx ON ticket_events (ticket_id, id) WHERE action = 'dispatch';
-- The reply deadline in force before a reply: the last event that set one (dispatch, approved extension, 重办).
CREATE INDEX ticket_events_reply_by_idx ON ticket_events (ticket_id, id) WHERE data ? 'reply_by';
-- Open tickets past their running deadline (the wallboard's red tiles) and replies overdue in a period.
CREATE INDEX tickets_due_at_idx ON tickets (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX tickets_reply_by_open_idx ON tickets (reply_by) WHERE status IN ('dispatched', 'signed');
