-- Public channels (网上留言, Open311 GeoReport v2).
--
-- Query codes: new tickets get 10 characters of Crockford base32 (32^10 ≈ 1.1e15 codes; README "Public
-- channels" has the guess odds at the limits). The 6-digit codes already handed out stay valid.
ALTER TABLE tickets DROP CONSTRAINT tickets_query_code_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_query_code_check
    CHECK (query_code ~ '^([0-9]{6}|[0-9A-HJKMNP-TV-Z]{10})$');

-- Open311 clients: one API key each, stored only as its SHA-256 (keys are 32 random bytes, so a fast hash is
-- enough: there is nothing to guess offline). prefix is the key's first characters, to tell keys apart.
CREATE TABLE open311_clients (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    key_hash    bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix  text NOT NULL,
    created_by  bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
