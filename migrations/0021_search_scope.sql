-- Search within a unit's scope (issue 11). A county clerk reads only the tickets their unit leads or co-handles
-- (ticketing/authorize.go, readableSQL); with only the words in the index, a clerk's search for a common word
-- walked or fetched the whole province's matches and threw nine in ten of them away (p95 1.5 s at a million
-- tickets). Two copies of a ticket's units (its lead unit and its co-handling units) let the search work inside
-- the scope (ticketing/search.go):
--   ticket_units, one row per (unit, ticket), its primary key a unit's tickets newest first: the search walks a
--   unit's newest tickets testing each (common words);
--   ticket_search.unit_ids, in the same GIN index as the words: one index scan intersects the words with the
--   unit (rarer words, older tickets).
-- Both are written by triggers on tickets in the statement that changes the units (a correction, a re-dispatch,
-- a return to the desk), so the scope follows a change at once. The search still applies the scope condition
-- on tickets itself; these only narrow what it reads.

-- A ticket's units, sorted and without repeats.
CREATE FUNCTION ticket_unit_ids(lead bigint, co bigint[]) RETURNS bigint[] LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT u ORDER BY u), '{}') FROM unnest(array_prepend(lead, co)) AS u WHERE u IS NOT NULL
$$;

CREATE TABLE ticket_units (
    unit_id   bigint NOT NULL,
    ticket_id bigint NOT NULL REFERENCES tickets (id)
);
INSERT INTO ticket_units (unit_id, ticket_id)
    SELECT u, t.id FROM tickets t, unnest(ticket_unit_ids(t.lead_unit_id, t.co_unit_ids)) AS u;
ALTER TABLE ticket_units ADD PRIMARY KEY (unit_id, ticket_id);

-- ticket_search gets the units: the table is written anew rather than updated in place, since an UPDATE of
-- every row in this transaction would leave every old row version behind (twice the size until a VACUUM FULL)
-- and the new ones in join order, making the GIN index about 40 % larger (its posting lists are deltas between
-- row addresses). The functions that write it name it at run time, so they follow the new table.
DROP INDEX ticket_search_words_idx;
ALTER TABLE ticket_search RENAME TO ticket_search_old;
ALTER INDEX ticket_search_pkey RENAME TO ticket_search_old_pkey;
CREATE TABLE ticket_search (
    ticket_id bigint PRIMARY KEY REFERENCES tickets (id),
    words     tsvector NOT NULL,
    unit_ids  bigint[] NOT NULL DEFAULT '{}'
);
INSERT INTO ticket_search (ticket_id, words, unit_ids)
    SELECT o.ticket_id, o.words, ticket_unit_ids(t.lead_unit_id, t.co_unit_ids)
      FROM ticket_search_old o JOIN tickets t ON t.id = o.ticket_id ORDER BY o.ticket_id;
DROP TABLE ticket_search_old;
-- The words and the units in one GIN index (a search on the words alone, as an admin's, uses it as before).
CREATE INDEX ticket_search_words_units_idx ON ticket_search USING gin (words, unit_ids);

-- The search row of a new or rewritten ticket carries its units too.
CREATE OR REPLACE FUNCTION ticket_search_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_search (ticket_id, words, unit_ids)
        VALUES (NEW.id, search_vector(ticket_search_text(NEW)), ticket_unit_ids(NEW.lead_unit_id, NEW.co_unit_ids))
        ON CONFLICT (ticket_id) DO UPDATE SET words = EXCLUDED.words, unit_ids = EXCLUDED.unit_ids;
    RETURN NULL;
END $$;

-- A ticket's units changed (or it is new): ticket_units and ticket_search.unit_ids follow. The old rows are found
-- through OLD's units, by the primary key (ticket_units is only ever written here).
CREATE FUNCTION ticket_units_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    units bigint[] := ticket_unit_ids(NEW.lead_unit_id, NEW.co_unit_ids);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM ticket_units
         WHERE unit_id = ANY (ticket_unit_ids(OLD.lead_unit_id, OLD.co_unit_ids)) AND unit_id <> ALL (units)
           AND ticket_id = NEW.id;
        UPDATE ticket_search SET unit_ids = units WHERE ticket_id = NEW.id AND unit_ids IS DISTINCT FROM units;
    END IF;
    INSERT INTO ticket_units (unit_id, ticket_id) SELECT u, NEW.id FROM unnest(units) AS u ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER tickets_units_insert AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_units_refresh();
CREATE TRIGGER tickets_units_update AFTER UPDATE ON tickets
    FOR EACH ROW WHEN (OLD.lead_unit_id IS DISTINCT FROM NEW.lead_unit_id OR OLD.co_unit_ids IS DISTINCT FROM NEW.co_unit_ids)
    EXECUTE FUNCTION ticket_units_refresh();

-- Statistics for the new table and column now, not at autovacuum's next pass: the search's plans depend on them.
ANALYZE ticket_units;
ANALYZE ticket_search;
