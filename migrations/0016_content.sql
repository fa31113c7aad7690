-- Content around tickets (issue 11): attachments in object storage, full-text search over tickets, the knowledge
-- base (知识库) with its version history, and reply templates per category.

-- Attachments (附件) of a ticket or of a household (入户核实照片). The file and its thumbnail live in the blob store
-- (ticketing/blob) under keys the server generated; who may read them is decided from ticket_id/household_id.
CREATE TABLE attachments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ticket_id     bigint REFERENCES tickets (id),
    household_id  bigint REFERENCES households (id),
    contact_id    bigint REFERENCES household_contacts (id), -- the visit a household photo belongs to
    storage_key   text NOT NULL UNIQUE,
    thumb_key     text UNIQUE,
    filename      text NOT NULL CHECK (char_length(filename) BETWEEN 1 AND 200),
    content_type  text NOT NULL,
    bytes         bigint NOT NULL CHECK (bytes > 0),
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    width         integer,
    height        integer,
    uploaded_by   bigint REFERENCES users (id),
    uploader_name text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((ticket_id IS NULL) <> (household_id IS NULL))
);
CREATE INDEX attachments_ticket_idx ON attachments (ticket_id, id) WHERE ticket_id IS NOT NULL;
CREATE INDEX attachments_household_idx ON attachments (household_id, id) WHERE household_id IS NOT NULL;

-- Search. Chinese has no spaces, so words are not found by a parser: search_vector cuts the text into runs of
-- letters; a run of ASCII letters and digits is one lexeme, any other run (Chinese) becomes its overlapping
-- two-character grams (雨露计划 → 雨露 露计 计划) plus its last character alone, at consecutive positions. A query
-- is cut the same way (ticketing/search.go) into a phrase of grams ('雨露' <-> '露计' <-> '计划'), so a two-character
-- word — most Chinese words and names — is one index look-up, longer ones match only where they stand together,
-- and a single character is a prefix look-up. The tsvector is built from its text form, so neither the database
-- locale nor a text-search parser is involved (README: Search).
CREATE FUNCTION search_vector(doc text) RETURNS tsvector LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    run   text;
    n     integer;
    pos   integer := 0;
    parts text[] := '{}';
