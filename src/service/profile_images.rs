//! Setting and removing an account's profile image: the upload processed off
//! the executor, its objects written, then the account pointed at them.

use std::sync::Arc;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::{now, Accounts, ServiceError};
use crate::domain::{Account, Lookup, ProfileImage, ValidationErrors};
use crate::media::{profile_keys, ImageError, ImageProcessor, MediaStore};
use crate::storage::ImageSwitch;

/// The message for a file that is not an image this service accepts.
pub const INVALID_IMAGE: &str =
    "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";

/// The message for an image wider or taller than the limit.
pub const IMAGE_TOO_WIDE: &str = "Ensure this image has no more than 8000 pixels on each side.";

/// The message for an upload over `max_bytes`.
pub fn image_too_large(max_bytes: usize) -> String {
    format!("Ensure this image has no more than {max_bytes} bytes.")
}

/// How often an upload writes its objects again when a deletion of the same
/// objects (a leftover of an earlier image) took them meanwhile.
const SWITCH_ATTEMPTS: u32 = 3;

/// What profile images need: the processor, the store, and where images are
/// served from.
pub struct ProfileImages {
    processor: ImageProcessor,
    store: MediaStore,
    /// `MEDIA_BASE_URL`, without a trailing slash.
    base_url: String,
    /// Wakes the deletion worker after a commit queued deletions.
    deletions: Arc<Notify>,
    /// Uploads being received or processed: each holds up to `max_bytes`,
    /// so this bounds their memory whoever sends them, and keeps uploads
    /// from taking every place the rest of the API needs.
    uploads: Arc<Semaphore>,
}

impl ProfileImages {
    /// At most `uploads` uploads are received and processed at once.
    pub fn new(
        processor: ImageProcessor,
        store: MediaStore,
        base_url: &str,
        uploads: usize,
    ) -> Self {
        ProfileImages {
            processor,
            store,
            base_url: base_url.trim_end_matches('/').to_owned(),
            deletions: Arc::new(Notify::new()),
            uploads: Arc::new(Semaphore::new(uploads.max(1))),
        }
    }

    /// A place for one upload, held until it is processed; `Busy` when
    /// every place is taken.
    pub fn admit_upload(&self) -> Result<OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.uploads)
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy)
    }

    /// The address an object is served at.
    pub fn url(&self, key: &str) -> String {
        format!("{}/{key}", self.base_url)
    }

    /// The largest upload accepted, in bytes.
    pub fn max_bytes(&self) -> usize {
        self.processor.limits().max_bytes
    }

    /// What the deletion worker waits on.
    pub fn deletions(&self) -> Arc<Notify> {
        Arc::clone(&self.deletions)
    }

    pub fn store(&self) -> &MediaStore {
        &self.store
    }

    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }
}

/// An upload that gave no image, as the shopper reads it.
fn image_error(e: ImageError, max_bytes: usize) -> ServiceError {
    let invalid =
        |message: String| ServiceError::Invalid(ValidationErrors::single("image", message));
    match e {
        ImageError::NotAnImage => invalid(INVALID_IMAGE.to_owned()),
        ImageError::TooLarge => invalid(image_too_large(max_bytes)),
        ImageError::TooManyPixels => invalid(IMAGE_TOO_WIDE.to_owned()),
        ImageError::Busy => ServiceError::Busy,
        e @ ImageError::Failed(_) => ServiceError::Unexpected(e.into()),
    }
}

impl Accounts {
    /// Enables profile images.
    pub fn with_profile_images(mut self, images: ProfileImages) -> Self {
        self.profile_images = Some(Arc::new(images));
        self
    }

    /// Profile images, where enabled.
    pub fn profile_images(&self) -> Option<&Arc<ProfileImages>> {
        self.profile_images.as_ref()
    }

    fn images(&self) -> Result<&ProfileImages, ServiceError> {
        self.profile_images.as_deref().ok_or_else(|| {
            ServiceError::Unexpected(anyhow::anyhow!("profile images are not configured"))
        })
    }

