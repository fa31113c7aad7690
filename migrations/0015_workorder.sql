-- The whole work order (issue 11): correction, co-handling (主办/协办), reply approval (审核), suspension (挂起) and
-- the calendar-horizon flag. Sub-states live on the ticket row beside extension_status, so the one writer of
-- ticket changes (ticketing/store.go) keeps every state change one statement with its event and outbox row.

-- 审核: a unit may require its head to approve its clerks' replies.
ALTER TABLE units ADD COLUMN reply_approval boolean NOT NULL DEFAULT false;

ALTER TABLE tickets
    -- A clerk's reply waiting for the head (pending, 待审核) or sent back with a comment (returned, 退回修改).
    ADD COLUMN review_status   text NOT NULL DEFAULT 'none' CHECK (review_status IN ('none', 'pending', 'returned')),
    ADD COLUMN pending_reply   text NOT NULL DEFAULT '',
    ADD COLUMN pending_outcome text NOT NULL DEFAULT '',
    -- 挂起: requested by the unit, approved by supervision; while suspended the reply clock is stopped and
    -- suspend_left_ms keeps the working time that was left on it.
    ADD COLUMN suspend_status  text NOT NULL DEFAULT 'none' CHECK (suspend_status IN ('none', 'requested', 'suspended')),
    ADD COLUMN suspended_at    timestamptz,
    ADD COLUMN suspend_left_ms bigint,
    -- Co-units (协办) that have not signed their part, and those whose opinion (协办意见) is still outstanding.
    ADD COLUMN co_unsigned     bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN co_pending      bigint[] NOT NULL DEFAULT '{}',
    -- A deadline of the ticket lies past the last year of the holiday calendar: counted on weekends alone.
    ADD COLUMN beyond_calendar boolean NOT NULL DEFAULT false;

-- One row per co-unit of a ticket: its own deadline, its signature and its opinion.
CREATE TABLE ticket_co_units (
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    unit_id     bigint NOT NULL REFERENCES units (id),
    assigned_at timestamptz NOT NULL,
    due_at      timestamptz NOT NULL,
    signed_at   timestamptz,
    signed_by   bigint,
    opinion     text NOT NULL DEFAULT '',
    opinion_at  timestamptz,
    opinion_by  text NOT NULL DEFAULT '',
    PRIMARY KEY (ticket_id, unit_id)
);
CREATE INDEX ticket_co_units_unit_idx ON ticket_co_units (unit_id) WHERE opinion_at IS NULL;
