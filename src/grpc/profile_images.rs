//! The profile-image RPCs: an upload read from its stream, the account
//! first and the bytes within the limit, and the image's removal.

use tonic::{Request, Streaming};

use super::AccountGrpc;
use crate::domain::{parse_required_id, ValidationErrors, REQUIRED};
use crate::proto::account::v1 as pb;
use crate::service::{image_too_large, ServiceError};

use pb::set_profile_image_request::Part;

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(ValidationErrors::single(field, message))
}

/// A stream that broke before its end: the upload is incomplete.
fn interrupted(status: tonic::Status) -> ServiceError {
    invalid(
        "image",
        format!("The upload was interrupted: {}", status.message()),
    )
}

impl AccountGrpc {
    pub(super) async fn set_profile_image_call(
        &self,
        request: Request<Streaming<pb::SetProfileImageRequest>>,
    ) -> Result<pb::SetProfileImageResponse, ServiceError> {
        let images = self.accounts.profile_images().ok_or_else(|| {
            ServiceError::Unexpected(anyhow::anyhow!("profile images are not configured"))
        })?;
        let max_bytes = images.max_bytes();
        let mut stream = request.into_inner();
        let first = stream.message().await.map_err(interrupted)?;
        let id = match first.and_then(|m| m.part) {
            Some(Part::AccountId(raw)) => {
                parse_required_id("account_id", &raw).map_err(ServiceError::Invalid)?
            }
            _ => return Err(invalid("account_id", REQUIRED)),
        };
        // Before the file is read: an unknown account takes no upload, and
        // an upload past the bound is refused before it takes memory.
        self.accounts.ensure_account(id).await?;
        let _place = images.admit_upload()?;
        let mut upload = Vec::new();
        while let Some(message) = stream.message().await.map_err(interrupted)? {
            match message.part {
                Some(Part::Chunk(chunk)) => {
                    // Refused as soon as the stream passes the limit,
                    // whatever is still to come.
                    if upload.len().saturating_add(chunk.len()) > max_bytes {
                        return Err(invalid("image", image_too_large(max_bytes)));
                    }
                    upload.extend_from_slice(&chunk);
                }
                Some(Part::AccountId(_)) => {
                    return Err(invalid(
                        "account_id",
                        "Only the first message may name the account.",
                    ))
                }
                None => {}
            }
        }
        if upload.is_empty() {
            return Err(invalid("image", REQUIRED));
        }
        let account = self.accounts.set_profile_image(id, upload).await?;
        Ok(pb::SetProfileImageResponse {
            account: Some(self.account_to_proto(account)),
        })
    }

    pub(super) async fn remove_profile_image_call(
        &self,
        request: Request<pb::RemoveProfileImageRequest>,
    ) -> Result<pb::RemoveProfileImageResponse, ServiceError> {
        let id = parse_required_id("account_id", &request.into_inner().account_id)
            .map_err(ServiceError::Invalid)?;
        let account = self.accounts.remove_profile_image(id).await?;
        Ok(pb::RemoveProfileImageResponse {
            account: Some(self.account_to_proto(account)),
        })
    }
}
