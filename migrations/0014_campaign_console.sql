-- The campaign pages of the console: prompts uploaded by campaign managers, and who put a household on or took it
-- off the opt-out list, and why.

-- Uploaded prompts, already converted to 8 kHz 16-bit mono WAV. Kept in PostgreSQL so every dialer process can
-- play them: a process that lacks the file in its prompt directory writes it there from this row before playing.
CREATE TABLE campaign_prompts (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,59}\.wav$'),
    wav           bytea NOT NULL,
    sha256        text NOT NULL,
    duration_ms   int NOT NULL CHECK (duration_ms > 0),
    source_format text NOT NULL CHECK (source_format IN ('wav', 'mp3')),
    source_name   text NOT NULL DEFAULT '',
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Opt-outs entered by hand carry their reason and who entered them (those pressed on a call name the campaign).
ALTER TABLE campaign_optouts
    ADD COLUMN reason     text NOT NULL DEFAULT '',
    ADD COLUMN created_by bigint REFERENCES users (id);

-- Every change of the opt-out list, by hand or by key press: append-only, the database refuses the rest.
CREATE TABLE campaign_optout_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    household_id bigint NOT NULL,
    purpose      text NOT NULL,
    action       text NOT NULL CHECK (action IN ('add', 'remove')),
    reason       text NOT NULL,
    actor_id     bigint REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX campaign_optout_log_household_idx ON campaign_optout_log (household_id, id);

CREATE FUNCTION campaign_optout_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'campaign_optout_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER campaign_optout_log_no_update BEFORE UPDATE OR DELETE ON campaign_optout_log
    FOR EACH ROW EXECUTE FUNCTION campaign_optout_log_append_only();
CREATE TRIGGER campaign_optout_log_no_truncate BEFORE TRUNCATE ON campaign_optout_log
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_optout_log_append_only();
