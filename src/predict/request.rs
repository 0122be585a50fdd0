//! Prediction requests: the JSON bodies as sent, and the checked request they parse into.

use serde::Deserialize;

use super::odds::{MarketOdds, OddsError, OddsFormat};
use crate::games::{
    GameId, GameIdError, GameRef, PitcherId, PitcherIdError, Starters, TeamCode, TeamCodeError,
    parse_date,
};
use crate::models::{ModelRef, ModelRefError};

/// `POST /api/v1/predict` as sent.
/// One game, by `game_id` (a stored game) or by `game` (teams and date: scheduled or
/// stored), not both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictBody {
    #[schema(
        pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$",
        example = "NYA202404050"
    )]
    pub game_id: Option<String>,
    pub game: Option<ScheduledBody>,
    /// `name` or `name@version`; `model_name` is accepted for existing clients.
    #[serde(alias = "model_name")]
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9][A-Za-z0-9_.-]*)?$",
        example = "home_win@1"
    )]
    pub model: Option<String>,
    pub odds: Option<OddsBody>,
    /// With `game`: the probable starters, which a model of feature spec `v2` reads (a
    /// stored game's are in the data). A side not named reads as a league-average debut.
    pub starters: Option<StartersBody>,
}

/// Each side's starter by Retrosheet id (`GET /api/v1/pitchers` lists a team's).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartersBody {
    #[schema(pattern = "^[a-z-]{4}[a-z][0-9]{3}$", example = "glast001")]
    pub home: Option<String>,
    #[schema(pattern = "^[a-z-]{4}[a-z][0-9]{3}$", example = "darvy001")]
    pub away: Option<String>,
}

impl StartersBody {
    /// The starters this names, checked.
    pub fn parse(&self) -> Result<Starters, PitcherIdError> {
        let id = |text: &Option<String>| text.as_deref().map(str::parse::<PitcherId>).transpose();
        Ok(Starters {
            home: id(&self.home)?,
            away: id(&self.away)?,
        })
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledBody {
    #[schema(pattern = "^[A-Za-z0-9]{3}$", example = "NYA")]
    pub home: String,
    #[schema(pattern = "^[A-Za-z0-9]{3}$", example = "BOS")]
    pub away: String,
    /// `YYYY-MM-DD`.
    #[schema(format = Date, example = "2025-04-05")]
    pub date: String,
    /// The game's number, when known: 0 for a single game, 1 or 2 in a doubleheader. The
    /// answer then names the id the game's result will be stored under (`game_id`), and live
    /// quality scores it once that result is in.
    #[schema(minimum = 0, maximum = 2, example = 0)]
    pub number: Option<u8>,
}

/// Market odds for both sides: American (`-150`, `+130`: |odds| from 100 to 100,000) or
/// decimal (above 1, at most 1,001), told apart by `format` or by their values.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OddsBody {
    #[schema(minimum = -100_000, maximum = 100_000, example = -135)]
    pub home: f64,
    #[schema(minimum = -100_000, maximum = 100_000, example = 115)]
    pub away: f64,
    pub format: Option<OddsFormat>,
}

/// `POST /api/v1/predict/batch` as sent: items are parsed one by one, so one bad item
/// fails alone.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// At most `server.max_batch` (256 by default). Each item is the body of `POST
    /// /api/v1/predict` (schema `PredictBody`); an item that is not one fails alone, with its
    /// problem at its index, so any JSON value is taken here.
    /// Kept as their raw JSON text, each parsed once into a `PredictBody`.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 256)]
    pub items: Vec<Box<serde_json::value::RawValue>>,
}

/// A request that passed every check that needs no data.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    pub game: GameRef,
    pub model: Option<ModelRef>,
    pub odds: Option<MarketOdds>,
}

impl PredictRequest {
    /// Whether the model's routing picks the version (the request pins none).
    pub fn is_routed(&self) -> bool {
        self.model
            .as_ref()
            .is_none_or(|model| model.version.is_none())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("give either `game_id` or `game`, not both")]
    BothGames,
    #[error("give `game_id` (a stored game) or `game` (home, away, date)")]
    NoGame,
    #[error(transparent)]
    GameId(#[from] GameIdError),
    #[error(transparent)]
    Team(#[from] TeamCodeError),
    #[error(transparent)]
    Pitcher(#[from] PitcherIdError),
    #[error("a stored game's starters are in the data: give `starters` with `game`, not `game_id`")]
    StartersOfStoredGame,
    #[error("`{0}` is not a date in YYYY-MM-DD form")]
    Date(String),
    #[error("game number {0} is not 0, 1 or 2")]
    Number(u8),
    #[error(transparent)]
    Model(#[from] ModelRefError),
    #[error(transparent)]
    Odds(#[from] OddsError),
}

impl TryFrom<PredictBody> for PredictRequest {
    type Error = RequestError;

    fn try_from(body: PredictBody) -> Result<Self, Self::Error> {
        let starters = body
            .starters
            .as_ref()
            .map(StartersBody::parse)
            .transpose()?;
        let game = match (body.game_id, body.game) {
            (Some(_), Some(_)) => return Err(RequestError::BothGames),
            (None, None) => return Err(RequestError::NoGame),
            (Some(_), None) if starters.is_some() => {
                return Err(RequestError::StartersOfStoredGame);
            }
            (Some(id), None) => GameRef::Stored(id.parse::<GameId>()?),
            (None, Some(game)) => GameRef::Scheduled {
                home: game.home.parse::<TeamCode>()?,
                away: game.away.parse::<TeamCode>()?,
                date: parse_date(&game.date)
                    .ok_or_else(|| RequestError::Date(game.date.clone()))?,
                number: match game.number {
                    None | Some(0..=2) => game.number,
                    Some(number) => return Err(RequestError::Number(number)),
                },
                starters: starters.unwrap_or_default(),
            },
        };
        let model = body.model.map(|m| m.parse::<ModelRef>()).transpose()?;
        let odds = body
            .odds
            .map(|odds| MarketOdds::parse(odds.home, odds.away, odds.format))
            .transpose()?;
        Ok(Self { game, model, odds })
    }
}
