//! WatchAccountEvents on the wire: the types filter, each caller's share of
//! the instance's streams, and events as messages.

use std::collections::HashSet;
use std::sync::Arc;

use tonic::{Request, Status};

use super::convert::timestamp;
use super::{to_status, AccountGrpc};
use crate::access::{AccessError, Caller};
use crate::domain::{EventType, ValidationErrors};
use crate::events::{StreamHolder, WatchError, Watched};
use crate::net::PeerInfo;
use crate::proto::account::v1 as pb;
use crate::service::ServiceError;

pub type EventStream = std::pin::Pin<
    Box<dyn tokio_stream::Stream<Item = Result<pb::AccountEvent, Status>> + Send + 'static>,
>;

impl AccountGrpc {
    /// Opens a stream for the caller `handle` put in the request, within
    /// that caller's share of the instance's streams.
    pub(super) fn watch(
        &self,
        request: Request<pb::WatchAccountEventsRequest>,
    ) -> Result<EventStream, ServiceError> {
        let holder = self.stream_holder(&request);
        let r = request.into_inner();
        let types = event_types(&r.types).map_err(ServiceError::Invalid)?;
        let feed = self.accounts.events();
        let slot = feed.reserve(holder).ok_or_else(|| {
            ServiceError::Access(AccessError::StreamLimit(feed.streams_per_caller()))
        })?;
        let events = self.accounts.watch_events(&r.after_cursor, types)?;
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(events),
            move |item| {
                // The slot goes with the stream: tonic drops the stream when
                // it ends or its client goes, and that frees the slot.
                let _held = &slot;
                match item {
                    Ok(watched) => Ok(event_to_proto(watched)),
                    Err(WatchError::Storage(e)) => Err(to_status(&ServiceError::from(e))),
                    Err(WatchError::Expired) => Err(to_status(&ServiceError::CursorExpired)),
                    Err(WatchError::Closing) => Err(to_status(&ServiceError::ShuttingDown)),
                }
            },
        );
        Ok(Box::pin(stream))
    }

    /// Who a stream counts against: the authenticated caller by name; with
    /// nothing authenticating callers, the peer's address.
    fn stream_holder<T>(&self, request: &Request<T>) -> StreamHolder {
        match request.extensions().get::<Arc<Caller>>() {
            Some(caller) if !self.access.is_open() => {
                StreamHolder::Caller(Arc::clone(&caller.name))
            }
            _ => StreamHolder::Address(
                request
                    .extensions()
                    .get::<PeerInfo>()
                    .and_then(|p| p.remote)
                    .map(|a| a.ip().to_canonical()),
            ),
        }
    }
}

fn event_to_proto(watched: Watched) -> pb::AccountEvent {
    match watched {
        Watched::Event {
            cursor,
            kind,
            account_id,
            occurred_at,
            session_id,
            traceparent,
        } => {
            if !traceparent.is_empty() {
                // Sending it is a span of its own, linked to the call that
                // wrote it (only when spans are exported).
                let span = tracing::info_span!("send_event", account_id = %account_id);
                crate::telemetry::link_to(&span, &traceparent);
                let _sent = span.enter();
            }
            pb::AccountEvent {
                cursor: cursor.encode(),
                r#type: i32::try_from(kind.number()).unwrap_or(0),
                account_id: account_id.to_string(),
                occurred_at: Some(timestamp(occurred_at)),
                session_id: session_id.map(|s| s.to_string()).unwrap_or_default(),
            }
        }
        Watched::KeepAlive { cursor } => pb::AccountEvent {
            cursor: cursor.encode(),
            r#type: pb::EventType::Unspecified as i32,
            account_id: String::new(),
            occurred_at: Some(timestamp(chrono::Utc::now())),
            session_id: String::new(),
        },
    }
}

/// The event types a watcher asked for: unknown numbers and UNSPECIFIED
/// are refused, so that a typo does not silently watch nothing.
fn event_types(raw: &[i32]) -> Result<HashSet<EventType>, ValidationErrors> {
    raw.iter()
        .map(|n| {
            EventType::from_number(i64::from(*n)).ok_or_else(|| {
                ValidationErrors::single("types", format!("\"{n}\" is not a valid event type."))
            })
        })
        .collect()
}
