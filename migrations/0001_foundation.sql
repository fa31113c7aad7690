-- The organisation tree (承办单位), users and API tokens: what every later table hangs on.

CREATE TABLE units (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL,
    short_name  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('bureau', 'desk', 'division', 'prefecture', 'county')),
    parent_id   bigint REFERENCES units (id),
    region_code text CHECK (region_code ~ '^43[0-9]{4}$'),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX units_parent_idx ON units (parent_id);
CREATE UNIQUE INDEX units_region_idx ON units (region_code) WHERE region_code IS NOT NULL;

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9_.-]{2,64}$'),
    display_name  text NOT NULL,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('agent', 'dispatcher', 'staff', 'head', 'supervisor', 'campaign_manager', 'admin')),
    unit_id       bigint REFERENCES units (id),
    permissions   text[] NOT NULL DEFAULT '{}',
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_unit_idx ON users (unit_id);

-- Bearer tokens for the API; only a SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id),
    name       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);
