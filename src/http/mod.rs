//! The HTTP sidecar: turns a click on the confirmation link into a redirect,
//! publishes the access-token keys, serves profile images, and answers
//! liveness and readiness probes.

mod media;
mod serve;

pub use serve::{serve, MAX_HEAD_BYTES};

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::Semaphore;

use crate::auth::PasswordHasher;
use crate::media::MediaStore;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::service::{Accounts, ServiceError};
use crate::telemetry::error_chain;

#[derive(Clone)]
pub struct HttpState {
    pub accounts: Arc<Accounts>,
    pub metrics: Arc<Metrics>,
    /// Read for the hash-queue gauge.
    pub hasher: PasswordHasher,
    pub readiness: Arc<Readiness>,
    /// Where a successful confirmation lands.
    pub frontend_homepage: String,
    /// Where a failed confirmation lands, to ask for a new mail.
    pub confirmation_mail_request_page: String,
    /// Where a valid password reset link lands, with the token appended.
    pub password_reset_page: String,
    /// Where an invalid or expired password reset link lands.
    pub password_reset_request_page: String,
    /// Shared with the gRPC server: bounds the requests handled at once.
    pub admission: Arc<Semaphore>,
    /// The JWKS document of the access-token keys, served as it is.
    pub jwks: Bytes,
    /// Where profile images are read from for /media.
    pub media: MediaStore,
}

impl FromRef<HttpState> for MediaStore {
    fn from_ref(state: &HttpState) -> MediaStore {
        state.media.clone()
    }
}

impl HttpState {
    /// Runs the use case of a link once the database was reached; until
    /// then every link answers the same, before any of its work.
    async fn run<T>(
        &self,
        use_case: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        self.readiness.ensure_ready()?;
        use_case.await
    }
}

/// The sidecar: the confirmation link, profile images and the probes, and
/// /metrics unless it has a listener of its own (`serve_metrics` false).
pub fn router(state: HttpState, serve_metrics: bool) -> Router {
    let router = Router::new()
        .route("/account/confirm-registration/", get(confirm_registration))
        .route("/account/confirm-registration", get(confirm_registration))
        .route(
            "/account/confirm-email/",
            get(confirm_email).head(|| async { StatusCode::OK }),
        )
        .route(
            "/account/confirm-email",
            get(confirm_email).head(|| async { StatusCode::OK }),
        )
        .route("/account/reset-password/", get(reset_password))
        .route("/account/reset-password", get(reset_password))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .merge(media::routes());
    let router = if serve_metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router
        .layer(axum::middleware::from_fn(serve::trace_request))
        .layer(axum::middleware::from_fn(serve::limit_head))
        .with_state(state)
}

/// /metrics alone, for METRICS_ADDR: a port that shoppers never reach.
pub fn metrics_router(state: HttpState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(serve::limit_head))
        .with_state(state)
}

/// Over MAX_CONCURRENT_REQUESTS: refused at once, without touching the database.
fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "The service is busy. Please open the link again in a moment.\n",
    )
        .into_response()
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

/// The `token` query parameter, or an empty string.
fn token_of(query: Option<&str>) -> String {
    query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default()
}

/// The password reset link. It changes nothing (mail scanners follow
/// links): a genuine, unexpired token whose password is unchanged is handed
/// on to PASSWORD_RESET_PAGE, where the shopper chooses a password;
/// anything else lands on PASSWORD_RESET_REQUEST_PAGE.
async fn reset_password(State(state): State<HttpState>, RawQuery(query): RawQuery) -> Response {
    let Ok(_permit) = Arc::clone(&state.admission).try_acquire_owned() else {
        return busy();
    };
    let token = token_of(query.as_deref());
    match state.run(state.accounts.check_reset_token(&token)).await {
        Ok(_) => match url::Url::parse(&state.password_reset_page) {
            Ok(mut page) => {
                page.query_pairs_mut().append_pair("token", token.trim());
                tracing::info!(outcome = "valid", "password reset link");
                found(page.as_str())
            }
            Err(e) => {
                tracing::error!(error = %e, "PASSWORD_RESET_PAGE is not a URL");
                found(&state.password_reset_request_page)
            }
        },
        Err(ServiceError::ResetToken(e)) => {
            tracing::info!(outcome = e.reason(), "password reset link");
            found(&state.password_reset_request_page)
        }
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "password reset link failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The link could not be checked right now. Please open it again in a moment.\n",
            )
                .into_response()
        }
    }
}

