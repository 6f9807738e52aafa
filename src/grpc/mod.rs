//! The tonic service: proto <-> domain translation and RPC logging, nothing else.

// tonic's handler signatures return `Result<_, Status>`; Status is large by design.
#![allow(clippy::result_large_err)]

pub mod codec;
mod status;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Request, Response, Status};

use crate::domain::{Account, RegistrationForm};
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

/// Logs one RPC (method, status code, latency) and maps its error to a status.
fn finish<T>(
    method: &'static str,
    started: Instant,
    result: Result<T, ServiceError>,
) -> Result<Response<T>, Status> {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let result = result.map_err(|e| to_status(&e));
    let code = match &result {
        Ok(_) => tonic::Code::Ok,
        Err(status) => status.code(),
    };
    tracing::info!(method, code = ?code, latency_ms, "rpc");
    result.map(Response::new)
}

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let started = Instant::now();
        let Ok(_permit) = self.admit() else {
            return finish("Register", started, Err(ServiceError::Busy));
        };
        if let Err(e) = self.check_limits(&request, &request.get_ref().email) {
            return finish("Register", started, Err(e));
        }
        let result = self
            .accounts
            .register(request.into_inner().into())
            .await
            .map(|a| pb::RegisterResponse {
                account: Some(to_proto(a)),
            });
        finish("Register", started, result)
    }

    async fn confirm_registration(
        &self,
        request: Request<pb::ConfirmRegistrationRequest>,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        let started = Instant::now();
        let Ok(_permit) = self.admit() else {
            return finish("ConfirmRegistration", started, Err(ServiceError::Busy));
        };
        let result = self
            .accounts
            .confirm(&request.into_inner().token)
            .await
            .map(|a| pb::ConfirmRegistrationResponse {
                account: Some(to_proto(a)),
            });
        finish("ConfirmRegistration", started, result)
    }

    async fn resend_confirmation(
        &self,
        request: Request<pb::ResendConfirmationRequest>,
    ) -> Result<Response<pb::ResendConfirmationResponse>, Status> {
        let started = Instant::now();
        let Ok(_permit) = self.admit() else {
            return finish("ResendConfirmation", started, Err(ServiceError::Busy));
        };
        if let Err(e) = self.check_limits(&request, &request.get_ref().email) {
            return finish("ResendConfirmation", started, Err(e));
        }
        let result = self
            .accounts
            .resend_confirmation(&request.into_inner().email)
            .await
            .map(|()| pb::ResendConfirmationResponse {});
        finish("ResendConfirmation", started, result)
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let started = Instant::now();
        let Ok(_permit) = self.admit() else {
            return finish("GetAccount", started, Err(ServiceError::Busy));
        };
        let result = match request.into_inner().lookup {
            Some(pb::get_account_request::Lookup::Id(id)) => {
                self.accounts.get(Lookup::Id(id)).await
            }
            Some(pb::get_account_request::Lookup::Email(email)) => {
                self.accounts.get(Lookup::Email(email)).await
            }
            None => Err(ServiceError::Invalid(
                crate::domain::ValidationErrors::single(
                    "lookup",
                    "Either id or email is required.",
                ),
            )),
        }
        .map(|a| pb::GetAccountResponse {
            account: Some(to_proto(a)),
        });
        finish("GetAccount", started, result)
    }
}
