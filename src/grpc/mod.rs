//! The tonic service: each RPC's handler, from its request to the use case
//! and back. What every call goes through is in `call`, the conversions in
//! `convert`.

// tonic's handler signatures return `Result<_, Status>`; Status is large by design.
#![allow(clippy::result_large_err)]

mod call;
pub mod codec;
mod convert;
mod message_limit;
mod profile_images;
mod second_factor;
mod serve;
mod sessions;
mod status;
mod watch;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::access::{self, Access, Caller};
use crate::domain::{
    parse_new_password, parse_session_id, Email, NewAccount, ProfileChanges, ProfileForm,
    ValidationErrors,
};
use crate::limits::{AddressBucket, LimitError, RateLimits};
use crate::metrics::Metrics;
use crate::net::PeerInfo;
use crate::proto::account::v1 as pb;
use crate::proto::account::v1::account_service_server::AccountService;
use crate::readiness::Readiness;
use crate::service::{
    parse_credentials, parse_deletion, parse_email, parse_email_change, parse_password_change,
    Accounts, Lookup, ServiceError,
};

pub use pb::account_service_server::AccountServiceServer;
pub use serve::{serve, ConnectionLimits, GrpcSecurity, GrpcServer, Health};
pub use status::{access_status, to_status, ERROR_DOMAIN};

/// Largest request message accepted; every valid request is far smaller.
/// Larger ones are refused from their length prefix, before they are read
/// (see `message_limit`).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Largest answer sent. ListSessions at SESSIONS_PER_ACCOUNT's ceiling
/// (10,000 sessions, each with a user agent of 512 characters of up to four
/// bytes) is about 22 MB; every other answer is far smaller.
pub const MAX_ANSWER_BYTES: usize = 32 * 1024 * 1024;

/// Longest a single RPC may run before it is cancelled.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct AccountGrpc {
    accounts: Arc<Accounts>,
    metrics: Arc<Metrics>,
    admission: Arc<Semaphore>,
    limits: Arc<RateLimits>,
    access: Arc<Access>,
    readiness: Arc<Readiness>,
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
        readiness: Arc<Readiness>,
    ) -> Self {
        AccountGrpc {
            accounts,
            metrics,
            admission,
            limits,
            access,
            readiness,
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
            .max_encoding_message_size(MAX_ANSWER_BYTES)
    }
}

/// Whether the caller may delete an account without its password.
fn is_admin<T>(request: &Request<T>) -> bool {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .is_some_and(|c| c.scopes.grant(access::Scope::AccountsAdmin))
}

