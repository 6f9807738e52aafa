//! Serves the sidecar over HTTP/1.1 with bounded request heads and a timeout
//! for slow or idle clients, and drains connections on shutdown.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Longest request line, and largest set of headers, the sidecar accepts.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// hyper's read buffer: heads beyond it are refused by hyper itself (431).
const READ_BUFFER_BYTES: usize = 2 * MAX_HEAD_BYTES;

/// Refuses request lines (414) and header sets (431) over [`MAX_HEAD_BYTES`].
pub async fn limit_head(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if target > MAX_HEAD_BYTES {
        return (StatusCode::URI_TOO_LONG, "Request line too long.\n").into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEAD_BYTES {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request headers too large.\n",
        )
            .into_response();
    }
    next.run(request).await
}

/// Runs a request inside a span of its own that continues the caller's
/// trace (`traceparent`), named by its path only: queries carry tokens.
pub async fn trace_request(request: Request, next: Next) -> Response {
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        path = %request.uri().path(),
        trace_id = tracing::field::Empty,
    );
    let trace_id = crate::telemetry::continue_trace(&span, request.headers());
    span.record("trace_id", trace_id.as_str());
    tracing::Instrument::instrument(next.run(request), span).await
}

/// Accepts connections until `shutdown` completes, then waits up to `grace`
/// for open connections to finish their requests.
///
/// `head_timeout` bounds how long a client may take to send a request head,
/// and how long a kept-alive connection may sit idle: a slow or silent
/// client cannot hold a connection open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    head_timeout: Duration,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            stream = crate::net::accept(&listener, "HTTP") => {
                let connection = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(head_timeout)
                    .max_buf_size(READ_BUFFER_BYTES)
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("HTTP connections still open after the shutdown grace period; closing them");
        }
    }
}
