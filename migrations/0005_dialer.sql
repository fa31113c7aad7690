-- Outbound dialer: call campaigns over monitored households, their frozen target lists, every call attempt,
-- opt-outs, the dialer processes' heartbeats (crash safety) and agents' click-to-call legs.
-- household_id and ticket_id carry no foreign key: those tables belong to other features' migrations and a
-- campaign's history must outlive a household record being merged or purged.

CREATE TABLE campaigns (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    purpose         text NOT NULL CHECK (purpose IN ('checkin', 'callback', 'notice')),
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'running', 'paused', 'finished', 'cancelled')),
    -- The standing 回访 campaign takes new targets while it runs and never finishes by itself.
    standing        boolean NOT NULL DEFAULT false,
    target_query    jsonb NOT NULL DEFAULT '{}',
    script          jsonb NOT NULL,
    windows         jsonb NOT NULL,
    timezone        text NOT NULL DEFAULT 'Asia/Shanghai',
    max_concurrent  int NOT NULL CHECK (max_concurrent > 0),
    pace            double precision NOT NULL CHECK (pace > 0),
    retry           jsonb NOT NULL,
    daily_cap       int NOT NULL CHECK (daily_cap > 0),
    ring_timeout_ms int NOT NULL CHECK (ring_timeout_ms > 0),
    caller_id       text NOT NULL,
    trunk           text NOT NULL DEFAULT 'default',
    optout_key      text NOT NULL DEFAULT '' CHECK (optout_key ~ '^[0-9*#]?$'),
    created_by      bigint REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    launched_at     timestamptz,
    ended_at        timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX campaigns_standing_idx ON campaigns (purpose) WHERE standing AND status IN ('draft', 'running', 'paused');
CREATE INDEX campaigns_status_idx ON campaigns (status);

-- One target per household (or per ticket for 回访), frozen at launch. household_id 0: a 回访 of a caller who is not
-- a monitored household (only its retry rules apply; no daily cap or opt-out can be keyed on it).
CREATE TABLE campaign_targets (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns (id),
    household_id bigint NOT NULL,
    ticket_id    bigint,
    region_code  text NOT NULL DEFAULT '',
    phone_count  int NOT NULL CHECK (phone_count > 0),
    phone_index  int NOT NULL DEFAULT 0,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'queued', 'dialing', 'completed', 'exhausted', 'opted_out', 'manual', 'cancelled')),
    attempts     int NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL,
    queued_at    timestamptz,
    last_outcome text NOT NULL DEFAULT '',
    answers      jsonb NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX campaign_targets_household_idx ON campaign_targets (campaign_id, household_id) WHERE ticket_id IS NULL;
CREATE UNIQUE INDEX campaign_targets_ticket_idx ON campaign_targets (campaign_id, ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX campaign_targets_due_idx ON campaign_targets (campaign_id, next_at) WHERE state = 'pending';
CREATE INDEX campaign_targets_queued_idx ON campaign_targets (queued_at) WHERE state = 'queued';

-- Every call attempt is a row; outcome 'in_progress' while the call is up.
CREATE TABLE campaign_attempts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns (id),
    target_id    bigint NOT NULL REFERENCES campaign_targets (id),
    household_id bigint NOT NULL,
    attempt_no   int NOT NULL,
    phone_index  int NOT NULL,
    phone_masked text NOT NULL DEFAULT '',
    worker       text NOT NULL,
    call_id      text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    local_day    date NOT NULL,
    answered_at  timestamptz,
    ended_at     timestamptz,
    sip_code     int NOT NULL DEFAULT 0,
    outcome      text NOT NULL DEFAULT 'in_progress' CHECK (outcome IN ('in_progress', 'answered', 'no_answer', 'busy', 'failed', 'interrupted')),
    answers      jsonb NOT NULL DEFAULT '{}',
    UNIQUE (target_id, attempt_no)
);
CREATE INDEX campaign_attempts_campaign_idx ON campaign_attempts (campaign_id, outcome);
CREATE INDEX campaign_attempts_household_day_idx ON campaign_attempts (household_id, local_day);
CREATE INDEX campaign_attempts_live_idx ON campaign_attempts (worker) WHERE outcome = 'in_progress';

-- A household that pressed the opt-out key is never called again for that purpose.
CREATE TABLE campaign_optouts (
    household_id bigint NOT NULL,
    purpose      text NOT NULL,
    campaign_id  bigint REFERENCES campaigns (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (household_id, purpose)
);

-- Liveness of dialer processes: an attempt whose worker stopped beating was cut off by a crash.
CREATE TABLE dialer_workers (
    id           text PRIMARY KEY,
    host         text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- Agents' click-to-call: agent leg first, then the household, bridged and recorded.
CREATE TABLE click_calls (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id       bigint NOT NULL REFERENCES users (id),
    household_id   bigint,
    ticket_id      bigint,
    phone_index    int NOT NULL DEFAULT 0,
    phone_masked   text NOT NULL DEFAULT '',
    state          text NOT NULL DEFAULT 'ringing_agent' CHECK (state IN ('ringing_agent', 'ringing_household', 'bridged', 'ended', 'failed')),
    agent_call_id  text NOT NULL DEFAULT '',
    remote_call_id text NOT NULL DEFAULT '',
    sip_code       int NOT NULL DEFAULT 0,
    reason         text NOT NULL DEFAULT '',
    cdr_id         bigint,           -- the call's CDR (telephony), which links the recording
    created_at     timestamptz NOT NULL DEFAULT now(),
    bridged_at     timestamptz,
    ended_at       timestamptz
);
CREATE INDEX click_calls_household_idx ON click_calls (household_id);
CREATE INDEX click_calls_ticket_idx ON click_calls (ticket_id);
