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

-- The facts the KPI queries aggregate, one row per countable fact (a ticket opened, a dispatch and how it ended,
-- a reply and the deadline it met, a 回访 result, a 重办), derived per ticket from its events by
-- ticketing/stats (facts.go) — a cache of that derivation, not counters: a ticket's rows are always deleted and
-- recomputed whole from its events, so they cannot drift, and deleting them all only costs a recomputation.
CREATE TABLE ticket_kpi_facts (
    ticket_id   bigint NOT NULL,
    kind        text NOT NULL,  -- created, dispatch, reply, callback, reopen
    unit_id     bigint,         -- the unit the fact counts for
    region_code text NOT NULL,
    category    text NOT NULL,
    at          timestamptz NOT NULL,
    ok          boolean,        -- created: has a caller number; reply: on time; callback: satisfied
    state       text,           -- dispatch: on_time, late, returned, other, open (not ended yet)
    deadline    timestamptz,    -- dispatch: its sign-by (an open one is overdue once this has passed)
    hours       double precision, -- dispatch/reply: elapsed hours; created: hours since the caller's previous ticket
    ext         boolean NOT NULL DEFAULT false -- reply: made on a deadline an approved extension set
);
CREATE INDEX ticket_kpi_facts_at_idx ON ticket_kpi_facts (at);
CREATE INDEX ticket_kpi_facts_ticket_idx ON ticket_kpi_facts (ticket_id);

-- Tickets whose facts must be recomputed: marked by a trigger in the transaction that writes the event, so no
-- change can be missed (an event id watermark could skip an event committed out of id order).
CREATE TABLE ticket_kpi_dirty (ticket_id bigint PRIMARY KEY);
CREATE FUNCTION ticket_kpi_mark_dirty() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_kpi_dirty (ticket_id) VALUES (NEW.ticket_id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_events_kpi_dirty AFTER INSERT ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION ticket_kpi_mark_dirty();
INSERT INTO ticket_kpi_dirty (ticket_id) SELECT id FROM tickets;