BEGIN
    FOR run IN SELECT m[1] FROM regexp_matches(lower(coalesce(doc, '')),
            '([0-9a-z]+|[^[:space:][:punct:]0-9a-z　，。、；：？！“”‘’（）《》〈〉【】「」『』…—～·・％＃＠＆＊＋－＝／＼｜]+)', 'g') AS m
    LOOP
        pos := pos + 2; -- a gap: no phrase runs across two runs
        IF run ~ '^[0-9a-z]' THEN
            parts := parts || ('''' || left(run, 100) || ''':' || least(pos, 16383));
        ELSE
            n := char_length(run);
            FOR i IN 1..n - 1 LOOP
                parts := parts || ('''' || replace(replace(substr(run, i, 2), '\', '\\'), '''', '''''') || ''':' || least(pos, 16383));
                pos := pos + 1;
            END LOOP;
            parts := parts || ('''' || replace(replace(substr(run, n, 1), '\', '\\'), '''', '''''') || ''':' || least(pos, 16383));
        END IF;
    END LOOP;
    RETURN array_to_string(parts, ' ')::tsvector;
END $$;

-- One row per ticket: what its search finds. A confidential report's caller name is left out, so nobody finds
-- who reported by searching for a name (the caller_name filter has the same rule).
CREATE TABLE ticket_search (
    ticket_id bigint PRIMARY KEY REFERENCES tickets (id),
    words     tsvector NOT NULL
);
CREATE INDEX ticket_search_words_idx ON ticket_search USING gin (words);

CREATE FUNCTION ticket_search_text(t tickets) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT concat_ws(E'\n', t.number, CASE WHEN t.confidential THEN '' ELSE t.caller_name END, t.content, t.reply_text,
        (SELECT string_agg(concat_ws(E'\n', nullif(e.note, ''), e.data ->> 'reply', e.data ->> 'text'), E'\n' ORDER BY e.id)
           FROM ticket_events e WHERE e.ticket_id = t.id))
$$;

CREATE FUNCTION ticket_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_search (ticket_id, words) VALUES (NEW.id, search_vector(ticket_search_text(NEW)))
        ON CONFLICT (ticket_id) DO UPDATE SET words = EXCLUDED.words;
    RETURN NULL;
END $$;
CREATE TRIGGER tickets_search_insert AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_search_refresh();
CREATE TRIGGER tickets_search_update AFTER UPDATE ON tickets
    FOR EACH ROW WHEN (OLD.content IS DISTINCT FROM NEW.content OR OLD.caller_name IS DISTINCT FROM NEW.caller_name
        OR OLD.reply_text IS DISTINCT FROM NEW.reply_text OR OLD.confidential IS DISTINCT FROM NEW.confidential
        OR OLD.number IS DISTINCT FROM NEW.number)
    EXECUTE FUNCTION ticket_search_refresh();

-- An event with words (a note, a reply, an interim reply) adds them to its ticket's row.
CREATE FUNCTION ticket_search_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ticket_search
       SET words = words || search_vector(concat_ws(E'\n', nullif(NEW.note, ''), NEW.data ->> 'reply', NEW.data ->> 'text'))
     WHERE ticket_id = NEW.ticket_id;
    RETURN NULL;
END $$;
CREATE TRIGGER ticket_events_search AFTER INSERT ON ticket_events
    FOR EACH ROW WHEN (NEW.note <> '' OR NEW.data ? 'reply' OR NEW.data ? 'text')
    EXECUTE FUNCTION ticket_search_event();

INSERT INTO ticket_search (ticket_id, words) SELECT t.id, search_vector(ticket_search_text(t)) FROM tickets t;

-- Knowledge base (知识库): policy answers maintained by the divisions. The current text is in kb_articles; every
-- version ever published, the first included, is in kb_article_versions, which the database keeps append-only,
-- so a ticket event that cites (article, version) can always show the words the agent read out.
CREATE TABLE kb_articles (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body          text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 20000),
    tags          text[] NOT NULL DEFAULT '{}',
    owner_unit_id bigint NOT NULL REFERENCES units (id),
    status        text NOT NULL DEFAULT 'published' CHECK (status IN ('published', 'retired')),
    version       integer NOT NULL DEFAULT 1,
    words         tsvector NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint REFERENCES users (id),
    updater_name  text NOT NULL
);
CREATE INDEX kb_articles_words_idx ON kb_articles USING gin (words);

CREATE TABLE kb_article_versions (
    article_id    bigint NOT NULL REFERENCES kb_articles (id),
    version       integer NOT NULL,
    title         text NOT NULL,
    body          text NOT NULL,
    tags          text[] NOT NULL,
    owner_unit_id bigint NOT NULL REFERENCES units (id),
    status        text NOT NULL,
    note          text NOT NULL DEFAULT '', -- what changed, in the editor's words
    at            timestamptz NOT NULL,
    updated_by    bigint REFERENCES users (id),
    updater_name  text NOT NULL,
    PRIMARY KEY (article_id, version)
);
CREATE FUNCTION kb_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kb_article_versions are append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER kb_versions_no_update BEFORE UPDATE OR DELETE ON kb_article_versions
    FOR EACH ROW EXECUTE FUNCTION kb_versions_immutable();
CREATE TRIGGER kb_versions_no_truncate BEFORE TRUNCATE ON kb_article_versions
    FOR EACH STATEMENT EXECUTE FUNCTION kb_versions_immutable();

-- Reply templates (答复模板) for clerks, per category (NULL: any category), with {placeholders} filled from the
-- ticket when used.
CREATE TABLE reply_templates (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category      text REFERENCES ticket_categories (code),
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    body          text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    active        boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint REFERENCES users (id),
    UNIQUE (category, name)
);

-- Call recordings move to the same store once the call has ended (telephony/recordings.go): storage_key names the
-- object; NULL: the file is still (or only) under the recordings directory at path.
ALTER TABLE recordings ADD COLUMN storage_key text UNIQUE;
