//! Liveness and readiness.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::Tag;
use crate::errors::{msg, MessageBody};
use crate::state::AppState;

/// How far behind the log an instance may be and still take traffic.
const MAX_LAG: time::Duration = time::Duration::seconds(5);

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
    /// The event store answers and this instance keeps up with the log.
    #[oai(status = 200)]
    Ok(Json<Status>),
    /// The event store does not answer, or this instance is more than 5 s behind the log.
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
    /// 200 when the event store answers a query and this instance's view of the log (its
    /// revocations, keys and projections) is less than 5 seconds behind; 503 otherwise.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&Arc<AppState>>) -> ReadyResponse {
        if let Err(e) = state.log.head().await {
            tracing::warn!(error = %e, "readiness check failed");
            return ReadyResponse::Unavailable(msg("event store unreachable"));
        }
        if let Some(halted) = state.subscribers.halted() {
            return ReadyResponse::Unavailable(msg(&halted));
        }
        let behind = state.subscribers.behind();
        if behind > MAX_LAG {
            tracing::warn!(
                behind_ms = behind.whole_milliseconds(),
                "readiness: the log follower is behind"
            );
            return ReadyResponse::Unavailable(msg(
                "this instance's view of the event log is behind",
            ));
        }
        ReadyResponse::Ok(Json(Status {
            status: "ready".into(),
        }))
    }
}
