//! The training table: one row per game with its id, date, season, features in spec order
//! and the label `home_win`. Written by the same code that serves, so they cannot drift.

use std::io::Write;

use super::spec::{FeatureSpec, FeatureVector};
use crate::games::{Game, Phase};

/// What went into a table, for the command's summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: usize,
    /// Games without a winner (called and never resumed): they have no label.
    pub ties_skipped: usize,
}

/// Games and their features, each slice in the games' order.
#[derive(Debug)]
pub struct Table<'a> {
    pub spec: FeatureSpec,
    pub games: &'a [Game],
    /// Each game's features; the columns of `spec` are written.
    pub vectors: &'a [FeatureVector],
}

impl Table<'_> {
    /// Writes the regular-season games of `seasons` as CSV.
    pub fn write<W: Write>(&self, out: W, seasons: &[i32]) -> csv::Result<ExportSummary> {
        let mut writer = csv::Writer::from_writer(out);
        let mut header = vec!["game_id", "date", "season"];
        header.extend(self.spec.names);
        header.push("home_win");
        writer.write_record(&header)?;

        let mut summary = ExportSummary::default();
        for (game, vector) in self.games.iter().zip(self.vectors) {
            if game.phase != Phase::Regular || !seasons.contains(&game.season()) {
                continue;
            }
            let Some(home_win) = game.home_win() else {
                summary.ties_skipped += 1;
                continue;
            };
            let mut record = vec![
                game.id.to_string(),
                game.date.to_string(),
                game.season().to_string(),
            ];
            record.extend(vector.of(&self.spec).iter().map(ToString::to_string));
            record.push(u8::from(home_win).to_string());
            writer.write_record(&record)?;
            summary.rows += 1;
        }
        writer.flush()?;
        Ok(summary)
    }
}
