//! `POST /api/v1/predict` and `POST /api/v1/predict/batch`.

use std::time::Instant;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::Limits;
use super::access::{Charge, KeyId, insert_rate_limit_headers};
use super::errors::{self, ApiError, Problem};
use super::json::{ApiJson, JsonBody};
use super::rendered::{self, Question, Rendered};
use super::request_id;
use crate::features::GameInfo;
use crate::games::Starters;
use crate::models::{ModelRef, ModelRefError};
use crate::monitoring::Protocol;
use crate::predict::{
    BatchBody, Caller, MarketView, PredictBody, PredictRequest, PredictService, Prediction,
    RequestError,
};

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ModelName<'a> {
    name: &'a str,
    version: &'a str,
}

/// One prediction: the home side's win probability by the model version that answered,
/// and, with odds, the market view.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct PredictionBody<'a> {
    game: GameInfo,
    model: ModelName<'a>,
    home_win_probability: f32,
    away_win_probability: f32,
    /// The feature spec the model read: `v1` (the teams) or `v2` (and the starters).
    #[schema(example = "v1")]
    feature_version: &'static str,
    /// With `v2`: the sides whose starter the request (or the data) does not name, read as
    /// a league-average debut. Absent when both are named or the model reads no starters.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<String>, example = json!(["away"]))]
    unknown_starters: &'static [&'static str],
    cached: bool,
    /// Present (and true) only when served from an expired cache entry during an outage.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    market: Option<MarketView>,
}

impl<'a> From<&'a Prediction> for PredictionBody<'a> {
    fn from(prediction: &'a Prediction) -> Self {
        Self {
            game: prediction.game,
            model: ModelName {
                name: &prediction.model.name,
                version: &prediction.model.version,
            },
            home_win_probability: prediction.home_win_probability,
            away_win_probability: 1.0 - prediction.home_win_probability,
            feature_version: prediction.model.spec.version,
            unknown_starters: if prediction.model.spec.reads_starters() {
                unknown_sides(prediction.game.starters)
            } else {
                &[]
            },
            cached: prediction.cached,
            stale: prediction.stale,
            market: prediction.market,
        }
    }
}

/// The sides `starters` does not name.
fn unknown_sides(starters: Starters) -> &'static [&'static str] {
    match (starters.home, starters.away) {
        (Some(_), Some(_)) => &[],
        (None, Some(_)) => &["home"],
        (Some(_), None) => &["away"],
        (None, None) => &["home", "away"],
    }
}

/// Who asked: the request id and the API key, for the prediction log; the protocol, for
/// the metrics.
pub(super) fn caller(key: Option<web::ReqData<KeyId>>, protocol: Protocol) -> Caller {
    Caller {
        request_id: request_id::current().unwrap_or_default(),
        key_id: key.map(|key| key.0),
        protocol,
    }
}

/// Pins a version for requests that name none: `Bullpen-Model-Version: 2`.
pub(super) const VERSION_HEADER: &str = "bullpen-model-version";
/// Says which version answered: `Bullpen-Model: home_win@2`.
pub(super) const MODEL_HEADER: &str = "bullpen-model";

