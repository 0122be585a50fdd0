//! `POST /api/v1/predict` and `POST /api/v1/predict/batch`.

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::Limits;
use super::access::{Charge, KeyId, insert_rate_limit_headers};
use super::errors::{self, ApiError, Problem};
use super::json::ApiJson;
use super::request_id;
use crate::features::{FEATURE_SPEC, GameInfo};
use crate::predict::{
    BatchBody, Caller, MarketView, PredictBody, PredictRequest, PredictService, Prediction,
};

#[derive(Debug, Serialize)]
struct ModelName<'a> {
    name: &'a str,
    version: &'a str,
}

#[derive(Debug, Serialize)]
struct PredictionBody<'a> {
    game: GameInfo,
    model: ModelName<'a>,
    home_win_probability: f32,
    away_win_probability: f32,
    feature_version: &'static str,
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
            feature_version: FEATURE_SPEC.version,
            cached: prediction.cached,
            stale: prediction.stale,
            market: prediction.market,
        }
    }
}

/// Who asked: the request id and the API key, for the prediction log.
fn caller(key: Option<web::ReqData<KeyId>>) -> Caller {
    Caller {
        request_id: request_id::current().unwrap_or_default(),
        key_id: key.map(|key| key.0),
    }
}

pub(super) async fn predict(
    service: web::Data<PredictService>,
    key: Option<web::ReqData<KeyId>>,
    ApiJson(body): ApiJson<PredictBody>,
) -> Result<HttpResponse, ApiError> {
    let request = PredictRequest::try_from(body)?;
    let prediction = service.predict(request, &caller(key)).await?;
    Ok(HttpResponse::Ok().json(PredictionBody::from(&prediction)))
}

#[derive(Debug, Serialize)]
struct BatchAnswer<'a> {
    succeeded: usize,
    failed: usize,
    results: Vec<BatchItem<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum BatchItem<'a> {
    Prediction {
        index: usize,
        prediction: PredictionBody<'a>,
    },
    Error {
        index: usize,
        error: Problem,
    },
}

pub(super) async fn predict_batch(
    service: web::Data<PredictService>,
    limits: web::Data<Limits>,
    key: Option<web::ReqData<KeyId>>,
    charge: Option<web::ReqData<Charge>>,
    ApiJson(body): ApiJson<BatchBody>,
) -> Result<HttpResponse, ApiError> {
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
                serde_json::from_value(item).map_err(|e| errors::from_serde(&e))?;
            valid.push(PredictRequest::try_from(body)?);
            Ok(())
        })
        .collect();
    let mut answers = service.predict_batch(valid, &caller(key)).await.into_iter();
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
