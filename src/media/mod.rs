//! Profile images: an upload decoded within its limits, stripped to its
//! pixels and re-encoded at the sizes the service stores, on a bounded pool;
//! the keys they are stored under and the blob store that keeps them.

pub mod image;
mod key;
mod store;

pub use self::image::{ImageError, ImageLimits, ImageProcessor, ProcessedImage};
pub use self::key::{profile_keys, ProfileKey, PROFILE_PREFIX};
pub use self::store::{MediaStore, MediaStoreError};
