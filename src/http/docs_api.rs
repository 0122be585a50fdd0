//! `GET /docs`: the API reference, rendered in the browser by Redoc from
//! `/api/v1/openapi.json`. Redoc's bundle is fetched and checked at build time
//! (`scripts/fetch-redoc.py`) and embedded in the binary, so the page needs no internet and
//! no CDN.

use std::sync::LazyLock;

use actix_web::HttpResponse;
use bytes::Bytes;

/// Redoc's standalone bundle with its licence (MIT) and those of what it bundles in front.
static REDOC: LazyLock<Bytes> = LazyLock::new(|| {
    let licences = [
        include_str!(concat!(env!("OUT_DIR"), "/redoc.LICENSE")),
        include_str!(concat!(env!("OUT_DIR"), "/redoc.standalone.js.LICENSE.txt")),
    ]
    .join("\n")
    .replace("*/", "* /");
    let bundle = include_str!(concat!(env!("OUT_DIR"), "/redoc.standalone.js"));
    Bytes::from(format!("/*!\n{licences}*/\n{bundle}"))
});

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bullpen API reference</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/api/v1/openapi.json" path-in-middle-panel="true"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The API reference page.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "probes",
    operation_id = "docs",
    responses((status = 200, description = "The API reference, rendered by the browser from this document",
               content_type = "text/html", body = String)),
)]
pub(super) async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("cache-control", "no-cache"))
        .body(PAGE)
}

/// The renderer the page loads: the same bytes for the life of the binary.
#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    tag = "probes",
    operation_id = "docs_renderer",
    responses((status = 200, description = "Redoc's standalone bundle (MIT), embedded at build time",
               content_type = "text/javascript", body = String)),
)]
pub(super) async fn renderer() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(REDOC.clone())
}