/// The version the `Bullpen-Model-Version` header pins, if any.
fn pinned_version(http: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = http.headers().get(VERSION_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default();
    let checked = format!("model@{text}").parse::<ModelRef>();
    match checked {
        Ok(_) => Ok(Some(text)),
        Err(_) => Err(RequestError::Model(ModelRefError(format!("@{text}"))).into()),
    }
}

/// Applies a pinned version to a request: the model it names (the default when none) at
/// that version. A request that names another version is refused.
fn pin(request: &mut PredictRequest, version: &str, default: &str) -> Result<(), ApiError> {
    match &mut request.model {
        Some(ModelRef {
            name,
            version: Some(named),
        }) if named != version => Err(ApiError::ConflictingVersion {
            body: format!("{name}@{named}"),
            header: version.to_owned(),
        }),
        Some(model) => {
            model.version = Some(version.to_owned());
            Ok(())
        }
        None => {
            request.model = Some(ModelRef {
                name: default.to_owned(),
                version: Some(version.to_owned()),
            });
            Ok(())
        }
    }
}

/// Predicts one game: stored (`game_id`) or scheduled (teams and date).
#[utoipa::path(
    post,
    path = "/api/v1/predict",
    tag = "predict",
    operation_id = "predict",
    request_body(content = PredictBody,
        example = json!({"game_id": "NYA202404050", "odds": {"home": -135, "away": 115}})),
    params(
        ("Bullpen-Model-Version" = Option<String>, Header,
         pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         description = "Pins a version of the model (the default model when the body names none)"),
        ("Bullpen-Game" = Option<String>, Header, example = "NYA202404050",
         description = "The game the body asks about, for balancers that pick a replica by hashing a header (cache affinity: docs in the README, Load balancing); bullpen does not read it"),
    ),
    responses(
        (status = 200, description = "The prediction", body = PredictionBody,
         headers(("Bullpen-Model" = String, description = "The version that answered: `name@version`")),
         example = json!({
             "game": {"game_id": "NYA202404050", "home": "NYA", "away": "TOR", "date": "2024-04-05",
                      "starters": {"home": "strom001", "away": "kikuy001"}},
             "model": {"name": "home_win", "version": "1"},
             "home_win_probability": 0.558_316_65, "away_win_probability": 0.441_683_35,
             "feature_version": "v1", "cached": false,
             "market": {
                 "overround": 0.039_584_364_176_150_41,
                 "home": {"decimal_odds": 1.740_740_740_740_740_7,
                          "implied_probability": 0.574_468_085_106_383,
                          "market_probability": 0.552_594_002_855_783,
                          "edge": 0.005_722_645_150_656_236,
                          "expected_value": -0.028_115_464_581_383_587, "kelly_fraction": 0.0},
                 "away": {"decimal_odds": 2.15, "implied_probability": 0.465_116_279_069_767_44,
                          "market_probability": 0.447_405_997_144_217,
                          "edge": -0.005_722_645_150_656_236,
                          "expected_value": -0.050_380_793_213_844_366, "kelly_fraction": 0.0}}})),
    ),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn predict(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    http: HttpRequest,
    body: JsonBody,
) -> Result<HttpResponse, ApiError> {
    // A body asked before, by a request that pins no version by header, may have its answer
    // rendered already (http::rendered): under the body, else under what it asks.
    let keepable =
        body.0.len() <= rendered::MAX_BODY && !http.headers().contains_key(VERSION_HEADER);
    let served_again_to = || caller(key.clone(), Protocol::V1);
    if keepable
        && let Some(response) = rendered::serve(&service, &body.0, served_again_to, MODEL_HEADER)
    {
        return Ok(response);
    }
    let request = PredictRequest::try_from(body.parse::<PredictBody>()?)?;
    let question = keepable.then(|| Question {
        game: request.game,
        model: request.model.clone(),
    });
    if let Some(question) = &question
        && let Some(response) = rendered::serve_question(
            &service,
            question,
            request.odds,
            served_again_to,
            MODEL_HEADER,
            |response, _, _| response,
        )
    {
        return Ok(response);
    }
    // Boxed: what asking the service takes is large, and a kept answer needs none of it.
    Box::pin(ask(
        service,
        key,
        http,
        request,
        question.map(|q| (q, Some(body))),
        None,
    ))
    .await
}

/// What a route that answers conditionally does to an answer: given the prediction and until
/// when its cache entry stays fresh, adds validators (or answers 304).
pub(super) type Conditional =
    fn(HttpResponse, &Prediction, Option<Instant>, &HttpRequest) -> HttpResponse;

/// Asks the prediction service and answers; keeps the rendered answer under `kept`'s question
/// (and body, when given and it has no odds) when the service says it may be served again.
/// With `conditional`, the answer goes through it with the prediction and until when its
/// cache entry stays fresh (the GET routes' validators).
pub(super) async fn ask(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    http: HttpRequest,
    mut request: PredictRequest,
    kept: Option<(Question, Option<JsonBody>)>,
    conditional: Option<Conditional>,
) -> Result<HttpResponse, ApiError> {
    let stamp = kept.is_some().then(|| service.stamp());
    if let Some(version) = pinned_version(&http)? {
        pin(
            &mut request,
            version,
            service.catalog().snapshot().default_name(),
        )?;
    }
    let (game, routed) = (request.game, request.is_routed());
    let prediction = service.predict(request, &caller(key, Protocol::V1)).await?;
    let label = prediction.model.label();
    let rendered = serde_json::to_vec(&PredictionBody::from(&prediction));
    let (Ok(model), Ok(answer)) = (HeaderValue::try_from(label.as_str()), rendered) else {
        // Checked model names and plain numbers always render; were one not to, actix-web
        // answers the failure as it would any other.
        return Ok(HttpResponse::Ok()
            .insert_header((MODEL_HEADER, label))
            .json(PredictionBody::from(&prediction)));
    };
    let answer = Bytes::from(answer);
    let mut response = rendered::response(MODEL_HEADER, model.clone(), answer.clone());
    // The cache entry is looked up once, for the validators and for keeping the answer.
    let replayable = stamp.is_some() && service.replayable(routed, &prediction);
    let fresh_until = if conditional.is_some() || replayable {
        service.fresh_until(game, &prediction).await
    } else {
        None
    };
    if let Some(conditional) = conditional {
        response = conditional(response, &prediction, fresh_until, &http);
    }
    if let (Some(stamp), Some((question, body))) = (stamp, kept)
        && replayable
        && let Some(until) = fresh_until
    {
        let with_odds = prediction.market.is_some();
        let plain = if with_odds {
            let mut plain = PredictionBody::from(&prediction);
            plain.market = None;
            match serde_json::to_vec(&plain) {
                Ok(plain) => Bytes::from(plain),
                Err(_) => return Ok(response),
            }
        } else {
            answer
        };
        let kept = Rendered {
            body: plain,
            model,
            prediction: Prediction {
                market: None,
                ..prediction
            },
            until,
        };
        let body = body.as_ref().filter(|_| !with_odds).map(|body| &body.0[..]);
        rendered::keep(&service, stamp, question, body, kept);
    }
    Ok(response)
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct BatchAnswer<'a> {
    succeeded: usize,
    failed: usize,
    results: Vec<BatchItem<'a>>,
}

/// One item's answer, at its place in the batch: a prediction or a problem.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum BatchItem<'a> {
    Prediction {
        index: usize,
        prediction: PredictionBody<'a>,
    },
    Error {
        index: usize,
        error: Problem,
    },
}

