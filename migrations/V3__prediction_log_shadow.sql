-- Predictions a shadow version made off the response path (never served to the caller), kept
-- beside the served ones so two versions can be compared on the same games.
ALTER TABLE prediction_log ADD COLUMN shadow boolean NOT NULL DEFAULT false;
