-- Security: the audit log of security events, one person per ID number, and tickets that point at real
-- households.

-- Security events: logins and failed logins (with the source address), sign-outs and token revocations,
-- password changes, exports, reveals, exact-match look-ups of personal data, permission refusals. Append-only
-- like pii_reveals: the database refuses UPDATE and TRUNCATE always, and DELETE except through
-- security_audit_purge(), which removes only rows older than the retention it is given, never younger than 30
-- days, so a bug or a stolen application login cannot quietly erase recent history.
CREATE TABLE security_audit (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    kind           text NOT NULL CHECK (kind ~ '^[a-z_]{2,40}$'),
    actor_id       bigint,
    actor_username text NOT NULL DEFAULT '',
    source_addr    text NOT NULL DEFAULT '',
    object         text NOT NULL DEFAULT '',   -- e.g. household:12, ticket:5, /api/v1/households/export
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX security_audit_at_idx ON security_audit (at);
CREATE INDEX security_audit_kind_idx ON security_audit (kind, at);
CREATE INDEX security_audit_actor_idx ON security_audit (actor_id, at);

CREATE FUNCTION security_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    purge_before timestamptz;
BEGIN
    IF TG_OP = 'DELETE' THEN
        purge_before := nullif(current_setting('hotline.audit_purge_before', true), '')::timestamptz;
        IF purge_before IS NOT NULL AND purge_before <= now() - interval '30 days' AND OLD.at < purge_before THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'security_audit is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER security_audit_no_update BEFORE UPDATE OR DELETE ON security_audit
    FOR EACH ROW EXECUTE FUNCTION security_audit_append_only();
CREATE TRIGGER security_audit_no_truncate BEFORE TRUNCATE ON security_audit
    FOR EACH STATEMENT EXECUTE FUNCTION security_audit_append_only();

-- The one way rows leave: older than `before` (at least 30 days ago). SECURITY DEFINER so a deployment can
-- revoke DELETE on the table from the application's role and grant EXECUTE on this function alone.
CREATE FUNCTION security_audit_purge(before timestamptz) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n bigint;
BEGIN
    IF before > now() - interval '30 days' THEN
        RAISE EXCEPTION 'security audit rows younger than 30 days are kept' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('hotline.audit_purge_before', before::text, true);
    DELETE FROM security_audit WHERE at < before;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('hotline.audit_purge_before', '', true);
    RETURN n;
END;
$$;

-- One person, one household: an ID number may appear on one member row only (the lookup hash is keyed, so equal
-- numbers have equal hashes).
CREATE UNIQUE INDEX household_members_id_hash_uniq ON household_members (id_hash);
DROP INDEX household_members_id_hash_idx;

-- A ticket's household must exist. Older rows that point nowhere (written before this constraint) are left as
-- they are; the constraint is validated only when there are none, and binds every new or changed row either way.
ALTER TABLE tickets ADD CONSTRAINT tickets_household_fk FOREIGN KEY (household_id) REFERENCES households (id) NOT VALID;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tickets t WHERE t.household_id IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM households h WHERE h.id = t.household_id)) THEN
        ALTER TABLE tickets VALIDATE CONSTRAINT tickets_household_fk;
    END IF;
END;
$$;
