//! What a use case can fail with, and the messages clients show shoppers.

use crate::access::AccessError;
use crate::auth::{HashError, TokenError};
use crate::domain::{self, ValidationErrors};
use crate::mail::TemplateError;
use crate::storage::StorageError;

/// Why a confirmation code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("the confirmation code is invalid")]
    Invalid,
    #[error("the confirmation code has expired; ask for a new mail")]
    Expired,
    #[error("too many wrong confirmation codes; ask for a new mail")]
    Exhausted,
}

impl CodeError {
    /// The `google.rpc.ErrorInfo` reason clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            CodeError::Invalid => "CODE_INVALID",
            CodeError::Expired => "CODE_EXPIRED",
            CodeError::Exhausted => "CODE_EXHAUSTED",
        }
    }
}

/// Why a session call was refused: all mean "sign in again", told apart so
/// that a client can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("The refresh token is invalid.")]
    RefreshTokenInvalid,
    #[error("The refresh token was already used; the session has ended.")]
    RefreshTokenReused,
    #[error("The session has expired.")]
    SessionExpired,
    #[error("The access token is invalid.")]
    AccessTokenInvalid,
    #[error("The access token has expired.")]
    AccessTokenExpired,
    #[error("The session has ended.")]
    SessionRevoked,
}

impl SessionError {
    /// The `google.rpc.ErrorInfo` reason clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            SessionError::RefreshTokenInvalid => "REFRESH_TOKEN_INVALID",
            SessionError::RefreshTokenReused => "REFRESH_TOKEN_REUSED",
            SessionError::SessionExpired => "SESSION_EXPIRED",
            SessionError::AccessTokenInvalid => "ACCESS_TOKEN_INVALID",
            SessionError::AccessTokenExpired => "ACCESS_TOKEN_EXPIRED",
            SessionError::SessionRevoked => "SESSION_REVOKED",
        }
    }
}

/// Why a second factor, or a step towards one, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecondFactorError {
    /// A wrong, reused or malformed code where one guards a call.
    #[error("The two-step verification code is invalid.")]
    Invalid,
    /// A wrong code for a pending enrolment: the request is what is wrong.
    #[error("The two-step verification code is invalid.")]
    EnrollmentCodeInvalid,
    #[error("Two-step sign-in has not been started; start the enrolment first.")]
    NotStarted,
    #[error("Two-step sign-in is already turned on.")]
    AlreadyEnabled,
    #[error("Two-step sign-in is not turned on.")]
    NotEnabled,
    #[error("The sign-in challenge is invalid; sign in again.")]
    ChallengeInvalid,
    #[error("The sign-in challenge has expired; sign in again.")]
    ChallengeExpired,
}

impl SecondFactorError {
    /// The `google.rpc.ErrorInfo` reason clients match on.
    pub fn reason(self) -> &'static str {
        match self {
            SecondFactorError::Invalid | SecondFactorError::EnrollmentCodeInvalid => {
                "SECOND_FACTOR_INVALID"
            }
            SecondFactorError::NotStarted => "SECOND_FACTOR_NOT_STARTED",
            SecondFactorError::AlreadyEnabled => "SECOND_FACTOR_ALREADY_ENABLED",
            SecondFactorError::NotEnabled => "SECOND_FACTOR_NOT_ENABLED",
            SecondFactorError::ChallengeInvalid => "CHALLENGE_INVALID",
            SecondFactorError::ChallengeExpired => "CHALLENGE_EXPIRED",
        }
    }
}

/// Message for a registration whose address is taken.
pub const EMAIL_TAKEN: &str = "user with this email already exists.";

