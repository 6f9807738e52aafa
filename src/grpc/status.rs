//! The one place where service errors become gRPC statuses.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::access::AccessError;
use crate::service::{ServiceError, EMAIL_TAKEN};
use crate::telemetry::error_chain;

/// `google.rpc.ErrorInfo` domain of this service's errors.
pub const ERROR_DOMAIN: &str = "account.v1";

/// A call refused before it ran: UNAUTHENTICATED, PERMISSION_DENIED or
/// (a caller's streams) RESOURCE_EXHAUSTED, with an ErrorInfo saying why
/// (and, for a missing scope, which; for streams, how many one may hold).
pub fn access_status(e: &AccessError) -> Status {
    let mut metadata = HashMap::new();
    let code = match e {
        AccessError::KeyMissing | AccessError::KeyInvalid => Code::Unauthenticated,
        AccessError::ScopeMissing(scope) => {
            metadata.insert("scope".to_owned(), scope.as_str().to_owned());
            Code::PermissionDenied
        }
        AccessError::StreamLimit(limit) => {
            metadata.insert("limit".to_owned(), limit.to_string());
            Code::ResourceExhausted
        }
    };
    Status::with_error_details(
        code,
        e.to_string(),
        ErrorDetails::with_error_info(e.reason(), ERROR_DOMAIN, metadata),
    )
}

pub fn to_status(e: &ServiceError) -> Status {
    match e {
        ServiceError::Access(access) => access_status(access),
        ServiceError::InvalidCredentials => Status::with_error_details(
            Code::Unauthenticated,
            e.to_string(),
            ErrorDetails::with_error_info("INVALID_CREDENTIALS", ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::EmailNotVerified => Status::with_error_details(
            Code::FailedPrecondition,
            e.to_string(),
            ErrorDetails::with_error_info("EMAIL_NOT_VERIFIED", ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::LockedOut(wait) => {
            let mut details = ErrorDetails::with_retry_info(Some(*wait));
            details.set_error_info("LOGIN_LOCKED", ERROR_DOMAIN, HashMap::new());
            Status::with_error_details(Code::ResourceExhausted, e.to_string(), details)
        }
        ServiceError::QuotaExceeded(wait) => {
            let mut details = ErrorDetails::with_retry_info(Some(*wait));
            details.set_error_info("QUOTA_EXCEEDED", ERROR_DOMAIN, HashMap::new());
            Status::with_error_details(Code::ResourceExhausted, e.to_string(), details)
        }
        ServiceError::Invalid(errors) => {
            let mut details = ErrorDetails::new();
            for v in &errors.0 {
                details.add_bad_request_violation(v.field, v.description.clone());
            }
            Status::with_error_details(Code::InvalidArgument, errors.to_string(), details)
        }
        ServiceError::EmailTaken => {
            let mut details = ErrorDetails::new();
            details.add_bad_request_violation("email", EMAIL_TAKEN);
            Status::with_error_details(
                Code::AlreadyExists,
                format!("email: {EMAIL_TAKEN}"),
                details,
            )
        }
        ServiceError::ResetToken(t) => Status::with_error_details(
            Code::InvalidArgument,
            e.to_string(),
            ErrorDetails::with_error_info(t.reason(), ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::Token(t) => Status::with_error_details(
            Code::InvalidArgument,
            t.to_string(),
            ErrorDetails::with_error_info(t.reason(), ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::Code(c) => Status::with_error_details(
            Code::InvalidArgument,
            c.to_string(),
            ErrorDetails::with_error_info(c.reason(), ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::NotFound => Status::not_found("account not found"),
        ServiceError::SessionNotFound => Status::not_found(e.to_string()),
        ServiceError::SecondFactorRequired(challenge) => {
            let metadata = challenge
                .iter()
                .map(|c| ("challenge".to_owned(), c.clone()))
                .collect::<HashMap<_, _>>();
            Status::with_error_details(
                Code::FailedPrecondition,
                e.to_string(),
                ErrorDetails::with_error_info("SECOND_FACTOR_REQUIRED", ERROR_DOMAIN, metadata),
            )
        }
        ServiceError::SecondFactor(f) => {
            use crate::service::SecondFactorError as F;
            let code = match f {
                F::Invalid | F::ChallengeInvalid | F::ChallengeExpired => Code::Unauthenticated,
                F::EnrollmentCodeInvalid => Code::InvalidArgument,
                F::NotStarted | F::AlreadyEnabled | F::NotEnabled => Code::FailedPrecondition,
            };
            Status::with_error_details(
                code,
                f.to_string(),
                ErrorDetails::with_error_info(f.reason(), ERROR_DOMAIN, HashMap::new()),
            )
        }
        ServiceError::Session(s) => Status::with_error_details(
            Code::Unauthenticated,
            s.to_string(),
            ErrorDetails::with_error_info(s.reason(), ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::CursorExpired => Status::with_error_details(
            Code::OutOfRange,
            e.to_string(),
            ErrorDetails::with_error_info("CURSOR_EXPIRED", ERROR_DOMAIN, HashMap::new()),
        ),
        ServiceError::Busy => Status::with_error_details(
            Code::ResourceExhausted,
            e.to_string(),
            ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(1))),
        ),
        ServiceError::CoolingDown(wait)
        | ServiceError::ResetCoolingDown(wait)
        | ServiceError::RateLimited(wait) => Status::with_error_details(
            Code::ResourceExhausted,
            e.to_string(),
            ErrorDetails::with_retry_info(Some(*wait)),
        ),
        ServiceError::ShuttingDown => Status::unavailable(e.to_string()),
        ServiceError::Unavailable(inner) => {
            tracing::warn!(error = %error_chain(inner), "database unavailable");
            Status::unavailable("the service is temporarily unavailable, try again shortly")
        }
        ServiceError::MediaStore(inner) => {
            tracing::warn!(error = %error_chain(inner.as_ref()), "media store unavailable");
            Status::unavailable("the image store is temporarily unavailable, try again shortly")
        }
        ServiceError::Unexpected(inner) => {
            // The chain goes to the log only: it may name internals.
            tracing::error!(error = %error_chain(inner.as_ref()), "unexpected error");
            Status::internal("internal error")
        }
    }
}
