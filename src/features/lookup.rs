//! A game as the feature stores return it: who played when, and its feature vector.

use chrono::NaiveDate;
use serde::Serialize;

use super::spec::FeatureVector;
use crate::games::{Game, GameId, Starters, TeamCode};

/// The game as answers describe it; `game_id` is absent for a scheduled game.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GameInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$", example = "NYA202404050")]
    pub game_id: Option<GameId>,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{3}$", example = "NYA")]
    pub home: TeamCode,
    #[schema(value_type = String, pattern = "^[A-Z0-9]{3}$", example = "NYA")]
    pub away: TeamCode,
    #[serde(serialize_with = "iso_date")]
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    /// The starters the features read: the data's for a stored game, the request's for a
    /// scheduled one. Absent when neither side is named.
    #[serde(skip_serializing_if = "Starters::is_empty")]
    pub starters: Starters,
}

/// `YYYY-MM-DD` without going through `fmt` (this is on every answer).
#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's serialize_with passes a reference"
)]
fn iso_date<S: serde::Serializer>(date: &NaiveDate, serializer: S) -> Result<S::Ok, S::Error> {
    use chrono::Datelike;
    let (year, month, day) = (date.year(), date.month(), date.day());
    if !(0..=9999).contains(&year) {
        return serializer.collect_str(date);
    }
    let digit = |n: u32| b'0' + (n % 10) as u8;
    let year = year.unsigned_abs();
    let text = [
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
    ];
    serializer.serialize_str(std::str::from_utf8(&text).expect("ASCII digits; this is a bug"))
}

/// A game's decided result, as live quality joins it with what was predicted: a prediction
/// counts only when it named the same visitors (the home team is in the id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decided {
    pub away: TeamCode,
    pub home_won: bool,
}

/// A game and the feature vector a model sees for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GameFeatures {
    pub game: GameInfo,
    pub vector: FeatureVector,
}

impl GameFeatures {
    pub fn stored(game: &Game, vector: FeatureVector) -> Self {
        Self {
            game: GameInfo {
                game_id: Some(game.id),
                home: game.home.team,
                away: game.away.team,
                date: game.date,
                starters: Starters::of(game),
            },
            vector,
        }
    }
}