/// Every way a use case can fail; transports map these to their own answers.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No caller, an unknown one, or one without the scope the call needs.
    #[error(transparent)]
    Access(AccessError),
    /// A password reset token that is missing, invalid, expired or spent.
    #[error("{}", reset_token_message(*.0))]
    ResetToken(TokenError),
    /// The same address asked for a password reset mail too recently.
    #[error("a password reset was requested for this address recently; try again in {} s", .0.as_secs().max(1))]
    ResetCoolingDown(std::time::Duration),
    /// Wrong password, or no account with that address.
    #[error("{INVALID_CREDENTIALS}")]
    InvalidCredentials,
    /// The password matched, but the address was never confirmed.
    #[error("E-mail is not verified.")]
    EmailNotVerified,
    /// Too many failed password checks for this address.
    #[error("too many failed sign-in attempts; try again in {} s", .0.as_secs().max(1))]
    LockedOut(std::time::Duration),
    /// The caller used up its requests_per_minute.
    #[error("this caller's request quota is used up; try again in {} s", .0.as_secs().max(1))]
    QuotaExceeded(std::time::Duration),
    #[error("{0}")]
    Invalid(ValidationErrors),
    #[error("{EMAIL_TAKEN}")]
    EmailTaken,
    #[error(transparent)]
    Token(TokenError),
    /// A confirmation code that is wrong (or for an address without one),
    /// expired, or burned by too many wrong tries.
    #[error(transparent)]
    Code(CodeError),
    #[error("account not found")]
    NotFound,
    /// The account has no session with that id.
    #[error("session not found")]
    SessionNotFound,
    /// A refresh or access token that no longer holds a session.
    #[error(transparent)]
    Session(SessionError),
    /// The password was right, and a second factor must follow: with the
    /// challenge that CompleteSignIn takes, where the call may complete one.
    #[error("A two-step verification code is required.")]
    SecondFactorRequired(Option<String>),
    #[error(transparent)]
    SecondFactor(SecondFactorError),
    /// An event cursor older than the retention.
    #[error("{}", crate::events::CursorError::Expired)]
    CursorExpired,
    #[error("the service is busy, try again shortly")]
    Busy,
    /// This instance is shutting down: try another, or again shortly.
    #[error("the service is shutting down; resume from the last cursor")]
    ShuttingDown,
    /// Too many calls from one client or for one address.
    #[error("too many requests; try again in {} s", .0.as_secs().max(1))]
    RateLimited(std::time::Duration),
    /// The same address asked for a confirmation mail too recently.
    #[error("a confirmation mail was requested for this address recently; try again in {} s", .0.as_secs().max(1))]
    CoolingDown(std::time::Duration),
    #[error("the database is unavailable")]
    Unavailable(#[source] StorageError),
    /// The media store refused or could not be reached.
    #[error("the media store is unavailable")]
    MediaStore(#[source] anyhow::Error),
    #[error("unexpected error")]
    Unexpected(#[source] anyhow::Error),
}

fn reset_token_message(e: TokenError) -> &'static str {
    match e {
        TokenError::Missing => "the password reset token is missing",
        TokenError::Invalid => "the password reset token is invalid",
        TokenError::Expired => "the password reset token has expired",
    }
}

/// ChangePassword's answer to a new password equal to the current one.
pub const SAME_PASSWORD: &str = "The new password must differ from the current one.";

/// What a failed password check answers, known address or not.
pub const INVALID_CREDENTIALS: &str = "Unable to log in with provided credentials.";

impl From<StorageError> for ServiceError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => ServiceError::NotFound,
            StorageError::Conflict => ServiceError::EmailTaken,
            e @ (StorageError::Unavailable(_) | StorageError::NotReady) => {
                ServiceError::Unavailable(e)
            }
            other => ServiceError::Unexpected(other.into()),
        }
    }
}

/// A template that does not render is a bug in the templates, never the
/// caller's doing.
impl From<TemplateError> for ServiceError {
    fn from(e: TemplateError) -> Self {
        ServiceError::Unexpected(e.into())
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ServiceError::Busy,
            HashError::Failed(e) => ServiceError::Unexpected(e),
        }
    }
}

/// A token holding NUL is refused like any other field holding it.
pub(super) fn refuse_nul_token(token: &str) -> Result<(), ServiceError> {
    if domain::has_nul(token) {
        return Err(ServiceError::Invalid(ValidationErrors::single(
            "token",
            domain::NULL_CHARACTERS,
        )));
    }
    Ok(())
}

/// Names what was being done when a call failed unexpectedly, so that the
/// logged error chain says which step broke; the expected outcomes (not
/// found, taken, unavailable, busy) pass through unchanged.
pub(super) trait Context<T> {
    fn context(self, doing: &'static str) -> Result<T, ServiceError>;
}

impl<T, E: Into<ServiceError>> Context<T> for Result<T, E> {
    fn context(self, doing: &'static str) -> Result<T, ServiceError> {
        self.map_err(|e| match e.into() {
            ServiceError::Unexpected(e) => ServiceError::Unexpected(e.context(doing)),
            expected => expected,
        })
    }
}
