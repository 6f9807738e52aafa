//! The session RPCs' handlers: sign-in, refresh, sign-out, listing and
//! revocation, and the online access-token check.

use tonic::Request;

use super::convert::timestamp;
use super::AccountGrpc;
use crate::domain::{parse_account_session, ClientInfo, Session, ValidationErrors};
use crate::proto::account::v1 as pb;
use crate::service::{parse_credentials, ServiceError, SessionTokens, SignedIn};

impl AccountGrpc {
    fn session_to_proto(&self, s: Session) -> pb::Session {
        pb::Session {
            id: s.id.to_string(),
            account_id: s.account_id.to_string(),
            created_at: Some(timestamp(s.created_at)),
            last_used_at: Some(timestamp(s.last_used_at)),
            expires_at: Some(timestamp(self.accounts.session_expires_at(&s))),
            user_agent: s.user_agent,
            ip_address: s.ip_address,
        }
    }

    pub(super) async fn sign_in_call(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<pb::SignInResponse, ServiceError> {
        let r = request.into_inner();
        let client = r.client.unwrap_or_default();
        let credentials = parse_credentials(&r.email, &r.password);
        let client = ClientInfo::parse(&client.user_agent, &client.ip_address);
        let ((email, password), client) = match (credentials, client) {
            (Ok(credentials), Ok(client)) => (credentials, client),
            (credentials, client) => {
                let mut errors = ValidationErrors(Vec::new());
                errors
                    .0
                    .extend(credentials.err().into_iter().flat_map(|e| e.0));
                errors.0.extend(client.err().into_iter().flat_map(|e| e.0));
                return Err(ServiceError::Invalid(errors));
            }
        };
        let signed_in = self.accounts.sign_in(&email, password, client).await?;
        Ok(signed_in_to_proto(self, signed_in))
    }

    pub(super) async fn refresh_session_call(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<pb::RefreshSessionResponse, ServiceError> {
        let token = request.into_inner().refresh_token;
        let (session, tokens) = self.accounts.refresh_session(token.trim()).await?;
        Ok(pb::RefreshSessionResponse {
            session: Some(self.session_to_proto(session)),
            tokens: Some(tokens_to_proto(tokens)),
        })
    }

    pub(super) async fn sign_out_call(
        &self,
        request: Request<pb::SignOutRequest>,
    ) -> Result<pb::SignOutResponse, ServiceError> {
        let token = request.into_inner().refresh_token;
        self.accounts.sign_out(token.trim()).await?;
        Ok(pb::SignOutResponse {})
    }

    pub(super) async fn list_sessions_call(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<pb::ListSessionsResponse, ServiceError> {
        let r = request.into_inner();
        let (account_id, _) = parse_account_session(&r.account_id, "session_id", "", true)
            .map_err(ServiceError::Invalid)?;
        let sessions = self.accounts.list_sessions(account_id).await?;
        Ok(pb::ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|s| self.session_to_proto(s))
                .collect(),
        })
    }

    pub(super) async fn revoke_session_call(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Result<pb::RevokeSessionResponse, ServiceError> {
        let r = request.into_inner();
        let (account_id, session_id) =
            parse_account_session(&r.account_id, "session_id", &r.session_id, false)
                .map_err(ServiceError::Invalid)?;
        let Some(session_id) = session_id else {
            return Err(ServiceError::SessionNotFound);
        };
        self.accounts.revoke_session(account_id, session_id).await?;
        Ok(pb::RevokeSessionResponse {})
    }

    pub(super) async fn revoke_all_sessions_call(
        &self,
        request: Request<pb::RevokeAllSessionsRequest>,
    ) -> Result<pb::RevokeAllSessionsResponse, ServiceError> {
        let r = request.into_inner();
        let (account_id, except) = parse_account_session(
            &r.account_id,
            "except_session_id",
            &r.except_session_id,
            true,
        )
        .map_err(ServiceError::Invalid)?;
        let revoked = self
            .accounts
            .revoke_all_sessions(account_id, except)
            .await?;
        Ok(pb::RevokeAllSessionsResponse {
            revoked: i32::try_from(revoked).unwrap_or(i32::MAX),
        })
    }

    pub(super) async fn verify_access_token_call(
        &self,
        request: Request<pb::VerifyAccessTokenRequest>,
    ) -> Result<pb::VerifyAccessTokenResponse, ServiceError> {
        let token = request.into_inner().access_token;
        let claims = self.accounts.verify_access_token(token.trim()).await?;
        Ok(pb::VerifyAccessTokenResponse {
            account_id: claims.account_id.to_string(),
            session_id: claims.session_id.to_string(),
            expires_at: Some(timestamp(claims.expires_at)),
        })
    }
}

/// A started session as SignIn and CompleteSignIn answer it.
pub(super) fn signed_in_to_proto(grpc: &AccountGrpc, signed_in: SignedIn) -> pb::SignInResponse {
    pb::SignInResponse {
        account: Some(grpc.account_to_proto(signed_in.account)),
        session: Some(grpc.session_to_proto(signed_in.session)),
        tokens: Some(tokens_to_proto(signed_in.tokens)),
    }
}

fn tokens_to_proto(t: SessionTokens) -> pb::Tokens {
    pb::Tokens {
        access_token: t.access_token,
        access_token_expires_at: Some(timestamp(t.access_token_expires_at)),
        refresh_token: t.refresh_token,
        refresh_token_expires_at: Some(timestamp(t.refresh_token_expires_at)),
    }
}
