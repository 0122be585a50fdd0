//! The prediction as a resource a balancer can route by and a client can keep:
//! `GET /api/v1/games/{game_id}/prediction` (a stored game) and
//! `GET /api/v1/predictions?home=&away=&date=&number=&home_starter=&away_starter=` (a
//! scheduled one). The same answer as
//! `POST /api/v1/predict`, with validators: an `ETag` of the model that answered and the
//! features it answered from, `If-None-Match` answered 304, and `Cache-Control: max-age` as
//! long as the answer's cache entry stays fresh. Their path names the game, so a balancer
//! that hashes the URI sends every request for a game to one replica (cache affinity).

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::access::KeyId;
use super::errors::ApiError;
use super::predict_api::{self, MODEL_HEADER, VERSION_HEADER, caller};
use super::rendered::{self, Question};
use crate::monitoring::Protocol;
use crate::predict::{
    OddsBody, OddsFormat, PredictBody, PredictRequest, PredictService, Prediction, ScheduledBody,
    StartersBody,
};

/// What the query may add to a stored game.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct GameQuery {
    /// `name` or `name@version`.
    #[param(example = "home_win@1")]
    model: Option<String>,
    /// The home side's price, with `away_odds`: the answer then carries the market view.
    #[param(example = -135)]
    home_odds: Option<f64>,
    #[param(example = 115)]
    away_odds: Option<f64>,
    /// Told apart by their values when not given, as in the POST's `odds`.
    odds_format: Option<OddsFormat>,
}

/// A scheduled game, and what the query may add to it.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ScheduledQuery {
    #[param(example = "NYA")]
    home: String,
    #[param(example = "BOS")]
    away: String,
    /// `YYYY-MM-DD`.
    #[param(format = Date, example = "2025-04-05")]
    date: String,
    /// 0 for a single game, 1 or 2 in a doubleheader: the answer then names the game's id.
    #[param(minimum = 0, maximum = 2)]
    number: Option<u8>,
    /// The home side's probable starter (Retrosheet id), for models of feature spec `v2`.
    #[param(pattern = "^[a-z-]{4}[a-z][0-9]{3}$")]
    home_starter: Option<String>,
    /// The visitors' probable starter.
    #[param(pattern = "^[a-z-]{4}[a-z][0-9]{3}$")]
    away_starter: Option<String>,
    #[param(example = "home_win@1")]
    model: Option<String>,
    #[param(example = -135)]
    home_odds: Option<f64>,
    #[param(example = 115)]
    away_odds: Option<f64>,
    odds_format: Option<OddsFormat>,
}

const GAME_QUERY: &str = "`model`, `home_odds` with `away_odds`, and `odds_format`";
const SCHEDULED_QUERY: &str = "`home`, `away`, `date` (YYYY-MM-DD), and optionally `number`, `home_starter`, `away_starter`, `model`, `home_odds` with `away_odds`, and `odds_format`";

fn query<T: serde::de::DeserializeOwned>(http: &HttpRequest, takes: &str) -> Result<T, ApiError> {
    web::Query::<T>::from_query(http.query_string())
        .map(web::Query::into_inner)
        .map_err(|error| ApiError::InvalidQuery(format!("{error}; the query takes {takes}")))
}

/// Both prices or neither.
fn odds(
    home: Option<f64>,
    away: Option<f64>,
    format: Option<OddsFormat>,
    takes: &str,
) -> Result<Option<OddsBody>, ApiError> {
    match (home, away) {
        (Some(home), Some(away)) => Ok(Some(OddsBody { home, away, format })),
        (None, None) if format.is_none() => Ok(None),
        _ => Err(ApiError::InvalidQuery(format!(
            "give both `home_odds` and `away_odds` (and `odds_format` only with them); the query takes {takes}"
        ))),
    }
}

/// A stored game's prediction, as `POST /api/v1/predict` with its `game_id` answers it.
#[utoipa::path(
    get,
    path = "/api/v1/games/{game_id}/prediction",
    tag = "predict",
    operation_id = "game_prediction",
    params(
        ("game_id" = String, Path, description = "A Retrosheet game id",
         pattern = "^[A-Z0-9]{3}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-2]$",
         example = "BAL202403280"),
        GameQuery,
        ("If-None-Match" = Option<String>, Header,
         description = "An `ETag` this route gave: 304 while the answer is still the same"),
        ("Bullpen-Model-Version" = Option<String>, Header,
         pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         description = "Pins a version of the model (the default model when the query names none)"),
    ),
    responses(
        (status = 200, description = "The prediction, as `POST /api/v1/predict` answers it",
         body = predict_api::PredictionBody, headers(
            ("ETag" = String, description = "Weak: the model version and file that answered, and the features it answered from"),
            ("Cache-Control" = String, description = "`private, max-age=N`: N seconds until the answer's cache entry expires (`no-cache` when nothing holds it)"),
            ("Bullpen-Model" = String, description = "The version that answered: `name@version`"))),
        (status = 304, description = "The answer is the one the `If-None-Match` ETag names"),
    ),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn game_prediction(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    http: HttpRequest,
    game_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let asked: GameQuery = query(&http, GAME_QUERY)?;
    let body = PredictBody {
        game_id: Some(game_id.into_inner()),
        game: None,
        starters: None,
        model: asked.model,
        odds: odds(
            asked.home_odds,
            asked.away_odds,
            asked.odds_format,
            GAME_QUERY,
        )?,
    };
    get(service, key, http, body).await
}

