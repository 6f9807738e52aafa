//! The tonic service: proto <-> domain translation and RPC logging, nothing else.

// tonic's handler signatures return `Result<_, Status>`; Status is large by design.
#![allow(clippy::result_large_err)]

pub mod codec;
mod serve;
mod status;
mod watch;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use crate::access::{self, Access, Caller};
use crate::domain::{
    parse_new_password, Account, Email, NewAccount, ProfileChanges, ProfileForm, RegistrationForm,
    ValidationErrors,
};
use crate::limits::{AddressBucket, LimitError, RateLimits};
use crate::metrics::Metrics;
use crate::net::PeerInfo;
use crate::proto::account::v1 as pb;
use crate::proto::account::v1::account_service_server::AccountService;
use crate::service::{
    parse_credentials, parse_deletion, parse_email, parse_email_change, parse_password_change,
    Accounts, Lookup, ServiceError,
};

pub use pb::account_service_server::AccountServiceServer;
pub use serve::{serve, ConnectionLimits, GrpcSecurity, GrpcServer, Health};
pub use status::{access_status, to_status, ERROR_DOMAIN};

/// Largest request message accepted; every valid request is far smaller.
/// Larger ones are refused before they are decoded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Longest a single RPC may run before it is cancelled.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct AccountGrpc {
    accounts: Arc<Accounts>,
    metrics: Arc<Metrics>,
    admission: Arc<Semaphore>,
    limits: Arc<RateLimits>,
    access: Arc<Access>,
}

impl AccountGrpc {
    /// `admission` bounds the RPCs handled at once; it is shared with the
    /// HTTP sidecar, so the bound covers the whole process.
    pub fn new(
        accounts: Arc<Accounts>,
        metrics: Arc<Metrics>,
        admission: Arc<Semaphore>,
        limits: Arc<RateLimits>,
        access: Arc<Access>,
    ) -> Self {
        AccountGrpc {
            accounts,
            metrics,
            admission,
            limits,
            access,
        }
    }

