//! `GET /api/v1/games/{game_id}/features`.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde::ser::SerializeMap;
use utoipa::ToSchema;

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
    responses((status = 200, description = "The game's features", body = FeaturesBody)),
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
