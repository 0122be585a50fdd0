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
use crate::features::{
    FEATURE_SPEC, FEATURE_SPECS, FeatureSpec, FeatureVector, GameInfo, Ingested, ResultBody,
    ResultsBody,
};
use crate::games::{GameId, GameRef, StaffMember, TeamCode, parse_date};
use crate::predict::{PredictError, PredictService, RequestError};

/// The features of a spec as `{name: value}` in spec order.
#[derive(Debug)]
struct NamedFeatures(FeatureSpec, FeatureVector);

impl Serialize for NamedFeatures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let NamedFeatures(spec, vector) = self;
        let mut map = serializer.serialize_map(Some(spec.width()))?;
        for (name, value) in spec.names.iter().zip(vector.of(spec)) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// `?version=`, and nothing else.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeaturesQuery {
    /// The feature spec: `v1` (the teams; the default) or `v2` (and the starters).
    version: Option<String>,
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
            pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$", example = "NYA202404050"),
           FeaturesQuery),
    responses((status = 200, description = "The game's features", body = FeaturesBody,
        example = json!({
            "game": {"game_id": "NYA202404050", "home": "NYA", "away": "TOR", "date": "2024-04-05",
                     "starters": {"home": "strom001", "away": "kikuy001"}},
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
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let versions = || {
        let names: Vec<&str> = FEATURE_SPECS.iter().map(|spec| spec.version).collect();
        names.join(", ")
    };
    let query =
        web::Query::<FeaturesQuery>::from_query(request.query_string()).map_err(|error| {
            ApiError::InvalidQuery(format!(
                "{error}; the query takes `version` ({})",
                versions()
            ))
        })?;
    let spec = match &query.version {
        None => FEATURE_SPEC,
        Some(version) => FeatureSpec::named(version).ok_or_else(|| {
            ApiError::InvalidQuery(format!(
                "no feature spec `{version}`: this server computes {}",
                versions()
            ))
        })?,
    };
    let id: GameId = game_id.parse().map_err(RequestError::from)?;
    let (found, source) = service.features(GameRef::Stored(id)).await?;
    Ok(HttpResponse::Ok().json(FeaturesBody {
        game: found.game,
        feature_version: spec.version,
        features: NamedFeatures(spec, found.vector),
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

/// `?team=&season=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PitchersQuery {
    /// A team code, as in games (`NYA`).
    #[param(example = "SDN")]
    team: String,
    /// The season; the latest in the data when absent.
    #[param(example = 2024)]
    season: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Pitcher<'a> {
    #[schema(value_type = String, example = "darvy001")]
    id: crate::games::PitcherId,
    /// As the data gives it; `null` for a pitcher only posted results name.
    #[schema(example = "Yu Darvish")]
    name: Option<&'a str>,
    /// Games he started for the team that season (the data's games and posted results, or
    /// the season totals, whichever counts more).
    starts: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Staff<'a> {
    #[schema(value_type = String, example = "SDN")]
    team: TeamCode,
    season: i32,
    /// Most starts first: the ids a request's `starters` may name (any pitcher of the data
    /// may start for any team: trades happen).
    pitchers: Vec<Pitcher<'a>>,
}

/// The pitchers of a team in a season, by the ids requests name starters with.
#[utoipa::path(
    get,
    path = "/api/v1/pitchers",
    tag = "features",
    operation_id = "pitchers",
    params(PitchersQuery),
    responses((status = 200, description = "The team's pitchers that season", body = Staff,
        example = super::openapi::example_pitchers)),
    security(("bearer" = ["features:read"])),
)]
pub(super) async fn pitchers(
    service: web::Data<PredictService>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query =
        web::Query::<PitchersQuery>::from_query(request.query_string()).map_err(|error| {
            ApiError::InvalidQuery(format!(
                "{error}; the query takes `team` (a team code) and `season` (a year)"
            ))
        })?;
    let team: TeamCode = query.team.parse().map_err(RequestError::from)?;
    let view = service
        .source()
        .view()
        .await
        .map_err(|error| ApiError::Predict(error.into()))?;
    if !view.knows_team(team) {
        return Err(
            PredictError::Schedule(crate::features::ScheduleError::UnknownTeam(team)).into(),
        );
    }
    let season = match query.season {
        Some(season) => season,
        None => view
            .span()
            .map_or(0, |(_, last)| chrono::Datelike::year(&last)),
    };
    let staff = view.staff(team, season);
    let pitchers = staff
        .iter()
        .map(|member: &StaffMember| Pitcher {
            id: member.id,
            name: member.name.as_deref(),
            starts: member.starts,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Staff {
        team,
        season,
        pitchers,
    }))
}