    /// Applies the abuse limits of the calls that create accounts or send
    /// mail, to the client (peer, or forwarded-for hop behind a trusted
    /// proxy) and to the target address. Only a parsed address reaches the
    /// limiter: invalid input is refused before it.
    async fn check_limits(
        &self,
        client: Option<IpAddr>,
        bucket: AddressBucket,
        email: &Email,
    ) -> Result<(), ServiceError> {
        match self.limits.check(client, Some((bucket, email))).await {
            Ok(()) => Ok(()),
            Err(LimitError::Exceeded(wait)) => Err(ServiceError::RateLimited(wait)),
            Err(LimitError::Store(e)) => Err(e.into()),
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

    /// The client a request is accounted to (see [`RateLimits::client_address`]).
    fn client<T>(&self, request: &Request<T>) -> Option<IpAddr> {
        let forwarded = request
            .metadata()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        let peer = request
            .extensions()
            .get::<PeerInfo>()
            .and_then(|p| p.remote);
        self.limits.client_address(peer, forwarded)
    }

    pub fn into_server(self) -> AccountServiceServer<Self> {
        AccountServiceServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Sheds load: over the limit a request is refused at once, which keeps
    /// latency and memory bounded instead of queueing without limit.
    fn admit(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy)
    }
}

/// tonic refuses a message over the size limit with OUT_OF_RANGE; gRPC's
/// status-code table gives RESOURCE_EXHAUSTED for exactly that case, so the
/// answer is rewritten on its way out (it is a headers-only response).
pub fn oversized_as_resource_exhausted<B>(
    mut response: tonic::codegen::http::Response<B>,
) -> tonic::codegen::http::Response<B> {
    let headers = response.headers_mut();
    let too_large = headers.get("grpc-status").map(|v| v.as_bytes()) == Some(b"11")
        && headers.get("grpc-message").is_some_and(|m| {
            let m = m.as_bytes();
            m.windows(5).any(|w| w == b"large") && m.starts_with(b"Error,")
        });
    if too_large {
        headers.insert(
            "grpc-status",
            tonic::codegen::http::HeaderValue::from_static("8"),
        );
        headers.insert(
            "grpc-message",
            tonic::codegen::http::HeaderValue::from_static(
                "request%20message%20larger%20than%2065536%20bytes",
            ),
        );
    }
    response
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

impl pb::ConfirmRegistrationRequest {
    /// A confirmation with the token of a link.
    pub fn with_token(token: impl Into<String>) -> Self {
        pb::ConfirmRegistrationRequest {
            proof: Some(pb::confirm_registration_request::Proof::Token(token.into())),
        }
    }
}

/// Whether the caller may delete an account without its password.
fn is_admin<T>(request: &Request<T>) -> bool {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .is_some_and(|c| c.scopes.grant(access::Scope::AccountsAdmin))
}

/// An account as the API shows it; `default_locale` stands in for an
/// account that never chose one.
fn to_proto(a: Account, default_locale: &str) -> pb::Account {
    let ts = timestamp;
    let locale = if a.locale.is_empty() {
        default_locale.to_owned()
    } else {
        a.locale
    };
    pb::Account {
        id: a.id.to_string(),
        email: a.email,
        username: a.username,
        first_name: a.first_name,
        last_name: a.last_name,
        phone_number: a.phone_number,
        address: a.address,
        verified: a.verified,
        term_and_condition: a.term_and_condition,
        created_from: a.created_from,
        created_at: Some(ts(a.created_at)),
        updated_at: Some(ts(a.updated_at)),
        locale,
    }
}

impl From<pb::RegisterRequest> for RegistrationForm {
    fn from(r: pb::RegisterRequest) -> Self {
        RegistrationForm {
            email: r.email,
            username: r.username,
            password: r.password,
            confirm_password: r.confirm_password,
            term_and_condition: r.term_and_condition,
            address: r.address,
            first_name: r.first_name,
            last_name: r.last_name,
            phone_number: r.phone_number,
            created_from: r.created_from,
            locale: r.locale,
        }
    }
}

/// The caller's `x-request-id` when it is a sane token, else a new one.
fn request_id(metadata: &tonic::metadata::MetadataMap) -> String {
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
fn client_deadline(metadata: &tonic::metadata::MetadataMap) -> Option<Duration> {
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
    /// Runs one RPC, if its caller may make it, inside a span carrying its
    /// request id and caller, then logs it as one event (method, status
    /// code, latency), records its metrics, maps its error to a status and
    /// returns the request id in `x-request-id`.
    async fn handle<Req, T, F, Fut>(
        &self,
        method: &'static str,
        request: Request<Req>,
        call: F,
    ) -> Result<Response<T>, Status>
    where
        F: FnOnce(Request<Req>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ServiceError>>,
    {
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
        let span = tracing::info_span!("rpc", method, request_id = %request_id, caller = %name);
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
}

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        self.handle("Register", request, |request| async move {
            let client = self.client(&request);
            let new =
                NewAccount::parse(request.into_inner().into()).map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::Register, &new.email)
                .await?;
            let account = self.accounts.register(new).await?;
            Ok(pb::RegisterResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn confirm_registration(
        &self,
        request: Request<pb::ConfirmRegistrationRequest>,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        self.handle("ConfirmRegistration", request, |request| async move {
            use pb::confirm_registration_request::Proof;
            let client = self.client(&request);
            let account = match request.into_inner().proof {
                Some(Proof::Token(token)) => self.accounts.confirm(&token).await?,
                Some(Proof::EmailCode(proof)) => {
                    let email = parse_email(&proof.email).map_err(|mut e| {
                        for v in &mut e.0 {
                            v.field = "email_code.email";
                        }
                        ServiceError::Invalid(e)
                    })?;
                    self.check_limits(client, AddressBucket::ConfirmCode, &email)
                        .await?;
                    self.accounts.confirm_code(&email, &proof.code).await?
                }
                None => return Err(ServiceError::Token(crate::auth::TokenError::Missing)),
            };
            Ok(pb::ConfirmRegistrationResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn resend_confirmation(
        &self,
        request: Request<pb::ResendConfirmationRequest>,
    ) -> Result<Response<pb::ResendConfirmationResponse>, Status> {
        self.handle("ResendConfirmation", request, |request| async move {
            let client = self.client(&request);
            let email = parse_email(&request.get_ref().email).map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::ResendConfirmation, &email)
                .await?;
            self.accounts.resend_confirmation(&email).await?;
            Ok(pb::ResendConfirmationResponse {})
        })
        .await
    }

    async fn check_password(
        &self,
        request: Request<pb::CheckPasswordRequest>,
    ) -> Result<Response<pb::CheckPasswordResponse>, Status> {
        self.handle("CheckPassword", request, |request| async move {
            let request = request.into_inner();
            let (email, password) = parse_credentials(&request.email, &request.password)
                .map_err(ServiceError::Invalid)?;
            let account = self.accounts.check_password(&email, password).await?;
            Ok(pb::CheckPasswordResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        self.handle("RequestPasswordReset", request, |request| async move {
            let client = self.client(&request);
            let email = parse_email(&request.get_ref().email).map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::PasswordReset, &email)
                .await?;
            self.accounts.request_password_reset(&email).await?;
            Ok(pb::RequestPasswordResetResponse {})
        })
        .await
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        self.handle("ResetPassword", request, |request| async move {
            let request = request.into_inner();
            if request.token.trim().is_empty() {
                return Err(ServiceError::ResetToken(crate::auth::TokenError::Missing));
            }
            let password = parse_new_password(&request.password, &request.confirm_password)
                .map_err(ServiceError::Invalid)?;
            let account = self
                .accounts
                .reset_password(&request.token, password)
                .await?;
            Ok(pb::ResetPasswordResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        self.handle("ChangePassword", request, |request| async move {
            let r = request.into_inner();
            let (id, current, new) =
                parse_password_change(&r.id, &r.current_password, &r.password, &r.confirm_password)
                    .map_err(ServiceError::Invalid)?;
            let account = self.accounts.change_password(id, current, new).await?;
            Ok(pb::ChangePasswordResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        self.handle("UpdateProfile", request, |request| async move {
            let r = request.into_inner();
            let id = Lookup::id(&r.id);
            let paths = r.update_mask.map(|m| m.paths);
            let changes = ProfileChanges::parse(
                paths.as_deref(),
                ProfileForm {
                    username: r.username,
                    first_name: r.first_name,
                    last_name: r.last_name,
                    phone_number: r.phone_number,
                    address: r.address,
                    locale: r.locale,
                },
            );
            let (id, changes) = match (id, changes) {
                (Ok(Lookup::Id(id)), Ok(changes)) => (id, changes),
                (id, changes) => {
                    let mut errors = ValidationErrors(Vec::new());
                    if let Err(e) = id {
                        errors.0.extend(e.0);
                    }
                    if let Err(e) = changes {
                        errors.0.extend(e.0);
                    }
                    return Err(ServiceError::Invalid(errors));
                }
            };
            let account = self.accounts.update_profile(id, changes).await?;
            Ok(pb::UpdateProfileResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn change_email(
        &self,
        request: Request<pb::ChangeEmailRequest>,
    ) -> Result<Response<pb::ChangeEmailResponse>, Status> {
        self.handle("ChangeEmail", request, |request| async move {
            let client = self.client(&request);
            let r = request.into_inner();
            let (id, email, password) =
                parse_email_change(&r.id, &r.new_email, &r.current_password)
                    .map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::EmailChange, &email)
                .await?;
            self.accounts.change_email(id, &email, password).await?;
            Ok(pb::ChangeEmailResponse {})
        })
        .await
    }

    async fn confirm_email_change(
        &self,
        request: Request<pb::ConfirmEmailChangeRequest>,
    ) -> Result<Response<pb::ConfirmEmailChangeResponse>, Status> {
        self.handle("ConfirmEmailChange", request, |request| async move {
            let account = self
                .accounts
                .confirm_email_change(&request.into_inner().token)
                .await?;
            Ok(pb::ConfirmEmailChangeResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        self.handle("DeleteAccount", request, |request| async move {
            let admin = is_admin(&request);
            let r = request.into_inner();
            let (id, password) =
                parse_deletion(&r.id, &r.current_password, admin).map_err(ServiceError::Invalid)?;
            self.accounts.delete_account(id, password).await?;
            Ok(pb::DeleteAccountResponse {})
        })
        .await
    }

    type WatchAccountEventsStream = watch::EventStream;

    async fn watch_account_events(
        &self,
        request: Request<pb::WatchAccountEventsRequest>,
    ) -> Result<Response<Self::WatchAccountEventsStream>, Status> {
        self.handle("WatchAccountEvents", request, |request| async move {
            self.watch(request)
        })
        .await
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.handle("ListAccounts", request, |request| async move {
            let r = request.into_inner();
            let query = self
                .accounts
                .parse_list_query(r.page_size, &r.page_token, &r.email_prefix, r.verified)
                .map_err(ServiceError::Invalid)?;
            let page = self.accounts.list(query).await?;
            Ok(pb::ListAccountsResponse {
                accounts: page
                    .accounts
                    .into_iter()
                    .map(|a| to_proto(a, self.accounts.default_locale()))
                    .collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        self.handle("GetAccount", request, |request| async move {
            let lookup = match request.into_inner().lookup {
                Some(pb::get_account_request::Lookup::Id(id)) => Lookup::id(&id),
                Some(pb::get_account_request::Lookup::Email(email)) => Lookup::email(&email),
                None => {
                    return Err(ServiceError::Invalid(ValidationErrors::single(
                        "lookup",
                        "Either id or email is required.",
                    )))
                }
            }
            .map_err(ServiceError::Invalid)?;
            let account = self.accounts.get(lookup).await?;
            Ok(pb::GetAccountResponse {
                account: Some(to_proto(account, self.accounts.default_locale())),
            })
        })
        .await
    }
}
