//! Live model quality: served predictions joined with the games' results give, per model
//! version, the Brier score, log loss, accuracy and a calibration table, computed exactly
//! as `training/train.py` computes them for the evaluation report.
//!
//! Which predictions are scored is the prediction service's business (`predict::Recorder`):
//! this file only scores pairs of a probability and an outcome.

use chrono::NaiveDate;
use serde::Serialize;

/// The calibration bins of the evaluation report.
pub const CALIBRATION_EDGES: [f64; 9] = [0.0, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 1.0];

/// Probabilities are clipped as in training before the log loss.
const CLIP: f64 = 1e-7;

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CalibrationBin {
    pub from: f64,
    pub to: f64,
    pub games: usize,
    pub mean_predicted: f64,
    pub observed: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Quality {
    pub games: usize,
    pub brier: f64,
    pub log_loss: f64,
    pub accuracy: f64,
    pub calibration: Vec<CalibrationBin>,
}

/// Scores `(probability, home_win)` pairs; `None` when there are none.
pub fn score(pairs: &[(f64, bool)]) -> Option<Quality> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let outcome = |won: bool| if won { 1.0 } else { 0.0 };
    let mut brier = 0.0;
    let mut log_loss = 0.0;
    let mut correct = 0usize;
    let mut bins = vec![(0usize, 0.0, 0.0); CALIBRATION_EDGES.len() - 1];
    for &(p, won) in pairs {
        let y = outcome(won);
        brier += (p - y).powi(2);
        let clipped = p.clamp(CLIP, 1.0 - CLIP);
        log_loss -= y * clipped.ln() + (1.0 - y) * (1.0 - clipped).ln();
        if (p >= 0.5) == won {
            correct += 1;
        }
        let bin = CALIBRATION_EDGES[1..CALIBRATION_EDGES.len() - 1]
            .iter()
            .filter(|edge| p >= **edge)
            .count();
        bins[bin].0 += 1;
        bins[bin].1 += p;
        bins[bin].2 += y;
    }
    let calibration = bins
        .iter()
        .enumerate()
        .filter(|(_, (games, _, _))| *games > 0)
        .map(|(index, &(games, predicted, observed))| CalibrationBin {
            from: CALIBRATION_EDGES[index],
            to: CALIBRATION_EDGES[index + 1],
            games,
            mean_predicted: predicted / games as f64,
            observed: observed / games as f64,
        })
        .collect();
    Some(Quality {
        games: pairs.len(),
        brier: brier / n,
        log_loss: log_loss / n,
        accuracy: correct as f64 / n,
        calibration,
    })
}

/// Games between two dates, both included; either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Window {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.from.is_none_or(|from| date >= from) && self.to.is_none_or(|to| date <= to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        let quality =
            score(&[(0.8, true), (0.3, false), (0.6, false), (0.5, true)]).expect("some pairs");
        assert_eq!(quality.games, 4);
        // (0.04 + 0.09 + 0.36 + 0.25) / 4
        assert!((quality.brier - 0.185).abs() < 1e-12);
        let expected_log_loss = -(0.8_f64.ln() + 0.7_f64.ln() + 0.4_f64.ln() + 0.5_f64.ln()) / 4.0;
        assert!((quality.log_loss - expected_log_loss).abs() < 1e-12);
        assert!(
            (quality.accuracy - 0.75).abs() < 1e-12,
            "0.5 counts as a home pick"
        );
        let bins: Vec<(f64, usize)> = quality
            .calibration
            .iter()
            .map(|b| (b.from, b.games))
            .collect();
        assert_eq!(bins, [(0.0, 1), (0.5, 1), (0.6, 1), (0.65, 1)]);
        assert_eq!(score(&[]), None);
    }
}