/// A scheduled game's prediction, as `POST /api/v1/predict` with its `game` answers it.
#[utoipa::path(
    get,
    path = "/api/v1/predictions",
    tag = "predict",
    operation_id = "scheduled_prediction",
    params(
        ScheduledQuery,
        ("If-None-Match" = Option<String>, Header,
         description = "An `ETag` this route gave: 304 while the answer is still the same"),
        ("Bullpen-Model-Version" = Option<String>, Header,
         pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         description = "Pins a version of the model (the default model when the query names none)"),
    ),
    responses(
        (status = 200, description = "The prediction, as `POST /api/v1/predict` answers it",
         body = predict_api::PredictionBody, headers(
            ("ETag" = String, description = "Weak: the model version and file that answered, and the features it answered from (a result posted since changes them)"),
            ("Cache-Control" = String, description = "`private, max-age=N`: N seconds until the answer's cache entry expires (`no-cache` when nothing holds it)"),
            ("Bullpen-Model" = String, description = "The version that answered: `name@version`"))),
        (status = 304, description = "The answer is the one the `If-None-Match` ETag names"),
    ),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn scheduled_prediction(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    http: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let asked: ScheduledQuery = query(&http, SCHEDULED_QUERY)?;
    let body = PredictBody {
        game_id: None,
        game: Some(ScheduledBody {
            home: asked.home,
            away: asked.away,
            date: asked.date,
            number: asked.number,
        }),
        starters: Some(StartersBody {
            home: asked.home_starter,
            away: asked.away_starter,
        }),
        model: asked.model,
        odds: odds(
            asked.home_odds,
            asked.away_odds,
            asked.odds_format,
            SCHEDULED_QUERY,
        )?,
    };
    get(service, key, http, body).await
}

/// Answers `body` as the POST would (a kept answer when one stands), with validators.
async fn get(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    http: HttpRequest,
    body: PredictBody,
) -> Result<HttpResponse, ApiError> {
    let request = PredictRequest::try_from(body)?;
    let keepable = !http.headers().contains_key(VERSION_HEADER);
    let question = keepable.then(|| Question {
        game: request.game,
        model: request.model.clone(),
    });
    if let Some(question) = &question
        && let Some(response) = rendered::serve_question(
            &service,
            question,
            request.odds,
            || caller(key.clone(), Protocol::V1),
            MODEL_HEADER,
            |response, prediction, until| validated(response, prediction, Some(until), &http),
        )
    {
        return Ok(response);
    }
    let kept = question.map(|question| (question, None));
    Box::pin(predict_api::ask(
        service,
        key,
        http,
        request,
        kept,
        Some(validated),
    ))
    .await
}

/// `response` (the answer `prediction`, whose cache entry stays fresh until `until`) with its
/// `ETag` and `Cache-Control`, or a 304 with them when the request's `If-None-Match` names it.
fn validated(
    mut response: HttpResponse,
    prediction: &Prediction,
    until: Option<Instant>,
    http: &HttpRequest,
) -> HttpResponse {
    let tag = etag(prediction);
    let cache_control = match until {
        Some(until) => {
            let left = until.saturating_duration_since(Instant::now()).as_secs();
            HeaderValue::from_str(&format!("private, max-age={left}"))
        }
        None => Ok(HeaderValue::from_static("no-cache")),
    };
    let (Ok(tag_value), Ok(cache_control)) = (HeaderValue::from_str(&tag), cache_control) else {
        return response;
    };
    if http
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .any(|asked| names(asked, &tag))
    {
        let mut unchanged = HttpResponse::build(StatusCode::NOT_MODIFIED).finish();
        let headers = unchanged.headers_mut();
        headers.insert(header::ETAG, tag_value);
        headers.insert(header::CACHE_CONTROL, cache_control);
        if let Some(model) = response.headers().get(MODEL_HEADER) {
            headers.insert(HeaderName::from_static(MODEL_HEADER), model.clone());
        }
        return unchanged;
    }
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag_value);
    headers.insert(header::CACHE_CONTROL, cache_control);
    response
}

/// A weak tag (the body says whether it was cached, so bytes differ between equal answers):
/// the version that answered, its model file's fingerprint and the hash of the features.
fn etag(prediction: &Prediction) -> String {
    format!(
        "W/\"{}-{:016x}-{:016x}\"",
        prediction.model.label(),
        prediction.model.fingerprint_key,
        prediction.feature_hash
    )
}

/// Whether an `If-None-Match` value names `tag` (weak comparison, RFC 9110 13.1.2): `*`, or a
/// list of tags one of which is `tag` with or without its `W/`.
fn names(asked: &HeaderValue, tag: &str) -> bool {
    let Ok(asked) = asked.to_str() else {
        return false;
    };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let wanted = opaque(tag);
    asked.trim() == "*" || asked.split(',').any(|one| opaque(one) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists_and_any() {
        let tag = "W/\"home_win@1-00000000000000aa-00000000000000bb\"";
        for matching in [
            tag,
            "\"home_win@1-00000000000000aa-00000000000000bb\"",
            "W/\"other\", W/\"home_win@1-00000000000000aa-00000000000000bb\"",
            "*",
        ] {
            assert!(
                names(&HeaderValue::from_static(matching), tag),
                "{matching}"
            );
        }
        for other in [
            "W/\"home_win@2-00000000000000aa-00000000000000bb\"",
            "",
            "W/",
        ] {
            assert!(!names(&HeaderValue::from_static(other), tag), "{other}");
        }
    }
}
