//! The two-step sign-in RPCs' handlers: enrolment, turning it off, recovery
//! codes, and completing a sign-in with a code.

use tonic::Request;

use super::sessions::signed_in_to_proto;
use super::AccountGrpc;
use crate::domain::{parse_account_session, ClientInfo, ValidationErrors, REQUIRED};
use crate::proto::account::v1 as pb;
use crate::service::{parse_password_check, Factor, ServiceError};

/// A required `code`-like field: present, or a violation on `field`.
fn required(field: &'static str, value: &str) -> Result<(), ServiceError> {
    if value.trim().is_empty() {
        return Err(ServiceError::Invalid(ValidationErrors::single(
            field, REQUIRED,
        )));
    }
    Ok(())
}

impl AccountGrpc {
    pub(super) async fn start_totp_enrollment_call(
        &self,
        request: Request<pb::StartTotpEnrollmentRequest>,
    ) -> Result<pb::StartTotpEnrollmentResponse, ServiceError> {
        let r = request.into_inner();
        let (id, password) = parse_password_check("account_id", &r.account_id, &r.current_password)
            .map_err(ServiceError::Invalid)?;
        let enrollment = self.accounts.start_totp_enrollment(id, password).await?;
        Ok(pb::StartTotpEnrollmentResponse {
            secret: enrollment.secret,
            otpauth_uri: enrollment.otpauth_uri,
            qr_code_svg: enrollment.qr_code_svg,
        })
    }

    pub(super) async fn confirm_totp_enrollment_call(
        &self,
        request: Request<pb::ConfirmTotpEnrollmentRequest>,
    ) -> Result<pb::ConfirmTotpEnrollmentResponse, ServiceError> {
        let r = request.into_inner();
        let (id, _) = parse_account_session(&r.account_id, "session_id", "", true)
            .map_err(ServiceError::Invalid)?;
        required("code", &r.code)?;
        let (account, recovery_codes) = self.accounts.confirm_totp_enrollment(id, &r.code).await?;
        Ok(pb::ConfirmTotpEnrollmentResponse {
            account: Some(self.account_to_proto(account)),
            recovery_codes,
        })
    }

    pub(super) async fn disable_totp_call(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Result<pb::DisableTotpResponse, ServiceError> {
        let r = request.into_inner();
        let (id, password) = parse_password_check("account_id", &r.account_id, &r.current_password)
            .map_err(ServiceError::Invalid)?;
        required("code", &r.code)?;
        let account = self.accounts.disable_totp(id, password, &r.code).await?;
        Ok(pb::DisableTotpResponse {
            account: Some(self.account_to_proto(account)),
        })
    }

    pub(super) async fn regenerate_recovery_codes_call(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Result<pb::RegenerateRecoveryCodesResponse, ServiceError> {
        let r = request.into_inner();
        let (id, _) = parse_account_session(&r.account_id, "session_id", "", true)
            .map_err(ServiceError::Invalid)?;
        required("code", &r.code)?;
        let recovery_codes = self.accounts.regenerate_recovery_codes(id, &r.code).await?;
        Ok(pb::RegenerateRecoveryCodesResponse { recovery_codes })
    }

    pub(super) async fn complete_sign_in_call(
        &self,
        request: Request<pb::CompleteSignInRequest>,
    ) -> Result<pb::SignInResponse, ServiceError> {
        use pb::complete_sign_in_request::Factor as Pb;
        let r = request.into_inner();
        let client = r.client.unwrap_or_default();
        let client = ClientInfo::parse(&client.user_agent, &client.ip_address)
            .map_err(ServiceError::Invalid)?;
        let factor = match &r.factor {
            Some(Pb::TotpCode(code)) if !code.trim().is_empty() => Factor::Totp(code),
            Some(Pb::RecoveryCode(code)) if !code.trim().is_empty() => Factor::Recovery(code),
            _ => {
                return Err(ServiceError::Invalid(ValidationErrors::single(
                    "factor",
                    "Either totp_code or recovery_code is required.",
                )))
            }
        };
        let signed_in = self
            .accounts
            .complete_sign_in(r.challenge.trim(), factor, client)
            .await?;
        Ok(signed_in_to_proto(self, signed_in))
    }
}