    /// Fails with `NotFound` unless `id` is a live account: asked before an
    /// upload is read, so that no file is taken for nobody.
    pub async fn ensure_account(&self, id: Uuid) -> Result<(), ServiceError> {
        self.get(Lookup::Id(id)).await.map(|_| ())
    }

    /// Makes `upload` account `id`'s profile image; the image it replaces is
    /// deleted after the commit.
    #[tracing::instrument(name = "set_profile_image", skip_all)]
    pub async fn set_profile_image(
        &self,
        id: Uuid,
        upload: Vec<u8>,
    ) -> Result<Account, ServiceError> {
        let images = self.images()?;
        if upload.is_empty() {
            return Err(ServiceError::Invalid(ValidationErrors::single(
                "image",
                crate::domain::REQUIRED,
            )));
        }
        let processed = images
            .processor
            .process(upload)
            .await
            .map_err(|e| image_error(e, images.max_bytes()))?;
        let (large, thumbnail) = profile_keys(id, &processed.content_hash, processed.extension);
        let image = ProfileImage { large, thumbnail };
        for _ in 0..SWITCH_ATTEMPTS {
            // Written before any row points at them: a crash from here to
            // the commit leaves objects that the sweep removes, never a row
            // pointing at nothing.
            for (key, bytes) in [
                (&image.large, &processed.large),
                (&image.thumbnail, &processed.thumbnail),
            ] {
                images
                    .store
                    .put(key, bytes.clone(), processed.content_type)
                    .await
                    .map_err(|e| ServiceError::MediaStore(e.into()))?;
            }
            let switched = self
                .storage
                .switch_profile_image(id, Some(&image), &images.store, now())
                .await;
            match switched {
                Ok(ImageSwitch::Switched(account)) => {
                    images.deletions.notify_one();
                    return Ok(account);
                }
                Ok(ImageSwitch::Unchanged(account)) => return Ok(account),
                Ok(ImageSwitch::ObjectsMissing) => continue,
                Ok(ImageSwitch::NotFound) => {
                    self.abandon(id, &image).await;
                    return Err(ServiceError::NotFound);
                }
                Err(e) => {
                    self.abandon(id, &image).await;
                    return Err(e.into());
                }
            }
        }
        Err(ServiceError::MediaStore(anyhow::anyhow!(
            "the media store lost the new image's objects {SWITCH_ATTEMPTS} times"
        )))
    }

    /// Queues the objects of an upload that no row took; they are deleted
    /// only if no row points at them by then. Should the database refuse
    /// this too, the sweep finds them.
    async fn abandon(&self, id: Uuid, image: &ProfileImage) {
        let queued = self
            .storage
            .queue_media_deletions(id, &image.keys(), now())
            .await;
        match (queued, self.profile_images.as_deref()) {
            (Ok(()), Some(images)) => images.deletions.notify_one(),
            (Ok(()), None) => {}
            (Err(e), _) => tracing::warn!(
                error = %crate::telemetry::error_chain(&e),
                "cannot queue the objects of an abandoned upload; the sweep will remove them"
            ),
        }
    }

    /// Removes account `id`'s profile image; an account without one is
    /// answered as it is.
    #[tracing::instrument(name = "remove_profile_image", skip_all)]
    pub async fn remove_profile_image(&self, id: Uuid) -> Result<Account, ServiceError> {
        let images = self.images()?;
        let switched = self
            .storage
            .switch_profile_image(id, None, &images.store, now())
            .await?;
        match switched {
            ImageSwitch::Switched(account) => {
                images.deletions.notify_one();
                Ok(account)
            }
            ImageSwitch::Unchanged(account) => Ok(account),
            ImageSwitch::NotFound => Err(ServiceError::NotFound),
            ImageSwitch::ObjectsMissing => Err(ServiceError::Unexpected(anyhow::anyhow!(
                "removing an image asked for objects"
            ))),
        }
    }
}
