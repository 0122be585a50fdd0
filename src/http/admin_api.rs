//! `POST /api/v1/admin/cache/invalidate` (scope `admin`).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::errors::ApiError;
use super::json::ApiJson;
use crate::cache::KeyPattern;
use crate::predict::PredictService;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct InvalidateBody {
    /// A key pattern such as `prediction:home_win:*` (see `cache::KeyPattern`).
    pattern: String,
}

#[derive(Debug, Serialize)]
struct InvalidateAnswer {
    pattern: String,
    /// What happened in Redis; absent when there is no shared tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<SharedInvalidation>,
}

/// `null` fields mean Redis could not be reached.
#[derive(Debug, Serialize)]
struct SharedInvalidation {
    keys_deleted: Option<u64>,
    /// Replicas that heard the broadcast, this one included.
    replicas_notified: Option<u64>,
}

/// Drops matching entries here, deletes them from Redis, and tells every replica to drop
/// its own in-process copies.
pub(super) async fn invalidate(
    service: web::Data<PredictService>,
    ApiJson(body): ApiJson<InvalidateBody>,
) -> Result<HttpResponse, ApiError> {
    let pattern: KeyPattern = body.pattern.parse()?;
    let caches = service.caches();
    caches.invalidate_local(&pattern);
    let shared = match caches.shared() {
        Some(shared) => Some(SharedInvalidation {
            keys_deleted: shared.delete_matching(&pattern).await,
            replicas_notified: shared.publish_invalidation(&pattern).await,
        }),
        None => None,
    };
    tracing::info!(%pattern, ?shared, "cache invalidated");
    Ok(HttpResponse::Ok().json(InvalidateAnswer {
        pattern: pattern.to_string(),
        shared,
    }))
}
