//! Liveness and readiness.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::errors::{msg, MessageBody};
use crate::state::AppState;

#[derive(Object)]
pub struct Status {
    /// `ok` (alive) or `ready` (the store answers).
    pub status: String,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The process is up.
    #[oai(status = 200)]
    Ok(Json<Status>),
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The event store answers.
    #[oai(status = 200)]
    Ok(Json<Status>),
    /// The event store does not answer.
    #[oai(status = 503)]
    Unavailable(Json<MessageBody>),
}

pub struct OpsApi;

#[OpenApi(tag = "Tag::Operations")]
impl OpsApi {
    /// Liveness
    ///
    /// 200 while the process serves requests.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> HealthResponse {
        HealthResponse::Ok(Json(Status {
            status: "ok".into(),
        }))
    }

    /// Metrics
    ///
    /// Prometheus text format: requests by route and status, latency histograms, logins by
    /// outcome, revocations by reason, append latency and batch size, revocation-set size.
    #[oai(path = "/metrics", method = "get", operation_id = "metrics")]
    async fn metrics(&self, state: Data<&Arc<AppState>>) -> PlainText<String> {
        PlainText((state.render_metrics)())
    }

    /// Readiness
    ///
    /// 200 when the event store answers a query, 503 when it does not.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        match state.store.head().await {
            Ok(_) => ReadyResponse::Ok(Json(Status {
                status: "ready".into(),
            })),
            Err(e) => {
                tracing::warn!(error = %e, "readiness check failed");
                ReadyResponse::Unavailable(msg("event store unreachable"))
            }
        }
    }
}
