//! The profile-image pipeline: what an upload may be, what comes out of it,
//! and the bounded pool that runs it off the async executor.

mod colour;
mod decode;
mod render;

use std::time::Duration;

use crate::pool::{PoolError, WorkPool};

/// The side of the stored image, and of its thumbnail.
pub const LARGE_SIDE: u32 = 512;
pub const THUMBNAIL_SIDE: u32 = 128;

/// An image thread holds nothing between jobs, so this only bounds how long
/// an idle thread wakes for nothing.
const IDLE_RELEASE: Duration = Duration::from_secs(60);

/// What an upload may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// The upload's size in bytes, as received.
    pub max_bytes: usize,
    /// The width and the height the image's header may claim.
    pub max_side: u32,
    /// Width × height: what decoding allocates grows with it.
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_bytes: 5 * 1024 * 1024,
            max_side: 8000,
            max_pixels: 40_000_000,
        }
    }
}

/// Why an upload gave no image. No variant carries or prints the upload.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Not a JPEG, PNG, WebP or GIF by its bytes, or truncated or corrupt.
    #[error("the upload is not an accepted image, or is truncated or corrupt")]
    NotAnImage,
    /// More bytes than `max_bytes`.
    #[error("the upload has more bytes than the limit")]
    TooLarge,
    /// A side over `max_side` or more than `max_pixels`, as the header
    /// claims: refused before any pixel is decoded.
    #[error("the image has more pixels than the limits allow")]
    TooManyPixels,
    /// More images are being processed and waiting than the service accepts.
    #[error("the image processing queue is full")]
    Busy,
    #[error("image processing failed")]
    Failed(#[source] anyhow::Error),
}

/// An upload made safe: pixels only, upright, square, at both sizes.
#[derive(Clone, PartialEq, Eq)]
pub struct ProcessedImage {
    /// `image/png` when the image has transparency, else `image/jpeg`.
    pub content_type: &'static str,
    /// `png` or `jpg`, as the stored names end.
    pub extension: &'static str,
    /// `LARGE_SIDE` square.
    pub large: Vec<u8>,
    /// `THUMBNAIL_SIDE` square.
    pub thumbnail: Vec<u8>,
    /// Lowercase hex SHA-256 of `large`, the bytes served, not of the upload:
    /// a name made from it always denotes the same content, so it can be
    /// cached for ever and serve as a strong ETag, even if a later release
    /// encodes the same upload differently.
    pub content_hash: String,
}

impl std::fmt::Debug for ProcessedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessedImage")
            .field("content_type", &self.content_type)
            .field("large_bytes", &self.large.len())
            .field("thumbnail_bytes", &self.thumbnail.len())
            .field("content_hash", &self.content_hash)
            .finish()
    }
}

/// Processes uploads on `concurrency` dedicated threads, never on the async
/// executor.
///
/// A decode holds the whole image in memory and a core for its duration, so
/// running more than there are cores only adds memory. Uploads wait in a
/// queue of `queue` places; when it is full, `process` fails at once with
/// [`ImageError::Busy`].
#[derive(Clone)]
pub struct ImageProcessor {
    pool: WorkPool<()>,
    limits: ImageLimits,
}

impl ImageProcessor {
    pub fn new(concurrency: usize, queue: usize, limits: ImageLimits) -> Self {
        ImageProcessor {
            pool: WorkPool::new("image", concurrency, queue, IDLE_RELEASE),
            limits,
        }
    }

    pub fn limits(&self) -> &ImageLimits {
        &self.limits
    }

    /// Uploads waiting for an image thread.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    pub async fn process(&self, bytes: Vec<u8>) -> Result<ProcessedImage, ImageError> {
        // Checked before queueing too, so an oversized upload never takes a
        // place in the queue.
        if bytes.len() > self.limits.max_bytes {
            return Err(ImageError::TooLarge);
        }
        let limits = self.limits;
        self.pool
            .run(move |_| process_blocking(&bytes, &limits))
            .await
            .map_err(|e| match e {
                PoolError::Busy => ImageError::Busy,
                stopped => ImageError::Failed(anyhow::Error::new(stopped).context("image pool")),
            })?
    }
}

/// Processes one upload on the current thread; call from a blocking context.
pub fn process_blocking(bytes: &[u8], limits: &ImageLimits) -> Result<ProcessedImage, ImageError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge);
    }
    let decoded = decode::decode(bytes, limits)?;
    render::render(decoded)
}

#[cfg(test)]
mod tests;
