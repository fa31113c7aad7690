-- Administration (系统管理): the audit log of administrative changes, and units an admin has taken over from the
-- seed.

-- Every administrative change (a user created, disabled or given another role, a password reset, a unit added,
-- renamed or deactivated, an SIP account set) leaves one row: who, what, the object, and its state before and
-- after (never a password or a hash). Written in the same transaction as the change; the database refuses
-- UPDATE, DELETE and TRUNCATE, so neither a bug nor a stolen application login can rewrite the history.
CREATE TABLE admin_audit (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    actor_id       bigint REFERENCES users (id),
    actor_username text NOT NULL,
    action         text NOT NULL CHECK (action ~ '^[a-z_]+\.[a-z_]+$'),   -- user.create, unit.rename, ...
    object         text NOT NULL,                                          -- user:12, unit:5
    before         jsonb,
    after          jsonb,
    source_addr    text NOT NULL DEFAULT ''
);
CREATE INDEX admin_audit_at_idx ON admin_audit (at);
CREATE INDEX admin_audit_object_idx ON admin_audit (object, id);
CREATE INDEX admin_audit_actor_idx ON admin_audit (actor_id, id);
CREATE INDEX admin_audit_action_idx ON admin_audit (action, id);

CREATE FUNCTION admin_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'admin_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER admin_audit_no_update BEFORE UPDATE OR DELETE ON admin_audit
    FOR EACH ROW EXECUTE FUNCTION admin_audit_append_only();
CREATE TRIGGER admin_audit_no_truncate BEFORE TRUNCATE ON admin_audit
    FOR EACH STATEMENT EXECUTE FUNCTION admin_audit_append_only();

-- A unit an admin has renamed or deactivated keeps that: the seed of the organisation tree (run by every
-- `hotline migrate` and `hotline up`) no longer overwrites its name.
ALTER TABLE units ADD COLUMN admin_managed boolean NOT NULL DEFAULT false;

-- SIP trunks (中继) an admin adds in the console, next to those of HOTLINE_SIP_TRUNKS: an entry of the variable
-- wins over a stored trunk of the same name (the operator's override); every SIP process reloads this table
-- every 15 s. Only the digest HA1 (md5(user:realm:password)) of a trunk's credentials is stored, as for agents.
CREATE TABLE sip_trunks (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    networks   text[] NOT NULL DEFAULT '{}',
    numbers    text[] NOT NULL DEFAULT '{}',
    skills     text[] NOT NULL DEFAULT '{}',
    username   text NOT NULL DEFAULT '',
    realm      text NOT NULL DEFAULT '',
    ha1        text NOT NULL DEFAULT '' CHECK (ha1 = '' OR ha1 ~ '^[0-9a-f]{32}$'),
    active     boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(networks) > 0 OR username <> ''),
    CHECK ((username = '') = (ha1 = ''))
);

-- Holiday calendars admins upload (next year's State Council notice, the format of cn_holidays.csv). Kept whole,
-- never changed; at start each process takes the newest upload and lets its years replace those of the embedded
-- calendar or HOTLINE_HOLIDAYS_FILE.
CREATE TABLE holiday_uploads (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uploaded_at timestamptz NOT NULL DEFAULT now(),
    uploaded_by text NOT NULL,
    year_from   integer NOT NULL,
    year_to     integer NOT NULL CHECK (year_to >= year_from),
    off_days    integer NOT NULL,
    body        text NOT NULL
);