#[tonic::async_trait]
impl AccountService for AccountGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        self.handle(request, |request| async move {
            let client = self.client(&request);
            let new =
                NewAccount::parse(request.into_inner().into()).map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::Register, &new.email)
                .await?;
            let account = self.accounts.register(new).await?;
            Ok(pb::RegisterResponse {
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn confirm_registration(
        &self,
        request: Request<pb::ConfirmRegistrationRequest>,
    ) -> Result<Response<pb::ConfirmRegistrationResponse>, Status> {
        self.handle(request, |request| async move {
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
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn resend_confirmation(
        &self,
        request: Request<pb::ResendConfirmationRequest>,
    ) -> Result<Response<pb::ResendConfirmationResponse>, Status> {
        self.handle(request, |request| async move {
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
        self.handle(request, |request| async move {
            let request = request.into_inner();
            let (email, password) = parse_credentials(&request.email, &request.password)
                .map_err(ServiceError::Invalid)?;
            let account = self.accounts.check_password(&email, password).await?;
            Ok(pb::CheckPasswordResponse {
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        self.handle(request, |request| async move {
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
        self.handle(request, |request| async move {
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
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        self.handle(request, |request| async move {
            let r = request.into_inner();
            let change =
                parse_password_change(&r.id, &r.current_password, &r.password, &r.confirm_password);
            let keep = parse_session_id("keep_session_id", &r.keep_session_id, true);
            let ((id, current, new), keep) = match (change, keep) {
                (Ok(change), Ok(keep)) => (change, keep),
                (change, keep) => {
                    let mut errors = ValidationErrors(Vec::new());
                    errors.0.extend(change.err().into_iter().flat_map(|e| e.0));
                    errors.0.extend(keep.err().into_iter().flat_map(|e| e.0));
                    return Err(ServiceError::Invalid(errors));
                }
            };
            let account = self
                .accounts
                .change_password(id, current, new, keep)
                .await?;
            Ok(pb::ChangePasswordResponse {
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn update_profile(
        &self,
        request: Request<pb::UpdateProfileRequest>,
    ) -> Result<Response<pb::UpdateProfileResponse>, Status> {
        self.handle(request, |request| async move {
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
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn change_email(
        &self,
        request: Request<pb::ChangeEmailRequest>,
    ) -> Result<Response<pb::ChangeEmailResponse>, Status> {
        self.handle(request, |request| async move {
            let client = self.client(&request);
            let r = request.into_inner();
            let (id, email, password) =
                parse_email_change(&r.id, &r.new_email, &r.current_password)
                    .map_err(ServiceError::Invalid)?;
            self.check_limits(client, AddressBucket::EmailChange, &email)
                .await?;
            self.accounts
                .change_email(id, &email, password, &r.code)
                .await?;
            Ok(pb::ChangeEmailResponse {})
        })
        .await
    }

    async fn confirm_email_change(
        &self,
        request: Request<pb::ConfirmEmailChangeRequest>,
    ) -> Result<Response<pb::ConfirmEmailChangeResponse>, Status> {
        self.handle(request, |request| async move {
            let account = self
                .accounts
                .confirm_email_change(&request.into_inner().token)
                .await?;
            Ok(pb::ConfirmEmailChangeResponse {
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn delete_account(
        &self,
        request: Request<pb::DeleteAccountRequest>,
    ) -> Result<Response<pb::DeleteAccountResponse>, Status> {
        self.handle(request, |request| async move {
            let admin = is_admin(&request);
            let r = request.into_inner();
            let (id, password) =
                parse_deletion(&r.id, &r.current_password, admin).map_err(ServiceError::Invalid)?;
            self.accounts.delete_account(id, password, &r.code).await?;
            Ok(pb::DeleteAccountResponse {})
        })
        .await
    }

    type WatchAccountEventsStream = watch::EventStream;

    async fn watch_account_events(
        &self,
        request: Request<pb::WatchAccountEventsRequest>,
    ) -> Result<Response<Self::WatchAccountEventsStream>, Status> {
        self.handle(request, |request| async move { self.watch(request) })
            .await
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.handle(request, |request| async move {
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
                    .map(|a| self.account_to_proto(a))
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
        self.handle(request, |request| async move {
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
                account: Some(self.account_to_proto(account)),
            })
        })
        .await
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        self.handle(request, |request| self.sign_in_call(request))
            .await
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<Response<pb::RefreshSessionResponse>, Status> {
        self.handle(request, |request| self.refresh_session_call(request))
            .await
    }

    async fn sign_out(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<Response<pb::SignOutResponse>, Status> {
        self.handle(request, |request| self.sign_out_call(request))
            .await
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        self.handle(request, |request| self.list_sessions_call(request))
            .await
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<Response<pb::RevokeSessionResponse>, Status> {
        self.handle(request, |request| self.revoke_session_call(request))
            .await
    }

    async fn revoke_all_sessions(
        &self,
        request: Request<pb::RevokeAllSessionsRequest>,
    ) -> Result<Response<pb::RevokeAllSessionsResponse>, Status> {
        self.handle(request, |request| self.revoke_all_sessions_call(request))
            .await
    }

    async fn verify_access_token(
        &self,
        request: Request<pb::VerifyAccessTokenRequest>,
    ) -> Result<Response<pb::VerifyAccessTokenResponse>, Status> {
        self.handle(request, |request| self.verify_access_token_call(request))
            .await
    }

    async fn start_totp_enrollment(
        &self,
        request: Request<pb::StartTotpEnrollmentRequest>,
    ) -> Result<Response<pb::StartTotpEnrollmentResponse>, Status> {
        self.handle(request, |request| self.start_totp_enrollment_call(request))
            .await
    }

    async fn confirm_totp_enrollment(
        &self,
        request: Request<pb::ConfirmTotpEnrollmentRequest>,
    ) -> Result<Response<pb::ConfirmTotpEnrollmentResponse>, Status> {
        self.handle(request, |request| {
            self.confirm_totp_enrollment_call(request)
        })
        .await
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Result<Response<pb::DisableTotpResponse>, Status> {
        self.handle(request, |request| self.disable_totp_call(request))
            .await
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<pb::RegenerateRecoveryCodesResponse>, Status> {
        self.handle(request, |request| {
            self.regenerate_recovery_codes_call(request)
        })
        .await
    }

    async fn complete_sign_in(
        &self,
        request: Request<pb::CompleteSignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        self.handle(request, |request| self.complete_sign_in_call(request))
            .await
    }

    async fn set_profile_image(
        &self,
        request: Request<tonic::Streaming<pb::SetProfileImageRequest>>,
    ) -> Result<Response<pb::SetProfileImageResponse>, Status> {
        self.handle(request, |request| self.set_profile_image_call(request))
            .await
    }

    async fn remove_profile_image(
        &self,
        request: Request<pb::RemoveProfileImageRequest>,
    ) -> Result<Response<pb::RemoveProfileImageResponse>, Status> {
        self.handle(request, |request| self.remove_profile_image_call(request))
            .await
    }
}
