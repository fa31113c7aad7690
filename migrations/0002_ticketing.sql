-- Ticketing: the 12345 work order (工单), its immutable event log, the outbox that feeds Redis, the matter
-- categories and routing rules (派单目录), daily ticket numbers and SLA alerts.

-- Matter categories (DOMAIN.md). Deadlines per category override the defaults by kind (NULL: the default).
CREATE TABLE ticket_categories (
    code               text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,47}$'),
    name               text NOT NULL,
    lead_unit_code     text NOT NULL,            -- a unit code, or 'region' for the county bureau of the ticket's region
    fallback_unit_code text NOT NULL DEFAULT '', -- when lead is 'region' and the region is unknown
    reply_days         integer CHECK (reply_days > 0),
    urgent_reply_hours integer CHECK (urgent_reply_hours > 0),
    position           integer NOT NULL DEFAULT 0,
    active             boolean NOT NULL DEFAULT true
);

-- Routing rules, tried in position order; the first match names the unit. Every change bumps version and keeps
-- the old row in routing_rule_history, so a dispatch can always say which rule and version chose its unit.
CREATE TABLE routing_rules (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position      integer NOT NULL,
    name          text NOT NULL,
    kinds         text[] NOT NULL DEFAULT '{}', -- empty: any kind
    categories    text[] NOT NULL DEFAULT '{}', -- empty: any category
    region_prefix text NOT NULL DEFAULT '',
    keywords      text[] NOT NULL DEFAULT '{}', -- any of them in the content; empty: no keyword needed
    has_household boolean,                      -- NULL: either
    unit_code     text NOT NULL,                -- a unit code, or 'region' for the county bureau of the region
    active        boolean NOT NULL DEFAULT true,
    version       integer NOT NULL DEFAULT 1,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint
);
CREATE TABLE routing_rule_history (
    rule_id       bigint NOT NULL REFERENCES routing_rules (id),
    version       integer NOT NULL,
    position      integer NOT NULL,
    name          text NOT NULL,
    kinds         text[] NOT NULL,
    categories    text[] NOT NULL,
    region_prefix text NOT NULL,
    keywords      text[] NOT NULL,
    has_household boolean,
    unit_code     text NOT NULL,
    active        boolean NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    bigint,
    PRIMARY KEY (rule_id, version)
);

-- Daily ticket numbers are handed out in blocks (see number.go), so creating tickets never queues on one row.
CREATE TABLE ticket_counters (
    day  date PRIMARY KEY,
    last integer NOT NULL
);

