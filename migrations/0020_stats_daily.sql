-- Statistics (ticketing/stats): the facts of ticket_kpi_facts (0012) summed per China-time day × unit × region ×
-- category, so a month's KPIs read a few thousand summed rows instead of every fact of the month (p95 of 1.5–2.7 s
-- at 1,000,000 tickets before). Still no counter of its own: the refresh that rewrites a ticket's facts subtracts
-- the sums of its old facts and adds those of its new ones in the same transaction, so a day row is always the sum
-- of the facts it covers (ticketing/stats facts.go; TestDailyMatchesFacts checks it). Only what does not depend on
-- the moment of the query is summed: open dispatches (overdue once their sign-by passes "now") and open tickets'
-- reply deadlines are still read where they are, through the partial indexes below and of 0012.
CREATE TABLE ticket_kpi_daily (
    day             date NOT NULL,   -- China time
    unit_id         bigint,          -- as in the facts (NULL: a reply or 回访 with no dispatch before it)
    region_code     text NOT NULL,
    category        text NOT NULL,
    created         integer NOT NULL DEFAULT 0,
    with_phone      integer NOT NULL DEFAULT 0,
    dispatched      integer NOT NULL DEFAULT 0,
    returned        integer NOT NULL DEFAULT 0,
    signed          integer NOT NULL DEFAULT 0,
    signed_on_time  integer NOT NULL DEFAULT 0,
    replied         integer NOT NULL DEFAULT 0,
    replied_on_time integer NOT NULL DEFAULT 0,
    extended        integer NOT NULL DEFAULT 0,
    callbacks       integer NOT NULL DEFAULT 0,
    satisfied       integer NOT NULL DEFAULT 0,
    reopened        integer NOT NULL DEFAULT 0,
    sign_hours      numeric NOT NULL DEFAULT 0, -- sum of the dispatches' hours to sign (numeric: exact sums)
    sign_hours_n    integer NOT NULL DEFAULT 0, -- how many of them have hours
    reply_hours     numeric NOT NULL DEFAULT 0,
    reply_hours_n   integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX ticket_kpi_daily_key ON ticket_kpi_daily (day, unit_id, region_code, category) NULLS NOT DISTINCT;
-- Rows left with nothing after a refresh subtracted a ticket's old facts, deleted by the same refresh.
CREATE INDEX ticket_kpi_daily_empty_idx ON ticket_kpi_daily (day)
    WHERE created = 0 AND dispatched = 0 AND replied = 0 AND callbacks = 0 AND reopened = 0;

-- 重复来电率 depends on the look-back asked for (1 to 365 days), so the created facts with a caller number are
-- counted per smallest whole number of days within which the caller's previous ticket lies (gap_days: hours <=
-- gap_days × 24); a look-back of N days counts gap_days <= N. Gaps beyond 365 days are never counted and not kept.
CREATE TABLE ticket_kpi_daily_repeat (
    day         date NOT NULL,
    unit_id     bigint,
    region_code text NOT NULL,
    category    text NOT NULL,
    gap_days    integer NOT NULL,
    n           integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX ticket_kpi_daily_repeat_key ON ticket_kpi_daily_repeat (day, unit_id, region_code, category, gap_days)
    NULLS NOT DISTINCT;
CREATE INDEX ticket_kpi_daily_repeat_empty_idx ON ticket_kpi_daily_repeat (day) WHERE n = 0;

-- Open dispatches of a period, whose overdue count depends on now.
CREATE INDEX ticket_kpi_facts_open_idx ON ticket_kpi_facts (at) WHERE state = 'open';

-- Backfill from the facts as they are: tickets still marked in ticket_kpi_dirty are brought up to date by the next
-- refresh, which subtracts these sums of their current facts and adds their new ones.
INSERT INTO ticket_kpi_daily (day, unit_id, region_code, category, created, with_phone, dispatched, returned, signed,
        signed_on_time, replied, replied_on_time, extended, callbacks, satisfied, reopened, sign_hours, sign_hours_n,
        reply_hours, reply_hours_n)
    SELECT (at AT TIME ZONE 'Asia/Shanghai')::date, unit_id, region_code, category,
        count(*) FILTER (WHERE kind = 'created'),
        count(*) FILTER (WHERE kind = 'created' AND ok),
        count(*) FILTER (WHERE kind = 'dispatch'),
        count(*) FILTER (WHERE kind = 'dispatch' AND state = 'returned'),
        count(*) FILTER (WHERE kind = 'dispatch' AND state IN ('on_time', 'late')),
        count(*) FILTER (WHERE kind = 'dispatch' AND state = 'on_time'),
        count(*) FILTER (WHERE kind = 'reply'),
        count(*) FILTER (WHERE kind = 'reply' AND ok),
        count(*) FILTER (WHERE kind = 'reply' AND ext),
        count(*) FILTER (WHERE kind = 'callback'),
        count(*) FILTER (WHERE kind = 'callback' AND ok),
        count(*) FILTER (WHERE kind = 'reopen' OR (kind = 'callback' AND NOT ok)),
        coalesce(sum(hours::numeric) FILTER (WHERE kind = 'dispatch'), 0),
        count(hours) FILTER (WHERE kind = 'dispatch'),
        coalesce(sum(hours::numeric) FILTER (WHERE kind = 'reply'), 0),
        count(hours) FILTER (WHERE kind = 'reply')
    FROM ticket_kpi_facts GROUP BY 1, 2, 3, 4;
INSERT INTO ticket_kpi_daily_repeat (day, unit_id, region_code, category, gap_days, n)
    SELECT (at AT TIME ZONE 'Asia/Shanghai')::date, unit_id, region_code, category, g.gap, count(*)
    FROM ticket_kpi_facts
    CROSS JOIN LATERAL (SELECT greatest(0, CASE WHEN hours > ceil(hours / 24) * 24 THEN ceil(hours / 24) + 1
        ELSE ceil(hours / 24) END)::integer AS gap) g
    WHERE kind = 'created' AND ok AND hours IS NOT NULL AND g.gap <= 365
    GROUP BY 1, 2, 3, 4, 5;
