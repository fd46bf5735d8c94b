//! The event feed: the log pushed as Server-Sent Events, each event a CloudEvent (1.0, JSON
//! format) carrying what audit shows of it.
//!
//! Each consumer reads the log from its cursor and then follows the process's one reader of
//! new events ([`authlog_application::feed`]): no consumer holds more than a page, and a commit
//! costs one read whatever the number of consumers. The response is answered before its body
//! streams, so the request metrics and log line measure the time to the first byte, not the
//! stream's life.

use std::sync::Arc;
use std::time::Duration;

use authlog_application::audit::AuditEntry;
use authlog_application::feed::FeedConsumer;
use futures::stream::BoxStream;
use futures::StreamExt as _;
use poem::web::sse::Event as SseEvent;
use poem::web::Data;
use poem_openapi::param::{Header, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON as _;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::audit::{AuditEvent, AuditRefusal};
use crate::api::Tag;
use crate::errors::msg;
use crate::fields::{EventTypes, Position};
use crate::security::Access;
use crate::state::AppState;

/// A comment line this often keeps idle connections (and the proxies on their way) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One event of the log as a CloudEvent (CloudEvents 1.0, JSON event format).
#[derive(Object)]
pub struct CloudEvent {
    /// `1.0`
    pub specversion: String,
    /// The event's position in the log, in decimal: unique, and the SSE `id` to resume after.
    pub id: String,
    /// The issuer of this authlog (`--issuer`).
    pub source: String,
    /// `dev.authlog.` and the event's type, as `dev.authlog.LoginFailed`.
    #[oai(rename = "type")]
    pub event_type: String,
    /// When it was recorded (RFC 3339).
    pub time: String,
    /// The user's id, for an event about an account.
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    /// `application/json`
    pub datacontenttype: String,
    /// The event as `GET /audit/events` shows it, personal data redacted alike.
    pub data: AuditEvent,
    /// The event's position in the log, as a number.
    pub authlogposition: u64,
}

impl CloudEvent {
    fn new(entry: AuditEntry, source: &str) -> Self {
        let time = entry
            .recorded_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        // A login stream's subject may be a concealed name: only an id names a user.
        let subject = entry
            .subject
            .clone()
            .filter(|s| uuid::Uuid::parse_str(s).is_ok());
        Self {
            specversion: "1.0".into(),
            id: entry.position.to_string(),
            source: source.to_owned(),
            event_type: format!("dev.authlog.{}", entry.event_type),
            time,
            subject,
            datacontenttype: "application/json".into(),
            authlogposition: entry.position,
            data: entry.into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum FeedResponse {
    /// The events after the cursor, then each new one as it is recorded: SSE `id` is the
    /// position, `event` the type, `data` the CloudEvent; a comment every 15 s while idle.
    #[oai(status = 200)]
    Stream(EventStream<BoxStream<'static, CloudEvent>>),
}

pub struct FeedApi;

#[OpenApi(tag = "Tag::Audit")]
impl FeedApi {
    /// Follow the event log (Server-Sent Events)
    ///
    /// The log, pushed: every event after the cursor, then each new one as it is recorded, as
    /// CloudEvents. Resume after a disconnection with the `Last-Event-ID` header (browsers'
    /// `EventSource` sends it) or `after`. Admins and auditors.
    #[oai(path = "/events/stream", method = "get", operation_id = "eventStream")]
    async fn stream(
        &self,
        state: Data<&Arc<AppState>>,
        token: Access,
        /// Only events of these types: comma-separated (`LoginFailed,Revoked`), or repeat the
        /// parameter.
        #[oai(name = "type")]
        types: Query<Option<Vec<EventTypes>>>,
        /// Start after this position (0, or none: from the log's first event).
        after: Query<Option<Position>>,
        /// The last position this consumer received; wins over `after`.
        #[oai(name = "Last-Event-ID")]
        last_event_id: Header<Option<String>>,
    ) -> Result<FeedResponse, AuditRefusal> {
        let resume = match last_event_id.0.as_deref().map(str::trim) {
            None | Some("") => None,
            // A position as the log stores it: 0 to i64::MAX, like `after`.
            Some(id) => Some(
                id.parse::<i64>()
                    .ok()
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| {
                        AuditRefusal::BadRequest(msg(format!(
                            "Last-Event-ID must be a position (a whole number), not {id:?}"
                        )))
                    })?,
            ),
        };
        let types = types
            .0
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect();
        let after = resume.or(after.0.map(|p| p.0)).unwrap_or(0);
        // The first page is read here: a caller who may not read the log, or a bad filter,
        // gets its error as a status, not as a stream that ends at once.
        let consumer = state
            .feed
            .consumer(
                state.audit.clone(),
                token.caller(),
                types,
                after,
                state.subscribers.heads(),
                state.subscribers.stopped(),
            )
            .await?;
        let feed = Feed {
            consumer,
            source: state.issuer.clone(),
        };
        let events = futures::stream::unfold(feed, Feed::next).boxed();
        Ok(FeedResponse::Stream(
            EventStream::new(events)
                .keep_alive(KEEP_ALIVE)
                .to_event(|event: CloudEvent| {
                    let (id, kind) = (event.id.clone(), event.data.event_type.0.clone());
                    SseEvent::message(event.to_json_string())
                        .id(id)
                        .event_type(kind)
                }),
        ))
    }
}

/// One consumer, and the `source` its events name.
struct Feed {
    consumer: FeedConsumer,
    source: String,
}

impl Feed {
    async fn next(mut self) -> Option<(CloudEvent, Self)> {
        let entry = self.consumer.next().await?;
        let event = CloudEvent::new(entry, &self.source);
        Some((event, self))
    }
}
