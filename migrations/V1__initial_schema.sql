-- bullpen's first schema: the games the features are computed from, the features
-- themselves, the prediction log, API keys and model outcome monitoring.

-- One row per game, both teams joined, from one Retrosheet source (see src/games).
CREATE TABLE games (
    game_id            text PRIMARY KEY CHECK (game_id ~ '^[A-Z0-9]{3}[0-9]{8}[0-9]$'),
    date               date NOT NULL,
    number             smallint NOT NULL CHECK (number BETWEEN 0 AND 9),
    phase              text NOT NULL CHECK (phase IN ('regular', 'postseason', 'allstar')),
    home_team          text NOT NULL,
    away_team          text NOT NULL,
    home_runs          smallint NOT NULL,
    away_runs          smallint NOT NULL,
    home_hits          smallint NOT NULL,
    away_hits          smallint NOT NULL,
    home_walks         smallint NOT NULL,
    away_walks         smallint NOT NULL,
    home_home_runs     smallint NOT NULL,
    away_home_runs     smallint NOT NULL,
    home_strikeouts    smallint NOT NULL,
    away_strikeouts    smallint NOT NULL,
    home_pitches       smallint,
    away_pitches       smallint,
    home_batters_faced smallint NOT NULL,
    away_batters_faced smallint NOT NULL,
    -- The file the row came from, so an import can be traced and repeated.
    source_file        text NOT NULL
);
CREATE INDEX games_by_date ON games (date, number, game_id);

-- Point-in-time feature vectors, per game and feature spec version, in spec order.
CREATE TABLE game_features (
    game_id         text NOT NULL REFERENCES games (game_id) ON DELETE CASCADE,
    feature_version text NOT NULL,
    features        real[] NOT NULL,
    computed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (game_id, feature_version)
);

-- API keys: only a SHA-256 of the key is stored.
CREATE TABLE api_keys (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL,
    key_hash        bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    scopes          text[] NOT NULL,
    rate_per_minute integer CHECK (rate_per_minute > 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);

-- Every served prediction, written behind the response.
CREATE TABLE prediction_log (
    id                   bigserial PRIMARY KEY,
    request_id           text NOT NULL,
    predicted_at         timestamptz NOT NULL,
    model_name           text NOT NULL,
    model_version        text NOT NULL,
    game_id              text,
    home_team            text NOT NULL,
    away_team            text NOT NULL,
    game_date            date NOT NULL,
    feature_hash         bigint NOT NULL,
    home_win_probability real NOT NULL CHECK (home_win_probability BETWEEN 0 AND 1),
    odds_home            double precision,
    odds_away            double precision,
    cached               boolean NOT NULL,
    key_id               bigint REFERENCES api_keys (id)
);
CREATE INDEX prediction_log_by_model ON prediction_log (model_name, model_version, predicted_at);
CREATE INDEX prediction_log_by_game ON prediction_log (game_id);

-- Model outcome monitoring: each logged prediction of a finished game with its result.
-- Scheduled-game predictions join once the game is imported under its id.
CREATE VIEW model_outcomes AS
SELECT p.model_name,
       p.model_version,
       p.game_id,
       p.predicted_at,
       p.home_win_probability,
       (g.home_runs > g.away_runs) AS home_win
FROM prediction_log p
JOIN games g ON g.game_id = p.game_id
WHERE g.home_runs <> g.away_runs;
