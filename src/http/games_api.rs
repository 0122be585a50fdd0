//! `GET /api/v1/games/{game_id}/features`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde::ser::SerializeMap;

use super::errors::ApiError;
use crate::cache::Source;
use crate::features::{FEATURE_SPEC, FeatureVector, GameInfo};
use crate::games::{GameId, GameRef};
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

#[derive(Debug, Serialize)]
struct FeaturesBody {
    game: GameInfo,
    feature_version: &'static str,
    features: NamedFeatures,
    cached: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stale: bool,
}

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