/// Predicts up to `server.max_batch` games; each item fails alone, at its index.
#[utoipa::path(
    post,
    path = "/api/v1/predict/batch",
    tag = "predict",
    operation_id = "predict_batch",
    request_body(content = BatchBody, example = json!({"items": [
        {"game": {"home": "NYA", "away": "BOS", "date": "2025-04-05"}},
        {"game_id": "NYA20240405"}]})),
    params(
        ("Bullpen-Model-Version" = Option<String>, Header,
         pattern = "^[A-Za-z0-9][A-Za-z0-9_.-]*$",
         description = "Pins a version for the items that name none"),
    ),
    responses(
        (status = 200, description = "One answer per item, in order; costs one rate-limit token per item",
         body = BatchAnswer,
         example = json!({"succeeded": 1, "failed": 1, "results": [
             {"index": 0, "prediction": {
                 "game": {"home": "NYA", "away": "BOS", "date": "2025-04-05"},
                 "model": {"name": "home_win", "version": "1"},
                 "home_win_probability": 0.552_746_1, "away_win_probability": 0.447_253_88,
                 "feature_version": "v1", "cached": false}},
             {"index": 1, "error": {
                 "type": "urn:bullpen:error:invalid_game_id", "title": "Not a game id",
                 "status": 400,
                 "detail": "`NYA20240405` is not a game id (home team, YYYYMMDD and game number, e.g. NYA202404050)",
                 "code": "invalid_game_id",
                 "request_id": "be6f3496-8454-49ec-a7d7-059f88d15e10"}}]})),
    ),
    security(("bearer" = ["predict"])),
)]
pub(super) async fn predict_batch(
    service: web::Data<PredictService>,
    limits: web::Data<Limits>,
    key: Option<web::ReqData<KeyId>>,
    charge: Option<web::ReqData<Charge>>,
    http: HttpRequest,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<HttpResponse, ApiError> {
    // A pinned version applies to the items that name none, of the default model when they
    // name no model either.
    let pinned = pinned_version(&http)?.map(|version| {
        (
            version,
            service.catalog().snapshot().default_name().to_owned(),
        )
    });
    let items = body.items;
    if items.is_empty() {
        return Err(ApiError::BatchEmpty);
    }
    if items.len() > limits.max_batch {
        return Err(ApiError::BatchTooLarge {
            limit: limits.max_batch,
            items: items.len(),
        });
    }
    // One rate-limit token per item, charged once the batch is known to be one.
    let decision = match &charge {
        Some(charge) => charge.items(items.len()).await?,
        None => None,
    };
    // Items that parse go to the service together; the others keep their error and place.
    let mut valid = Vec::with_capacity(items.len());
    let slots: Vec<Result<(), ApiError>> = items
        .into_iter()
        .map(|item| {
            let body: PredictBody =
                serde_json::from_str(item.get()).map_err(|e| errors::from_serde(&e))?;
            let mut request = PredictRequest::try_from(body)?;
            if let Some((version, default)) = &pinned {
                pin(&mut request, version, default)?;
            }
            valid.push(request);
            Ok(())
        })
        .collect();
    let mut answers = service
        .predict_batch(valid, &caller(key, Protocol::V1))
        .await
        .into_iter();
    let predictions: Vec<Result<Prediction, ApiError>> = slots
        .into_iter()
        .map(|slot| {
            slot?;
            Ok(answers
                .next()
                .expect("one answer per valid item; this is a bug")?)
        })
        .collect();
    let results: Vec<BatchItem<'_>> = predictions
        .iter()
        .enumerate()
        .map(|(index, answer)| match answer {
            Ok(prediction) => BatchItem::Prediction {
                index,
                prediction: PredictionBody::from(prediction),
            },
            Err(error) => BatchItem::Error {
                index,
                error: error.problem(),
            },
        })
        .collect();
    let succeeded = predictions.iter().filter(|p| p.is_ok()).count();
    let mut response = HttpResponse::Ok().json(BatchAnswer {
        succeeded,
        failed: results.len() - succeeded,
        results,
    });
    if let Some(decision) = &decision {
        insert_rate_limit_headers(decision, response.headers_mut());
    }
    Ok(response)
}
