//! Pixels in an embedded colour profile (Display P3, Adobe RGB…) converted
//! to sRGB, since the profile itself is not stored: browsers read untagged
//! images as sRGB, and wide-gamut pixels read that way look washed out.

use image::DynamicImage;
use moxcms::{ColorProfile, DataColorSpace, Layout, TransformOptions};

/// Converts an 8-bit RGB or RGBA `image` from `icc_profile` to sRGB, in
/// place. A profile that cannot be read or applied, or that is not an RGB
/// one, leaves the pixels as they are: the image is then shown as if it were
/// sRGB, which is what it most likely is.
pub(super) fn to_srgb(image: &mut DynamicImage, icc_profile: Option<&[u8]>) {
    let Some(source) = icc_profile.and_then(|icc| ColorProfile::new_from_slice(icc).ok()) else {
        return;
    };
    if source.color_space != DataColorSpace::Rgb {
        return;
    }
    let (layout, pixels): (Layout, &mut [u8]) = match image {
        DynamicImage::ImageRgb8(i) => (Layout::Rgb, i.as_mut()),
        DynamicImage::ImageRgba8(i) => (Layout::Rgba, i.as_mut()),
        _ => return,
    };
    let Ok(transform) = source.create_transform_8bit(
        layout,
        &ColorProfile::new_srgb(),
        layout,
        TransformOptions::default(),
    ) else {
        tracing::debug!("embedded colour profile not applied: no transform to sRGB");
        return;
    };
    let mut converted = vec![0u8; pixels.len()];
    match transform.transform(pixels, &mut converted) {
        Ok(()) => pixels.copy_from_slice(&converted),
        Err(e) => tracing::debug!(error = %e, "embedded colour profile not applied"),
    }
}