CREATE TABLE tickets (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number             text NOT NULL UNIQUE,
    query_code         text NOT NULL CHECK (query_code ~ '^[0-9]{6}$'),
    source             text NOT NULL CHECK (source IN ('phone', 'voicemail', 'campaign', 'web', 'api', '12345')),
    caller_name        text NOT NULL DEFAULT '',
    caller_phone       text NOT NULL DEFAULT '', -- normalised (ticketing/phone)
    region_code        text NOT NULL DEFAULT '',
    household_id       bigint,                   -- monitoring records; the FK comes with the monitoring migration
    kind               text NOT NULL CHECK (kind IN ('consultation', 'help', 'complaint', 'report', 'suggestion')),
    category           text NOT NULL REFERENCES ticket_categories (code),
    urgency            text NOT NULL DEFAULT 'normal' CHECK (urgency IN ('normal', 'urgent')),
    content            text NOT NULL,
    confidential       boolean NOT NULL DEFAULT false,
    status             text NOT NULL CHECK (status IN ('new', 'dispatched', 'signed', 'replied', 'callback', 'closed', 'returned')),
    lead_unit_id       bigint NOT NULL REFERENCES units (id),
    co_unit_ids        bigint[] NOT NULL DEFAULT '{}',
    assignee_id        bigint REFERENCES users (id),
    route_unit_id      bigint REFERENCES units (id), -- what the routing directory chose (before any override)
    route_rule_id      bigint REFERENCES routing_rules (id),
    route_rule_version integer,
    sign_by            timestamptz,
    reply_by           timestamptz,
    callback_by        timestamptz,
    due_kind           text CHECK (due_kind IN ('sign', 'reply', 'callback')), -- the clock running now
    due_at             timestamptz,
    yellow_at          timestamptz,
    extension_status   text NOT NULL DEFAULT 'none' CHECK (extension_status IN ('none', 'requested', 'approved', 'refused')),
    extension_days     integer NOT NULL DEFAULT 0,
    urge_count         integer NOT NULL DEFAULT 0,
    supervised         boolean NOT NULL DEFAULT false,
    reply_text         text NOT NULL DEFAULT '',
    outcome            text NOT NULL DEFAULT '',
    satisfaction       text NOT NULL DEFAULT '',
    reopen_count       integer NOT NULL DEFAULT 0,
    merged_into        bigint REFERENCES tickets (id),
    idempotency_key    text,
    created_by         bigint,   -- users.id; 0/NULL for the system
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    dispatched_at      timestamptz,
    closed_at          timestamptz,
    version            integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tickets_idem_idx ON tickets (coalesce(created_by, 0), idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tickets_unit_idx ON tickets (lead_unit_id, id DESC);
CREATE INDEX tickets_status_idx ON tickets (status, id DESC);
CREATE INDEX tickets_phone_idx ON tickets (caller_phone, created_at DESC) WHERE caller_phone <> '';
CREATE INDEX tickets_household_idx ON tickets (household_id, created_at DESC) WHERE household_id IS NOT NULL;
CREATE INDEX tickets_due_idx ON tickets (yellow_at) WHERE due_at IS NOT NULL;
CREATE INDEX tickets_merged_idx ON tickets (merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX tickets_created_idx ON tickets (created_at DESC);

-- The history of every ticket: one row per action, never updated or deleted (the triggers refuse it).
CREATE TABLE ticket_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id   bigint NOT NULL REFERENCES tickets (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    bigint,
    actor_name  text NOT NULL,
    actor_role  text NOT NULL,
    action      text NOT NULL,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    note        text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ticket_events_ticket_idx ON ticket_events (ticket_id, id);

CREATE FUNCTION ticket_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ticket_events are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER ticket_events_no_update BEFORE UPDATE OR DELETE ON ticket_events
    FOR EACH ROW EXECUTE FUNCTION ticket_events_immutable();
CREATE TRIGGER ticket_events_no_truncate BEFORE TRUNCATE ON ticket_events
    FOR EACH STATEMENT EXECUTE FUNCTION ticket_events_immutable();

-- Transactional outbox: written in the transaction of the change, published to Redis by the relay, then deleted.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    key        text NOT NULL DEFAULT '',
    payload    jsonb NOT NULL,
    queue      jsonb,                    -- unit-queue operations for the relay (ticket changes only)
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per ticket, clock, deadline and level: the unique key makes the sweeper's alerts exactly-once even
-- with several sweepers running.
CREATE TABLE sla_alerts (
    ticket_id bigint NOT NULL REFERENCES tickets (id),
    due_kind  text NOT NULL,
    due_at    timestamptz NOT NULL,
    level     text NOT NULL CHECK (level IN ('yellow', 'red')),
    at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ticket_id, due_kind, due_at, level)
);

INSERT INTO ticket_categories (code, name, lead_unit_code, fallback_unit_code, position) VALUES
    ('monitoring_help',      '防返贫监测求助',     'region',           'div-monitoring', 10),
    ('monitoring_verify',    '防返贫监测核实',     'region',           'div-monitoring', 20),
    ('three_guarantees',     '三保障与饮水安全',   'region',           'div-monitoring', 30),
    ('relocation',           '易地搬迁后续扶持',   'div-coordination', '', 40),
    ('industry_credit',      '产业帮扶与小额信贷', 'div-development',  '', 50),
    ('employment',           '就业帮扶',           'div-development',  '', 60),
    ('village_teams',        '驻村与结对帮扶',     'div-social',       '', 70),
    ('rural_construction',   '乡村建设',           'div-development',  '', 80),
    ('living_environment',   '人居环境与厕所革命', 'div-development',  '', 90),
    ('governance_customs',   '乡村治理与移风易俗', 'div-coordination', '', 100),
    ('funds_assets',         '衔接资金与项目资产', 'div-finance',      '', 110),
    ('solar_plants',         '光伏电站',           'div-development',  '', 120),
    ('misconduct_report',    '举报',               'div-discipline',   '', 130),
    ('policy_question',      '政策咨询',           'div-policy',       '', 140),
    ('public_opinion',       '舆情',               'div-general',      '', 150);

-- The seeded directory: reports of fund misuse and of misconduct go to the discipline team; a matter about one
-- household goes to its county bureau; otherwise the category's lead unit. No match: the dispatch desk.
INSERT INTO routing_rules (position, name, kinds, categories, keywords, has_household, unit_code) VALUES
    (10, '举报资金违规 → 驻局纪检监察组', '{report}', '{}', '{挪用,套取,截留,贪污,侵占,冒领,虚报,骗取,优亲厚友}', NULL, 'div-discipline'),
    (20, '举报 → 驻局纪检监察组', '{report}', '{misconduct_report}', '{}', NULL, 'div-discipline'),
    (30, '涉及监测户的事项 → 所在县市区乡村振兴局', '{}', '{}', '{}', true, 'region'),
    (40, '防返贫监测/三保障 → 所在县市区乡村振兴局', '{}', '{monitoring_help,monitoring_verify,three_guarantees}', '{}', NULL, 'region'),
    (100, '易地搬迁 → 政策协调处', '{}', '{relocation,governance_customs}', '{}', NULL, 'div-coordination'),
    (110, '产业/就业/乡村建设/人居环境/光伏 → 开发指导处', '{}', '{industry_credit,employment,rural_construction,living_environment,solar_plants}', '{}', NULL, 'div-development'),
    (120, '驻村与结对帮扶 → 社会帮扶处', '{}', '{village_teams}', '{}', NULL, 'div-social'),
    (130, '衔接资金与项目资产 → 规划财务处', '{}', '{funds_assets}', '{}', NULL, 'div-finance'),
    (140, '政策咨询 → 政策法规处', '{}', '{policy_question}', '{}', NULL, 'div-policy'),
    (150, '舆情 → 综合处', '{}', '{public_opinion}', '{}', NULL, 'div-general');
INSERT INTO routing_rule_history (rule_id, version, position, name, kinds, categories, region_prefix, keywords,
                                  has_household, unit_code, active, updated_at, updated_by)
    SELECT id, version, position, name, kinds, categories, region_prefix, keywords, has_household, unit_code, active,
           updated_at, updated_by FROM routing_rules;
