//! A decoded image cropped to a centred square, resized to the stored sizes,
//! turned upright and encoded from its pixels alone, so that no metadata of
//! the upload (EXIF and its GPS position, XMP, comments, profiles) survives.

use std::borrow::Cow;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{
    DynamicImage, GenericImageView, GrayAlphaImage, GrayImage, ImageEncoder, RgbImage, RgbaImage,
};
use sha2::{Digest, Sha256};

use super::colour;
use super::decode::Decoded;
use super::{ImageError, ProcessedImage, LARGE_SIDE, THUMBNAIL_SIDE};

/// The stored JPEGs' quality: artefacts are hard to see at 85, and the file
/// is about half the size it is at 95.
const JPEG_QUALITY: u8 = 85;

/// Lanczos3, as `vipsthumbnail` uses: the sharpest of the usual filters
/// without visible ringing when shrinking photographs.
const FILTER: FilterType = FilterType::Lanczos3;

pub(super) fn render(decoded: Decoded) -> Result<ProcessedImage, ImageError> {
    let Decoded {
        image,
        orientation,
        icc_profile,
    } = decoded;
    let transparent = has_transparency(&image);
    let image = eight_bit(image);
    let mut resizer = Resizer::new();
    // The centred square of the upright image is the upright centred square
    // of the stored one: cropping and shrinking first turns 512² pixels
    // rather than the whole upload, and allocates no second full-size copy.
    let mut large = square(&mut resizer, &image, LARGE_SIDE, transparent)?;
    drop(image);
    large.apply_orientation(orientation);
    // On the 512² pixels rather than the upload's: the same colours for a
    // fraction of the work.
    colour::to_srgb(&mut large, icc_profile.as_deref());
    let thumbnail = square(&mut resizer, &large, THUMBNAIL_SIDE, transparent)?;
    let large = encode(&large, transparent)?;
    let thumbnail = encode(&thumbnail, transparent)?;
    let content_hash = data_encoding::HEXLOWER.encode(&Sha256::digest(&large));
    let (content_type, extension) = if transparent {
        ("image/png", "png")
    } else {
        ("image/jpeg", "jpg")
    };
    Ok(ProcessedImage {
        content_type,
        extension,
        large,
        thumbnail,
        content_hash,
    })
}

/// Whether any pixel is less than fully opaque: an alpha channel alone (a
/// GIF always decodes with one) is no reason to store a PNG.
fn has_transparency(image: &DynamicImage) -> bool {
    match image {
        DynamicImage::ImageLumaA8(i) => i.pixels().any(|p| p.0[1] != u8::MAX),
        DynamicImage::ImageRgba8(i) => i.pixels().any(|p| p.0[3] != u8::MAX),
        DynamicImage::ImageLumaA16(i) => i.pixels().any(|p| p.0[1] != u16::MAX),
        DynamicImage::ImageRgba16(i) => i.pixels().any(|p| p.0[3] != u16::MAX),
        DynamicImage::ImageRgba32F(i) => i.pixels().any(|p| p.0[3] < 1.0),
        _ => false,
    }
}

/// The image with 8 bits a channel, as both encoders store it; an 8-bit
/// image is handed back as it is.
fn eight_bit(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => image,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        DynamicImage::ImageLumaA16(_) => DynamicImage::ImageLumaA8(image.to_luma_alpha8()),
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

/// The centred square of an 8-bit `image`, resized to `side` × `side`.
/// With `transparent`, colours are weighted by their alpha, so that
/// transparent pixels do not darken the edges they border.
fn square(
    resizer: &mut Resizer,
    image: &DynamicImage,
    side: u32,
    transparent: bool,
) -> Result<DynamicImage, ImageError> {
    let pixel_type = match image {
        DynamicImage::ImageLuma8(_) => PixelType::U8,
        DynamicImage::ImageLumaA8(_) => PixelType::U8x2,
        DynamicImage::ImageRgb8(_) => PixelType::U8x3,
        DynamicImage::ImageRgba8(_) => PixelType::U8x4,
        _ => return Err(failed("resizing an image that is not 8-bit")),
    };
    let (width, height) = image.dimensions();
    let source = ImageRef::new(width, height, image.as_bytes(), pixel_type)
        .map_err(|e| failed_with(e, "reading pixels to resize"))?;
    let mut target = Image::new(side, side, pixel_type);
    let crop = f64::from(width.min(height));
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(FILTER))
        .crop(
            (f64::from(width) - crop) / 2.0,
            (f64::from(height) - crop) / 2.0,
            crop,
            crop,
        )
        .use_alpha(transparent);
    resizer
        .resize(&source, &mut target, &options)
        .map_err(|e| failed_with(e, "resizing"))?;
    let pixels = target.into_vec();
    let resized = match pixel_type {
        PixelType::U8 => GrayImage::from_raw(side, side, pixels).map(DynamicImage::ImageLuma8),
        PixelType::U8x2 => {
            GrayAlphaImage::from_raw(side, side, pixels).map(DynamicImage::ImageLumaA8)
        }
        PixelType::U8x3 => RgbImage::from_raw(side, side, pixels).map(DynamicImage::ImageRgb8),
        _ => RgbaImage::from_raw(side, side, pixels).map(DynamicImage::ImageRgba8),
    };
    resized.ok_or_else(|| failed("resized pixels of the wrong length"))
}

/// PNG when `transparent`, else JPEG (its alpha channel, all opaque,
/// dropped). Neither encoder is handed any metadata to write.
fn encode(image: &DynamicImage, transparent: bool) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let (width, height) = image.dimensions();
    let written = if transparent {
        PngEncoder::new(&mut out).write_image(image.as_bytes(), width, height, image.color().into())
    } else {
        let opaque = match image {
            DynamicImage::ImageLumaA8(_) => Cow::Owned(DynamicImage::ImageLuma8(image.to_luma8())),
            DynamicImage::ImageRgba8(_) => Cow::Owned(DynamicImage::ImageRgb8(image.to_rgb8())),
            _ => Cow::Borrowed(image),
        };
        JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
            opaque.as_bytes(),
            width,
            height,
            opaque.color().into(),
        )
    };
    written.map_err(|e| failed_with(e, "encoding an image"))?;
    Ok(out)
}

fn failed(what: &'static str) -> ImageError {
    ImageError::Failed(anyhow::anyhow!(what))
}

fn failed_with<E>(e: E, what: &'static str) -> ImageError
where
    E: std::error::Error + Send + Sync + 'static,
{
    ImageError::Failed(anyhow::Error::new(e).context(what))
}
