-- Each game row carries the `games_revision` that wrote it, so a replica brings its view of
-- the games up to date by loading the rows changed since its revision instead of the whole
-- table (a season's daily results are a few rows among tens of thousands).
ALTER TABLE games ADD COLUMN revision bigint NOT NULL DEFAULT 0;
CREATE INDEX games_by_revision ON games (revision);

-- The row lock waits for a concurrent writer to commit its bump, so the stamp is the
-- revision this statement's own bump (the statement trigger of V4) reaches: a replica that
-- read revision R has every row stamped R or lower.
CREATE FUNCTION stamp_game_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.revision := (SELECT revision FROM games_revision FOR UPDATE) + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER games_stamped
    BEFORE INSERT OR UPDATE ON games
    FOR EACH ROW EXECUTE FUNCTION stamp_game_revision();
