//! The games: `GET /api/v1/games?date=`, `GET /api/v1/games/{game_id}/features`, and final
//! results posted during a season, `POST /api/v1/admin/results` (scope `admin`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::errors::ApiError;
use super::json::ApiJson;
use crate::cache::Source;
use crate::features::{FEATURE_SPEC, FeatureVector, GameInfo, Ingested, ResultBody, ResultsBody};
use crate::games::{GameId, GameRef, parse_date};
use crate::predict::{PredictService, RequestError};

/// The vector as `{name: value}` in spec order.
#[derive(Debug)]
struct NamedFeatures(FeatureVector);

impl Serialize for NamedFeatures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(FEATURE_SPEC.names.len()))?;
        for (name, value) in FEATURE_SPEC.names.iter().zip(self.0.values()) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct FeaturesBody {
    game: GameInfo,
    #[schema(example = "v1")]
    feature_version: &'static str,
    /// Feature name → value, in the spec's order (`bullpen features spec`).
    #[schema(value_type = std::collections::BTreeMap<String, f64>)]
    features: NamedFeatures,
    cached: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
}

/// The point-in-time features of a stored game: computed from games before it only.
#[utoipa::path(
    get,
    path = "/api/v1/games/{game_id}/features",
    tag = "features",
    operation_id = "game_features",
    params(("game_id" = String, Path, description = "A Retrosheet game id",
            pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$", example = "NYA202404050")),
    responses((status = 200, description = "The game's features", body = FeaturesBody,
        example = json!({
            "game": {"game_id": "NYA202404050", "home": "NYA", "away": "TOR", "date": "2024-04-05"},
            "feature_version": "v1",
            "features": {
                "home_elo": 1520.3611, "away_elo": 1518.1263, "elo_diff": 2.234_681_8,
                "elo_home_win_prob": 0.537_683_1, "home_win_pct": 0.578_125,
                "away_win_pct": 0.484_375, "home_runs_scored_pg": 4.608_073,
                "home_runs_allowed_pg": 4.348_814, "away_runs_scored_pg": 4.237_703,
                "away_runs_allowed_pg": 4.756_222, "home_pythag": 0.526_467_5,
                "away_pythag": 0.447_385_28, "pythag_diff": 0.079_082_24,
                "home_last10_win_pct": 0.75, "away_last10_win_pct": 0.45,
                "home_home_win_pct": 0.578_125, "away_road_win_pct": 0.469_907_4,
                "home_rest_days": 2.0, "away_rest_days": 2.0, "home_games_last7": 6.0,
                "away_games_last7": 6.0, "home_pitches_last3": 319.0, "away_pitches_last3": 292.0,
                "home_prev_win_pct": 0.506_172_84, "away_prev_win_pct": 0.549_382_7,
                "home_games_played": 7.0, "away_games_played": 7.0},
            "cached": false}))),
    security(("bearer" = ["features:read"])),
)]
pub(super) async fn features(
    service: web::Data<PredictService>,
    game_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id: GameId = game_id.parse().map_err(RequestError::from)?;
    let (found, source) = service.features(GameRef::Stored(id)).await?;
    Ok(HttpResponse::Ok().json(FeaturesBody {
        game: found.game,
        feature_version: FEATURE_SPEC.version,
        features: NamedFeatures(found.vector),
        cached: source != Source::Fresh,
        stale: source == Source::Stale,
    }))
}

/// `?date=YYYY-MM-DD`, and nothing else.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct GamesQuery {
    /// The day, `YYYY-MM-DD`.
    #[param(format = Date, example = "2024-03-20")]
    date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GamesOnDay {
    #[schema(value_type = String, format = Date, example = "2024-03-20")]
    date: NaiveDate,
    /// Every game this replica knows on that day, from the data and results posted since,
    /// each with its final line (the games are final: only results are stored).
    games: Vec<ResultBody>,
}

/// The games known for a date: what the features of later games are computed from.
#[utoipa::path(
    get,
    path = "/api/v1/games",
    tag = "features",
    operation_id = "games_on_date",
    params(GamesQuery),
    responses((status = 200, description = "The games of that day, with their results", body = GamesOnDay,
        example = json!({"date": "2024-03-20", "games": [{
            "game_id": "SDN202403200", "date": "2024-03-20", "number": 0, "phase": "regular",
            "home": {"team": "SDN", "runs": 2, "hits": 4, "walks": 4, "home_runs": 0,
                     "strikeouts": 6, "pitches": 173, "batters_faced": 45,
                     "starter": {"id": "darvy001"}},
            "away": {"team": "LAN", "runs": 5, "hits": 7, "walks": 9, "home_runs": 0,
                     "strikeouts": 7, "pitches": 127, "batters_faced": 34,
                     "starter": {"id": "glast001"}}}]}))),
    security(("bearer" = ["features:read"])),
)]
pub(super) async fn games_on_date(
    service: web::Data<PredictService>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<GamesQuery>::from_query(request.query_string()).map_err(|error| {
        ApiError::InvalidQuery(format!("{error}; the query takes `date`, as YYYY-MM-DD"))
    })?;
    let date = parse_date(&query.date).ok_or_else(|| RequestError::Date(query.date.clone()))?;
    let games = service
        .source()
        .games_on(date)
        .await
        .map_err(|error| ApiError::Predict(error.into()))?;
    Ok(HttpResponse::Ok().json(GamesOnDay {
        date,
        games: games.iter().map(ResultBody::of).collect(),
    }))
}

/// Final results, checked whole: nothing of a refused set is applied. Features of every
/// later game of the teams change, and so does everything cached from them, on every
/// replica.
#[utoipa::path(
    post,
    path = "/api/v1/admin/results",
    tag = "admin",
    operation_id = "post_results",
    request_body(content = ResultsBody, example = json!({"results": [{
        "game_id": "BAL202403280", "date": "2024-03-28", "number": 0, "phase": "regular",
        "home": {"team": "BAL", "runs": 11, "hits": 10, "walks": 6, "home_runs": 2,
                 "strikeouts": 5, "pitches": 138, "batters_faced": 31},
        "away": {"team": "ANA", "runs": 3, "hits": 2, "walks": 3, "home_runs": 1,
                 "strikeouts": 14, "pitches": 180, "batters_faced": 41}}]})),
    responses((status = 200, description = "What each result did", body = Ingested,
        example = json!({"added": [], "unchanged": ["BAL202403280"], "corrected": []}))),
    security(("bearer" = ["admin"])),
)]
pub(super) async fn post_results(
    service: web::Data<PredictService>,
    ApiJson(body): ApiJson<ResultsBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = service.ingest_results(body).await?;
    Ok(HttpResponse::Ok().json(outcome))
}
