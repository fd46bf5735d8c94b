//! The whole HTTP endpoint.

use std::sync::Arc;
use std::time::Duration;

use poem::endpoint::{BoxEndpoint, DynEndpoint};
use poem::http::Method;
use poem::middleware::{CookieJarManager, Cors};
use poem::web::WithContentType;
use poem::{get, Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Response, Route};
use poem_openapi::OpenApiService;

use crate::allow::AllowedMethods;
use crate::frame::{Framed, RequestMetrics};
use crate::state::AppState;
use crate::{api, docs};

/// HTTP settings (their defaults live with the `authlog serve` flags that set them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Time a request body may take to arrive once the head has: 408 after that.
    pub body_timeout: Duration,
    /// Origins allowed by CORS; empty allows any origin (without credentials).
    pub cors_origins: Vec<String>,
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
    let allowed = AllowedMethods::from_spec(
        &spec,
        &[
            ("/openapi.json", "GET"),
            ("/docs", "GET"),
            ("/docs/", "GET"),
        ],
    );
    let documentation = Route::new()
        .at("/openapi.json", get(SpecEndpoint(spec)))
        .at("/docs", get(docs::redirect))
        .at("/docs/", get(docs::index))
        .at("/docs/*path", get(docs::asset));
    let routes = Split {
        api: Arc::new(service().into_endpoint().boxed()),
        documentation: Arc::new(documentation.boxed()),
    };
    Framed {
        state,
        body_limit: config.body_limit,
        body_timeout: config.body_timeout,
        allowed,
        metrics: RequestMetrics::default(),
        // Inside the frame, so that preflights get a request id, a log line and the security
        // headers, and a refused one the `{"msg"}` shape instead of poem's plain text.
        full: routes
            .clone()
            .with(CookieJarManager::new())
            .with(cors(&config.cors_origins))
            .boxed(),
        plain: routes.boxed(),
    }
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

/// Sends `/openapi.json` and `/docs...` to the documentation routes and everything else
/// straight to the API's own router. Nesting the API inside a second router cost every request a
/// second route lookup, a boxed future and a rewritten URI (about 4,000 instructions of
/// `/protected`'s 47,000 under callgrind). Both are called through [`DynEndpoint`] directly:
/// a `BoxEndpoint`'s own `Endpoint::call` would wrap the boxed future in two more futures.
/// Cloned into the frame's two chains, it shares the routers.
#[derive(Clone)]
struct Split {
    api: Arc<BoxEndpoint<'static, Response>>,
    documentation: Arc<BoxEndpoint<'static, Response>>,
}

impl Endpoint for Split {
    type Output = Response;

    async fn call(&self, req: poem::Request) -> poem::Result<Response> {
        let path = req.uri().path();
        if path == "/openapi.json" || path == "/docs" || path.starts_with("/docs/") {
            DynEndpoint::call(&**self.documentation, req).await
        } else {
            DynEndpoint::call(&**self.api, req).await
        }
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
