//! Profile images: an upload decoded within its limits, stripped to its
//! pixels and re-encoded at the sizes the service stores, on a bounded pool.

pub mod image;

pub use self::image::{ImageError, ImageLimits, ImageProcessor, ProcessedImage};
