-- Browser sessions of the consoles (people; machines keep bearer tokens in api_tokens). Only a SHA-256 of the
-- session id is stored, so a copy of this table does not let anyone sign in. A session ends when it is idle for
-- longer than the idle timeout, at its absolute expiry, or when its row is deleted (sign-out, sign-out
-- everywhere, a password change): every request looks the row up, so deleting it ends the session for every
-- client holding the cookie.

CREATE TABLE web_sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    remote_addr  text NOT NULL DEFAULT '',
    user_agent   text NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
