//! The OpenAPI document: served open beside the probes even with auth on, the same as
//! `bullpen openapi` prints, and every 405 says which methods a route takes.

use std::process::Command;

use crate::auth::{auth_app, configured};
use crate::helpers::repo_path;

#[tokio::test]
async fn the_document_is_served_without_credentials_and_matches_bullpen_openapi() {
    let (_, entry) = configured("reader", &["predict"], None);
    let app = auth_app(vec![entry], |_| {}).await;
    let served = app.get("/api/v1/openapi.json").await;
    assert_eq!(served.status, 200, "{}", served.body);
    assert_eq!(served.body["openapi"], "3.1.0");
    assert!(served.body["paths"]["/api/v1/predict"]["post"].is_object());
    assert!(
        served.body["components"]["securitySchemes"]["bearer"].is_object(),
        "{}",
        served.body["components"]
    );

    let printed = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_bullpen"))
            .current_dir(repo_path(""))
            .arg("openapi")
            .output()
            .expect("bullpen runs")
    })
    .await
    .expect("joined");
    assert!(printed.status.success());
    let printed: serde_json::Value =
        serde_json::from_slice(&printed.stdout).expect("bullpen openapi prints JSON");
    assert_eq!(printed, served.body);

    // The problem schema lists every error code the server has.
    let codes = served.body["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("code enum")
        .len();
    assert_eq!(codes, bullpen::http::errors::ErrorCode::ALL.len());
}

#[tokio::test]
async fn a_method_a_route_does_not_take_is_405_with_allow() {
    let app = crate::helpers::spawn_app().await;
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/api/v1/predict", "POST"),
        (reqwest::Method::POST, "/health", "GET, HEAD"),
        (
            reqwest::Method::DELETE,
            "/api/v1/admin/models/home_win/routing",
            "GET, PUT",
        ),
    ] {
        let reply = app.send(app.request(method.clone(), path)).await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.body["code"], "method_not_allowed");
        assert_eq!(
            reply.headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
}

/// `/docs` in headless Chromium with no network but the server: Redoc (embedded) renders a
/// section for every operation of the document.
#[tokio::test]
async fn the_docs_page_renders_every_operation_offline_in_headless_chromium() {
    let app = crate::helpers::spawn_app().await;
    let document = app.get("/api/v1/openapi.json").await.body;
    let page = crate::monitoring::chromium(format!("{}/docs", app.address), 15_000, None).await;
    let mut operations = 0;
    for item in document["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("path item").values() {
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(
                page.contains(&format!("operation/{id}")),
                "{id} not rendered: {}",
                &page[..page.len().min(2000)]
            );
            operations += 1;
        }
    }
    assert!(operations >= 19, "{operations} operations");
}

/// Every example answer in the document is a real one: the server, asked the operation's
/// example request (its path and query parameters' and body's examples), gives the example answer, less what
/// varies (`cached`, request ids, when routing last changed).
#[tokio::test]
async fn every_example_answer_is_what_the_server_answers() {
    let app = crate::helpers::spawn_app().await;
    let document = app.get("/api/v1/openapi.json").await.body;
    let mut checked = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let ok = &operation["responses"]["200"]["content"];
            let Some(mut expected) = ok["application/json"]["example"]
                .as_object()
                .map(|example| serde_json::Value::Object(example.clone()))
            else {
                continue;
            };
            let mut url = path.clone();
            let mut query = Vec::new();
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().expect("name");
                if parameter["in"] == "path" {
                    let value = parameter["example"]
                        .as_str()
                        .expect("path parameters have examples");
                    url = url.replace(&format!("{{{name}}}"), value);
                } else if let Some(value) = parameter["example"].as_str() {
                    query.push(format!("{name}={value}"));
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let mut request = app.request(method.clone(), &url);
            let body = &operation["requestBody"]["content"]["application/json"]["example"];
            if !body.is_null() {
                request = request.json(body);
            }
            let mut answer = app.send(request).await.body;
            for value in [&mut expected, &mut answer] {
                forget_what_varies(value);
            }
            assert_eq!(answer, expected, "{method} {url}");
            checked.push(format!("{method} {path}"));
        }
    }
    // Every operation that answers JSON but the status page's live numbers and the
    // document itself.
    assert_eq!(checked.len(), 25, "{checked:?}");
}

fn forget_what_varies(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for varies in ["cached", "request_id", "updated_at"] {
                map.remove(varies);
            }
            map.values_mut().for_each(forget_what_varies);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(forget_what_varies),
        _ => {}
    }
}
