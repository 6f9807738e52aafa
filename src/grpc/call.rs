//! What every RPC goes through, once: the method its path names, the size
//! bound of its message, its caller and scope, the caller's quota,
//! admission, readiness, a span with its request id, one log line and its
//! metrics, its error as a status, and `x-request-id` on its answer.

use std::time::{Duration, Instant};

use tonic::body::Body;
use tonic::codegen::http;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use super::message_limit::MessageLimit;
use super::{to_status, AccountGrpc, MAX_MESSAGE_BYTES, REQUEST_TIMEOUT};
use crate::access::{self, Caller};
use crate::limits::LimitError;
use crate::net::PeerInfo;
use crate::proto::account::v1::account_service_server::SERVICE_NAME;
use crate::service::ServiceError;

/// The RPC a request calls, as the scope table spells it. [`prepare`] puts
/// it in the request's extensions.
#[derive(Debug, Clone, Copy)]
struct RpcMethod(&'static str);

/// What an account service path names when the scope table lacks it;
/// such a call needs `accounts:admin` (see [`access::required_scope`]).
const UNKNOWN_METHOD: &str = "unknown";

/// Names the RPC of an account service request after its path
/// (`/account.v1.AccountService/Register`) and bounds the size of its
/// message; other services' requests pass untouched.
pub(super) fn prepare(request: http::Request<Body>) -> http::Request<Body> {
    let method = request
        .uri()
        .path()
        .strip_prefix('/')
        .and_then(|path| path.split_once('/'))
        .filter(|(service, _)| *service == SERVICE_NAME)
        .map(|(_, method)| access::rpc_name(method).unwrap_or(UNKNOWN_METHOD));
    let Some(method) = method else {
        return request;
    };
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(RpcMethod(method));
    let body = Body::new(MessageLimit::new(body, MAX_MESSAGE_BYTES));
    http::Request::from_parts(parts, body)
}

/// The caller's `x-request-id` when it is a sane token, else a new one.
fn request_id(metadata: &MetadataMap) -> String {
    metadata
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map_or_else(|| Uuid::now_v7().simple().to_string(), str::to_owned)
}

/// The deadline a client set with `grpc-timeout` (`<digits><unit>`, unit
/// one of H M S m u n), if it is well-formed.
fn client_deadline(metadata: &MetadataMap) -> Option<Duration> {
    let raw = metadata.get("grpc-timeout")?.to_str().ok()?;
    if raw.len() < 2 || raw.len() > 9 {
        return None;
    }
    let (digits, unit) = raw.split_at(raw.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Records one RPC (log line and metrics) exactly once: when it answers, or,
/// if its future is dropped first (the caller cancelled, or a deadline
/// passed), as Cancelled or DeadlineExceeded.
struct CallRecord<'a> {
    grpc: &'a AccountGrpc,
    method: &'static str,
    /// The caller's metric label.
    caller: &'static str,
    started: Instant,
    span: tracing::Span,
    /// The earliest of the client's deadline and the server's own limit.
    deadline: Duration,
    recorded: bool,
}

impl CallRecord<'_> {
    fn record(&mut self, code: tonic::Code) {
        self.recorded = true;
        let latency = self.started.elapsed();
        let method = self.method;
        self.span.in_scope(|| {
            tracing::info!(method, code = ?code, latency_ms = latency.as_secs_f64() * 1000.0, "rpc");
        });
        self.grpc
            .metrics
            .observe_rpc(method, self.caller, code, latency);
    }
}

impl Drop for CallRecord<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            // tonic starts a deadline's clock a little before the handler
            // runs; a call dropped that close to its deadline timed out.
            let slack = Duration::from_millis(20);
            let code = if self.started.elapsed() + slack >= self.deadline {
                tonic::Code::DeadlineExceeded
            } else {
                tonic::Code::Cancelled
            };
            self.record(code);
        }
    }
}

impl AccountGrpc {
    /// Runs one RPC, if its caller may make it and the database was
    /// reached, inside a span carrying its request id and caller, then logs
    /// it as one event (method, status code, latency), records its metrics,
    /// maps its error to a status and returns the request id in
    /// `x-request-id`.
    pub(super) async fn handle<Req, T, F, Fut>(
        &self,
        request: Request<Req>,
        call: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
        let method = request
            .extensions()
            .get::<RpcMethod>()
            .map_or(UNKNOWN_METHOD, |m| m.0);
        let request_id = request_id(request.metadata());
        let certificate_name = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.certificate_name.clone());
        // Identified first, so that a known caller refused for a missing
        // scope is logged and counted under its own name.
        let caller = self
            .access
            .identify(request.metadata(), certificate_name.as_ref());
        let (label, name) = match &caller {
            Ok(c) => (c.label, &*c.name),
            Err(_) => ("unauthenticated", "unauthenticated"),
        };
        let span = tracing::info_span!(
            "rpc",
            method,
            request_id = %request_id,
            caller = %name,
            trace_id = tracing::field::Empty,
        );
        let trace_id = crate::telemetry::continue_trace(&span, request.metadata().as_ref());
        span.record("trace_id", trace_id.as_str());
        let mut record = CallRecord {
            grpc: self,
            method,
            caller: label,
            started: Instant::now(),
            span: span.clone(),
            deadline: client_deadline(request.metadata())
                .map_or(REQUEST_TIMEOUT, |d| d.min(REQUEST_TIMEOUT)),
            recorded: false,
        };
        let result = async {
            let caller = caller.map_err(ServiceError::Access)?;
            access::check_scope(&caller, method).map_err(ServiceError::Access)?;
            self.check_quota(&caller).await?;
            let _permit = self.admit()?;
            // Before the call parses or limits anything: until the database
            // was reached, every call answers the same.
            self.readiness.ensure_ready()?;
            let mut request = request;
            // For the calls whose rules depend on who calls.
            request.extensions_mut().insert(caller);
            call(request).await
        }
        .instrument(span.clone())
        .await;
        let result = result.map_err(|e| span.in_scope(|| to_status(&e)));
        record.record(match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        });
        let id = MetadataValue::try_from(request_id.as_str()).ok();
        match result {
            Ok(value) => {
                let mut response = Response::new(value);
                if let Some(id) = id {
                    response.metadata_mut().insert("x-request-id", id);
                }
                Ok(response)
            }
            Err(mut status) => {
                if let Some(id) = id {
                    status.metadata_mut().insert("x-request-id", id);
                }
                Err(status)
            }
        }
    }

    /// Takes one call from the caller's quota, if it has one.
    async fn check_quota(&self, caller: &Caller) -> Result<(), ServiceError> {
        match self.limits.check_quota(caller).await {
            Ok(()) => Ok(()),
            Err(LimitError::Exceeded(wait)) => Err(ServiceError::QuotaExceeded(wait)),
            Err(LimitError::Store(e)) => Err(e.into()),
        }
    }

    /// Sheds load: over the limit a request is refused at once, which keeps
    /// latency and memory bounded instead of queueing without limit.
    fn admit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        std::sync::Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy)
    }
}
