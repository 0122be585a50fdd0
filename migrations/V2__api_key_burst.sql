-- A per-key burst for the rate limit (NULL: the configured default), and one active key per
-- name, so `bullpen keys revoke --name` names exactly one.
ALTER TABLE api_keys ADD COLUMN burst integer CHECK (burst > 0);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
