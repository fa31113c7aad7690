-- Telephony: agents' SIP accounts and states, call detail records (CDRs), recordings and callback tasks (漏接回拨).
-- tickets and households belong to other features; their ids are stored here without foreign keys so this file
-- does not depend on the order in which those tables were created.

-- SIP credentials of an agent (a user with role agent). Only HA1 = md5(sip_user:realm:password) is stored, as
-- RFC 2617 digest needs nothing more; changing the realm therefore means setting the passwords again.
CREATE TABLE sip_accounts (
    user_id    bigint PRIMARY KEY REFERENCES users (id),
    sip_user   text NOT NULL UNIQUE CHECK (sip_user ~ '^[a-z0-9_.-]{2,64}$'),
    realm      text NOT NULL,
    ha1        text NOT NULL CHECK (ha1 ~ '^[0-9a-f]{32}$'),
    skills     text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The current state of each agent. ACD picks the ready agent idle longest (idle_since) whose skills fit, with
-- FOR UPDATE SKIP LOCKED, so any number of SIP processes can share one pool of agents.
CREATE TABLE agent_status (
    user_id    bigint PRIMARY KEY REFERENCES users (id),
    state      text NOT NULL DEFAULT 'offline' CHECK (state IN ('offline', 'ready', 'paused', 'busy', 'acw')),
    reason     text NOT NULL DEFAULT '',
    call_id    bigint,
    since      timestamptz NOT NULL DEFAULT now(),
    idle_since timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_status_ready_idx ON agent_status (idle_since) WHERE state = 'ready';

-- Append-only history of agent states (for occupancy reports).
CREATE TABLE agent_state_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    state   text NOT NULL,
    reason  text NOT NULL DEFAULT '',
    call_id bigint,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_state_log_user_idx ON agent_state_log (user_id, at);

-- One row per inbound call (CDR). disposition is NULL while the call is up.
CREATE TABLE calls (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sip_call_id       text NOT NULL,
    direction         text NOT NULL DEFAULT 'inbound' CHECK (direction IN ('inbound', 'outbound')),
    trunk             text NOT NULL DEFAULT '',
    caller            text NOT NULL DEFAULT '',  -- normalised (ticketing/phone), '' if unusable
    caller_raw        text NOT NULL DEFAULT '',
    dialled           text NOT NULL DEFAULT '',
    offered_at        timestamptz NOT NULL DEFAULT now(),
    answered_at       timestamptz,              -- we answered the caller (greeting)
    agent_answered_at timestamptz,              -- an agent picked up
    ended_at          timestamptz,
    disposition       text CHECK (disposition IN ('answered', 'abandoned', 'voicemail', 'rejected', 'failed')),
    end_reason        text NOT NULL DEFAULT '',
    sip_status        integer,
    agent_id          bigint REFERENCES users (id),
    agents_tried      integer NOT NULL DEFAULT 0,
    recording_id      bigint,
    ticket_id         bigint,
    household_id      bigint,
    wait_seconds      double precision,         -- offered → agent answered, or → end when no agent answered
    talk_seconds      double precision          -- agent answered → end
);
CREATE INDEX calls_offered_idx ON calls (offered_at);
CREATE INDEX calls_caller_idx ON calls (caller);
CREATE INDEX calls_sip_call_id_idx ON calls (sip_call_id);

CREATE TABLE recordings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id     bigint NOT NULL REFERENCES calls (id),
    kind        text NOT NULL CHECK (kind IN ('call', 'voicemail')),
    path        text NOT NULL,  -- relative to the recordings directory
    channels    integer NOT NULL,
    bytes       bigint NOT NULL,
    duration_ms bigint NOT NULL,
    ticket_id   bigint,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_call_idx ON recordings (call_id);
ALTER TABLE calls ADD CONSTRAINT calls_recording_fk FOREIGN KEY (recording_id) REFERENCES recordings (id);

-- Missed calls to ring back (漏接回拨): one open task per caller number; repeated misses bump attempts.
CREATE TABLE callback_tasks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    caller      text NOT NULL,
    reason      text NOT NULL CHECK (reason IN ('voicemail', 'abandoned')),
    call_id     bigint NOT NULL REFERENCES calls (id),
    ticket_id   bigint,
    misses      integer NOT NULL DEFAULT 1,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    closed_by   bigint REFERENCES users (id),
    closed_note text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX callback_tasks_open_idx ON callback_tasks (caller) WHERE status = 'open';
CREATE INDEX callback_tasks_status_idx ON callback_tasks (status, created_at);
