-- Each side's starting pitcher (a Retrosheet id) and his line: outs, batters faced, hits,
-- home runs, walks, strikeouts, hit batters, runs, earned runs, pitches (NULL when the source
-- has no pitch count). A game without starters, or a start without a line, leaves them NULL.
ALTER TABLE games
    ADD COLUMN home_starter text,
    ADD COLUMN away_starter text,
    ADD COLUMN home_starter_line smallint[],
    ADD COLUMN away_starter_line smallint[];
