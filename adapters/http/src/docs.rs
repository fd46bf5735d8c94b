//! Swagger UI at `/docs/`, over `/openapi.json`. The files come from utoipa-swagger-ui's
//! `vendored` feature, compiled into the binary: serving them fetches nothing.

use std::sync::{Arc, LazyLock};

use poem::http::StatusCode;
use poem::web::{Path, Redirect};
use poem::{handler, IntoResponse, Response};
use utoipa_swagger_ui::Config;

static CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::new(["/openapi.json"])));

/// `/docs` itself redirects to `/docs/`, so the page's relative asset links resolve.
#[handler]
pub fn redirect() -> Redirect {
    Redirect::permanent("/docs/")
}

#[handler]
pub fn index() -> Response {
    file("")
}

#[handler]
pub fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    match utoipa_swagger_ui::serve(path, CONFIG.clone()) {
        Ok(Some(file)) => file
            .bytes
            .into_owned()
            .with_content_type(file.content_type)
            .into_response(),
        Ok(None) => crate::errors::msg("Not Found")
            .with_status(StatusCode::NOT_FOUND)
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "swagger ui");
            crate::errors::msg("Internal server error")
                .with_status(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response()
        }
    }
}