/// The token comes from the query string only; nothing in the request can
/// change where the redirect goes.
async fn confirm_registration(
    State(state): State<HttpState>,
    RawQuery(query): RawQuery,
) -> Response {
    // The same bound as gRPC's: over it, refuse at once without touching
    // the database.
    let Ok(_permit) = Arc::clone(&state.admission).try_acquire_owned() else {
        state.metrics.count_http_confirmation("busy");
        return busy();
    };
    let token = token_of(query.as_deref());
    match state.run(state.accounts.confirm(&token)).await {
        Ok(_) => {
            tracing::info!(outcome = "confirmed", "confirmation link");
            state.metrics.count_http_confirmation("confirmed");
            found(&state.frontend_homepage)
        }
        Err(ServiceError::Token(e)) => {
            tracing::info!(outcome = e.reason(), "confirmation link");
            state.metrics.count_http_confirmation(e.reason());
            found(&state.confirmation_mail_request_page)
        }
        Err(ServiceError::Invalid(_)) => {
            tracing::info!(outcome = "TOKEN_INVALID", "confirmation link");
            state.metrics.count_http_confirmation("TOKEN_INVALID");
            found(&state.confirmation_mail_request_page)
        }
        Err(ServiceError::NotFound) => {
            tracing::info!(outcome = "ACCOUNT_NOT_FOUND", "confirmation link");
            state.metrics.count_http_confirmation("ACCOUNT_NOT_FOUND");
            found(&state.confirmation_mail_request_page)
        }
        Err(e) => {
            state.metrics.count_http_confirmation("error");
            tracing::error!(error = %error_chain(&e), "confirmation link failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "The confirmation could not be completed right now. Please open the link again in a moment.\n",
            )
                .into_response()
        }
    }
}

/// The link sent to a new address: moves the account to it (idempotent),
/// then lands on FRONTEND_HOMEPAGE; a bad, expired or spent token, or an
/// address taken meanwhile, lands on CONFIRMATION_MAIL_REQUEST_PAGE. HEAD
/// (link previews, some mail scanners) does nothing.
async fn confirm_email(State(state): State<HttpState>, RawQuery(query): RawQuery) -> Response {
    let Ok(_permit) = Arc::clone(&state.admission).try_acquire_owned() else {
        return busy();
    };
    let token = token_of(query.as_deref());
    let outcome = match state.run(state.accounts.confirm_email_change(&token)).await {
        Ok(_) => Ok("changed"),
        Err(ServiceError::Token(e)) => Err(e.reason()),
        Err(ServiceError::Invalid(_)) => Err("TOKEN_INVALID"),
        Err(ServiceError::NotFound) => Err("ACCOUNT_NOT_FOUND"),
        Err(ServiceError::EmailTaken) => Err("EMAIL_TAKEN"),
        Err(e) => {
            tracing::error!(error = %error_chain(&e), "e-mail change link failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The change could not be completed right now. Please open the link again in a moment.\n",
            )
                .into_response();
        }
    };
    match outcome {
        Ok(outcome) => {
            tracing::info!(outcome, "e-mail change link");
            found(&state.frontend_homepage)
        }
        Err(outcome) => {
            tracing::info!(outcome, "e-mail change link");
            found(&state.confirmation_mail_request_page)
        }
    }
}

/// Prometheus text exposition. The hash-queue gauge and the hash counter are
/// read now; the outbox
/// gauges come from the snapshot that a background task refreshes every
/// METRICS_REFRESH, so a scrape never queries the database.
async fn metrics(State(state): State<HttpState>) -> Response {
    let metrics = state.metrics;
    metrics
        .hash_queue
        .set(i64::try_from(state.hasher.queued()).unwrap_or(i64::MAX));
    metrics.set_password_hashes(state.hasher.computed());
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The public keys of access tokens, for services that verify them offline.
/// Keys need no database, so they are served before readiness. Caches may
/// keep them five minutes: after a SECRET_KEY rotation, tokens under the new
/// key id send verifiers with an older copy back for a fresh one.
async fn jwks(State(state): State<HttpState>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.jwks,
    )
        .into_response()
}

async fn ready(State(state): State<HttpState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}
