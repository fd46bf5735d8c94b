//! The whole HTTP endpoint.

use std::sync::Arc;

use poem::http::Method;
use poem::middleware::{CatchPanic, CookieJarManager, Cors};
use poem::web::WithContentType;
use poem::{get, Endpoint, EndpointExt, IntoResponse, Response, Route};
use poem_openapi::OpenApiService;

use crate::allow::{allow_header, AllowedMethods};
use crate::errors::{json_error, msg};
use crate::request::{limit_body, request_context};
use crate::state::AppState;
use crate::{api, docs};

/// HTTP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Origins allowed by CORS; empty allows any origin (without credentials).
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 64 * 1024,
            cors_origins: vec![],
        }
    }
}

fn service() -> OpenApiService<api::All, ()> {
    OpenApiService::new(api::all(), "authlog", env!("CARGO_PKG_VERSION")).description(
        "An event-sourced authentication service. Wire-compatible with the Flask JWT \
         template's register / login / protected / logout / refresh / admin contract; every \
         change is an event in an append-only, hash-chained log.",
    )
}

/// The OpenAPI document, exactly as `/openapi.json` serves it.
pub fn openapi_json() -> String {
    service().spec()
}

/// The service: API, `/openapi.json`, Swagger UI at `/docs/`, and the middleware.
pub fn app(state: Arc<AppState>, config: &HttpConfig) -> impl Endpoint<Output = Response> {
    let spec = Arc::new(openapi_json());
    let allowed = Arc::new(AllowedMethods::from_spec(
        &spec,
        &[
            ("/openapi.json", "GET"),
            ("/docs", "GET"),
            ("/docs/", "GET"),
        ],
    ));
    let body_limit = config.body_limit;
    let routes = Route::new()
        .at("/openapi.json", get(SpecEndpoint(spec)))
        .at("/docs", get(docs::redirect))
        .at("/docs/", get(docs::index))
        .at("/docs/*path", get(docs::asset))
        .nest("/", service())
        .data(state)
        .with(CookieJarManager::new())
        .around(move |next, req| limit_body(next, req, body_limit))
        .with(CatchPanic::new().with_handler(|_| {
            msg("Internal server error")
                .with_status(poem::http::StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }))
        .catch_all_error(json_error)
        .around(move |next, req| allow_header(next, req, allowed.clone()))
        .around(request_context);
    routes.with(cors(&config.cors_origins))
}

fn cors(origins: &[String]) -> Cors {
    let cors = Cors::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            "authorization",
            "content-type",
            "x-csrf-token",
            "x-request-id",
        ])
        .expose_headers(["x-request-id", "www-authenticate", "retry-after"]);
    if origins.is_empty() {
        cors
    } else {
        cors.allow_origins(origins.iter().map(String::as_str))
            .allow_credentials(true)
    }
}

struct SpecEndpoint(Arc<String>);

impl Endpoint for SpecEndpoint {
    type Output = WithContentType<String>;

    async fn call(&self, _req: poem::Request) -> poem::Result<Self::Output> {
        Ok(self
            .0
            .as_str()
            .to_owned()
            .with_content_type("application/json"))
    }
}
