//! An upload's format found from its bytes, its size checked from its header
//! before any pixel is decoded, then its pixels decoded within memory limits.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::{ImageError, ImageLimits};

/// What uploads may be. A format is only ever found from the bytes: a name
/// or a declared type says nothing about what a decoder will be handed.
const ACCEPTED: [ImageFormat; 4] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::WebP,
    ImageFormat::Gif,
];

/// The most one decoded pixel of these formats takes: 16-bit RGBA, from a
/// PNG. Decoders are told to allocate no more than `max_pixels` of these.
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// An upload's pixels and what its metadata says about showing them.
pub(super) struct Decoded {
    pub image: DynamicImage,
    /// From the EXIF block: how the stored pixels are turned to stand upright.
    pub orientation: Orientation,
    /// The colour profile the pixels are in, when one was embedded.
    pub icc_profile: Option<Vec<u8>>,
}

pub(super) fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Decoded, ImageError> {
    let format = image::guess_format(bytes).map_err(|_| ImageError::NotAnImage)?;
    if !ACCEPTED.contains(&format) {
        return Err(ImageError::NotAnImage);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decoder_limits(limits));
    // Reads the header only: the decoders allocate nothing sized by the
    // dimensions it claims until `from_decoder`, and refuse a side over
    // `max_side` themselves.
    let mut decoder = reader.into_decoder().map_err(refused)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(ImageError::NotAnImage);
    }
    if width > limits.max_side
        || height > limits.max_side
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImageError::TooManyPixels);
    }
    // A damaged EXIF block is no reason to refuse the pixels: they are then
    // shown as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc_profile = decoder.icc_profile().ok().flatten();
    let image = DynamicImage::from_decoder(decoder).map_err(refused)?;
    if format == ImageFormat::Jpeg && !jpeg_scan_ends(bytes) {
        return Err(ImageError::NotAnImage);
    }
    Ok(Decoded {
        image,
        orientation,
        icc_profile,
    })
}

fn decoder_limits(limits: &ImageLimits) -> Limits {
    let mut decoder = Limits::default();
    decoder.max_image_width = Some(limits.max_side);
    decoder.max_image_height = Some(limits.max_side);
    decoder.max_alloc = Some(limits.max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL));
    decoder
}

/// What a decoder's error means for the upload. Reading from memory cannot
/// fail, so an I/O error is the data ending early.
fn refused(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels,
        image::ImageError::Decoding(_)
        | image::ImageError::Unsupported(_)
        | image::ImageError::IoError(_) => ImageError::NotAnImage,
        other => ImageError::Failed(anyhow::Error::new(other).context("decoding an image")),
    }
}

/// Whether the image data of a JPEG is followed by its end marker.
///
/// The JPEG decoder (zune-jpeg, which `image` runs in its lenient mode and
/// gives no way to change) fills a scan cut short with grey and reports
/// success, so a truncated upload would be stored half grey. The segments
/// before the first scan are skipped by their lengths (an EXIF thumbnail's
/// own end marker is inside one); within scan data a 0xFF byte is always
/// followed by 0x00 or a marker, so the first FF D9 after it is the end.
fn jpeg_scan_ends(bytes: &[u8]) -> bool {
    const START_OF_SCAN: u8 = 0xda;
    const END_OF_IMAGE: [u8; 2] = [0xff, 0xd9];
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while bytes.get(at) == Some(&0xff) && bytes.get(at + 1) == Some(&0xff) {
            at += 1;
        }
        let (Some(0xff), Some(&marker)) = (bytes.get(at), bytes.get(at + 1)) else {
            return false;
        };
        if marker == START_OF_SCAN {
            break;
        }
        // The few markers that stand alone, without a length.
        if marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            at += 2;
            continue;
        }
        let (Some(&high), Some(&low)) = (bytes.get(at + 2), bytes.get(at + 3)) else {
            return false;
        };
        at += 2 + usize::from(u16::from_be_bytes([high, low]));
    }
    bytes
        .get(at..)
        .is_some_and(|scan| scan.windows(2).any(|w| w == END_OF_IMAGE))
}
