//! The tonic service: proto <-> domain translation and RPC logging, nothing else.

// tonic's handler signatures return `Result<_, Status>`; Status is large by design.
#![allow(clippy::result_large_err)]

pub mod codec;
mod status;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::{Account, RegistrationForm, ValidationErrors};
use crate::limits::RateLimits;
use crate::proto::account::v1 as pb;
use crate::proto::account::v1::account_service_server::AccountService;
use crate::service::{Accounts, Lookup, ServiceError};

pub use pb::account_service_server::AccountServiceServer;
pub use status::to_status;

/// Largest request message accepted; every valid request is far smaller.
/// Larger ones are refused before they are decoded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub struct AccountGrpc {
    accounts: Arc<Accounts>,
    admission: Arc<Semaphore>,
    limits: Arc<RateLimits>,
}

impl AccountGrpc {
    /// `admission` bounds the RPCs handled at once; it is shared with the
    /// HTTP sidecar, so the bound covers the whole process.
    pub fn new(
        accounts: Arc<Accounts>,
        admission: Arc<Semaphore>,
        limits: Arc<RateLimits>,
    ) -> Self {
        AccountGrpc {
            accounts,
            admission,
            limits,
        }
    }

    /// Applies the abuse limits of the calls that create accounts or send
    /// mail, to the client (peer, or forwarded-for hop behind a trusted
    /// proxy) and to the target address.
    fn check_limits<T>(&self, request: &Request<T>, email: &str) -> Result<(), ServiceError> {
        let forwarded = request
            .metadata()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let client = self.limits.client_address(request.remote_addr(), forwarded);
        self.limits
            .check(client, email)
            .map_err(ServiceError::RateLimited)
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

fn to_proto(a: Account) -> pb::Account {
    let ts = |t: chrono::DateTime<chrono::Utc>| prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
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

impl AccountGrpc {
    /// Runs one RPC inside a span carrying its request id, then logs it as
    /// one event (method, status code, latency), records its metrics, maps
    /// its error to a status and returns the request id in `x-request-id`.
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
        let started = Instant::now();
        let request_id = request_id(request.metadata());
        let span = tracing::info_span!("rpc", method, request_id = %request_id);
        let result = async {
            let _permit = self.admit()?;
            call(request).await
        }
        .instrument(span.clone())
        .await;
        let latency = started.elapsed();
        let result = result.map_err(|e| span.in_scope(|| to_status(&e)));
        let code = match &result {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        };
        span.in_scope(|| {
            tracing::info!(method, code = ?code, latency_ms = latency.as_secs_f64() * 1000.0, "rpc");
        });
        self.accounts.metrics().observe_rpc(method, code, latency);
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
            self.check_limits(&request, &request.get_ref().email)?;
            let account = self.accounts.register(request.into_inner().into()).await?;
            Ok(pb::RegisterResponse {
                account: Some(to_proto(account)),
            })
        })
        .await
    }

    async fn confirm_registration(
        &self,
        request: Request<pb::ConfirmRegistrationRequest>,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        self.handle("ConfirmRegistration", request, |request| async move {
            let account = self.accounts.confirm(&request.into_inner().token).await?;
            Ok(pb::ConfirmRegistrationResponse {
                account: Some(to_proto(account)),
            })
        })
        .await
    }

    async fn resend_confirmation(
        &self,
        request: Request<pb::ResendConfirmationRequest>,
    ) -> Result<Response<pb::ResendConfirmationResponse>, Status> {
        self.handle("ResendConfirmation", request, |request| async move {
            self.check_limits(&request, &request.get_ref().email)?;
            self.accounts
                .resend_confirmation(&request.into_inner().email)
                .await?;
            Ok(pb::ResendConfirmationResponse {})
        })
        .await
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        self.handle("GetAccount", request, |request| async move {
            let lookup = match request.into_inner().lookup {
                Some(pb::get_account_request::Lookup::Id(id)) => Lookup::Id(id),
                Some(pb::get_account_request::Lookup::Email(email)) => Lookup::Email(email),
                None => {
                    return Err(ServiceError::Invalid(ValidationErrors::single(
                        "lookup",
                        "Either id or email is required.",
                    )))
                }
            };
            let account = self.accounts.get(lookup).await?;
            Ok(pb::GetAccountResponse {
                account: Some(to_proto(account)),
            })
        })
        .await
    }
}
