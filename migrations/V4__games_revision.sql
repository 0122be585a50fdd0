-- A counter every change to `games` moves (one statement, one step): a replica compares it
-- with the revision its in-memory replay of the games was built from, in one indexed read,
-- and rebuilds only when the games changed.
CREATE TABLE games_revision (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    revision  bigint NOT NULL
);
INSERT INTO games_revision (singleton, revision) VALUES (true, 0);

CREATE FUNCTION bump_games_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE games_revision SET revision = revision + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER games_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON games
    FOR EACH STATEMENT EXECUTE FUNCTION bump_games_revision();
