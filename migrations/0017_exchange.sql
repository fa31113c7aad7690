-- The 12345 platform exchange (ticketing/exchange): work orders pushed or polled from a platform become tickets,
-- our actions go back to the platform through a transactional outbox of its own.

-- One row per platform order: the unique key is what makes the same order pushed twice one ticket.
CREATE TABLE exchange_orders (
    platform          text NOT NULL,
    order_id          text NOT NULL CHECK (length(order_id) BETWEEN 1 AND 100),
    ticket_id         bigint NOT NULL UNIQUE REFERENCES tickets (id),
    category_code     text NOT NULL DEFAULT '', -- the platform's codes, as sent
    region_code       text NOT NULL DEFAULT '',
    platform_deadline timestamptz,              -- the platform's own clock, kept beside ours
    state             text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'withdrawn')),
    received_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, order_id)
);

-- Updates to an order (补充材料, 催办, 撤单) are applied once each: the platform's update id is the key.
CREATE TABLE exchange_updates (
    platform    text NOT NULL,
    order_id    text NOT NULL,
    update_id   text NOT NULL CHECK (length(update_id) BETWEEN 1 AND 100),
    kind        text NOT NULL,
    event_id    bigint,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, order_id, update_id),
    FOREIGN KEY (platform, order_id) REFERENCES exchange_orders (platform, order_id)
);

-- Nonces of signed requests, remembered past the ±5 minute window. Redis holds them too (fast path); this table
-- keeps a replay refused when Redis was flushed.
CREATE TABLE exchange_nonces (
    platform   text NOT NULL,
    nonce      text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (platform, nonce)
);
CREATE INDEX exchange_nonces_expiry_idx ON exchange_nonces (expires_at);

-- The platform's category and region codes to ours, edited by admins. Code '*' in exchange_category_map is the
-- platform's default category for codes without a row.
CREATE TABLE exchange_category_map (
    platform   text NOT NULL,
    code       text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    category   text NOT NULL REFERENCES ticket_categories (code),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by bigint,
    PRIMARY KEY (platform, code)
);
CREATE TABLE exchange_region_map (
    platform    text NOT NULL,
    code        text NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    region_code text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  bigint,
    PRIMARY KEY (platform, code)
);
-- Codes that arrived without a mapping: the report admins work from.
CREATE TABLE exchange_unmapped (
    platform      text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('category', 'region')),
    code          text NOT NULL,
    count         integer NOT NULL DEFAULT 1,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    last_order_id text NOT NULL,
    PRIMARY KEY (platform, kind, code)
);

-- Attachments of orders and updates: listed in the transaction that takes the order, fetched afterwards.
CREATE TABLE exchange_attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform     text NOT NULL,
    order_id     text NOT NULL,
    ticket_id    bigint NOT NULL REFERENCES tickets (id),
    name         text NOT NULL,
    url          text NOT NULL,
    state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored', 'failed')),
    storage_key  text NOT NULL DEFAULT '',
    size         bigint NOT NULL DEFAULT 0,
    sha256       text NOT NULL DEFAULT '',
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    last_error   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, order_id, url)
);
CREATE INDEX exchange_attachments_due_idx ON exchange_attachments (next_at) WHERE state = 'pending';

-- What goes back to the platform: written in the transaction of the ticket action (a TransitionHook), sent by
-- the sender with the event's idempotency key, retried with back-off, dead-lettered after the last attempt.
CREATE TABLE exchange_outbound (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform        text NOT NULL,
    order_id        text NOT NULL,
    ticket_id       bigint NOT NULL REFERENCES tickets (id),
    event_id        bigint NOT NULL UNIQUE,
    action          text NOT NULL,
    idempotency_key text NOT NULL UNIQUE,
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_at         timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    FOREIGN KEY (platform, order_id) REFERENCES exchange_orders (platform, order_id)
);
CREATE INDEX exchange_outbound_due_idx ON exchange_outbound (next_at, id) WHERE state = 'pending';
CREATE INDEX exchange_outbound_order_idx ON exchange_outbound (platform, order_id, id);
CREATE INDEX exchange_outbound_ticket_idx ON exchange_outbound (ticket_id, id);

-- Polling platforms: where the last poll stopped, and a lease so one process polls a platform at a time.
CREATE TABLE exchange_cursors (
    platform    text PRIMARY KEY,
    cursor      text NOT NULL DEFAULT '',
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    polled_at   timestamptz
);

-- Daily reconciliation: one run per platform and day (the key keeps it once however many processes run).
CREATE TABLE exchange_reconciliations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform    text NOT NULL,
    day         date NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    ours_open   integer NOT NULL DEFAULT 0,
    theirs_open integer NOT NULL DEFAULT 0,
    differences jsonb NOT NULL DEFAULT '[]',
    error       text NOT NULL DEFAULT '',
    manual      boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX exchange_reconciliations_daily_idx ON exchange_reconciliations (platform, day) WHERE NOT manual;

-- The platform's deadline as a clock of its own: one yellow and one red alert per order and deadline, exactly
-- once whatever the number of processes (the key), each also an event on the ticket.
CREATE TABLE exchange_deadline_alerts (
    platform text NOT NULL,
    order_id text NOT NULL,
    deadline timestamptz NOT NULL,
    level    text NOT NULL CHECK (level IN ('yellow', 'red')),
    at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform, order_id, deadline, level)
);
