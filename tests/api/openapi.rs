//! The served OpenAPI document, the committed copy, and Swagger UI.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

#[tokio::test]
async fn the_served_spec_is_the_committed_one() {
    let app = spawn_app().await;
    let served = app
        .get_anonymous("/openapi.json")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        served.trim() == COMMITTED.trim(),
        "openapi/openapi.json is out of date; regenerate it with:\n  \
         cargo run -q -p authlog -- openapi > openapi/openapi.json"
    );
}

#[tokio::test]
async fn the_cli_prints_the_same_spec() {
    let app = spawn_app().await;
    let output = app.cli(&["openapi"]).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        COMMITTED.trim()
    );
}

#[tokio::test]
async fn the_spec_documents_every_contract_path_and_the_bearer_schemes() {
    let spec: Value = serde_json::from_str(COMMITTED).unwrap();
    assert_eq!(spec["openapi"], "3.0.0");
    for path in [
        "/register",
        "/login",
        "/protected",
        "/logout",
        "/refresh",
        "/admin",
        "/me",
        "/healthz",
        "/readyz",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing");
    }
    assert_eq!(
        spec["components"]["securitySchemes"]["AccessToken"]["scheme"],
        "bearer"
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["RefreshToken"]["scheme"],
        "bearer"
    );
    let protected_responses = &spec["paths"]["/protected"]["get"]["responses"];
    assert!(protected_responses.get("401").is_some());
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.headers()["location"], "/docs/");

    let page = app.get_anonymous("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    let initializer = app.get_anonymous("/docs/swagger-initializer.js").await;
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
    let bundle = app.get_anonymous("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), StatusCode::OK);
}
