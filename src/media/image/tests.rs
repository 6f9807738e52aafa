//! Unit tests of the pipeline on uploads built in code: orientation and
//! metadata, transparency, each accepted format, the refusals, the pool.

#[path = "../../../testkit/src/images.rs"]
mod samples;

use image::metadata::Orientation;
use image::{DynamicImage, GenericImageView, Rgb, Rgba, RgbaImage};

use super::*;
use samples::*;

fn limits() -> ImageLimits {
    ImageLimits::default()
}

/// Decodes both outputs, checks they are the promised squares in the
/// promised format, and hands back the large one.
fn open(processed: &ProcessedImage) -> DynamicImage {
    let format = match processed.content_type {
        "image/jpeg" => image::ImageFormat::Jpeg,
        "image/png" => image::ImageFormat::Png,
        other => panic!("unexpected content type {other}"),
    };
    let large = image::load_from_memory_with_format(&processed.large, format).unwrap();
    let thumbnail = image::load_from_memory_with_format(&processed.thumbnail, format).unwrap();
    assert_eq!(large.dimensions(), (512, 512));
    assert_eq!(thumbnail.dimensions(), (128, 128));
    large
}

fn near(actual: Rgb<u8>, expected: Rgb<u8>) -> bool {
    actual
        .0
        .iter()
        .zip(expected.0)
        .all(|(a, e)| a.abs_diff(e) <= 24)
}

fn colour_at(image: &DynamicImage, x: u32, y: u32) -> Rgb<u8> {
    image.to_rgb8().get_pixel(x, y).to_owned()
}

#[test]
fn a_sideways_jpeg_comes_out_upright_without_its_exif() {
    let exif = exif_with_orientation_and_gps(6);
    assert_eq!(
        Orientation::from_exif_chunk(&exif),
        Some(Orientation::Rotate90),
        "the sample's EXIF block must be readable"
    );
    let upload = jpeg(
        &sideways_photo(),
        Some(exif),
        Some(b"not a real profile".to_vec()),
    );
    assert!(upload.windows(4).any(|w| w == b"Exif"));

    let processed = process_blocking(&upload, &limits()).unwrap();

    assert_eq!(
        (processed.content_type, processed.extension),
        ("image/jpeg", "jpg")
    );
    let large = open(&processed);
    // The red block is the right half of the upright square.
    for (x, y) in [(400, 100), (400, 400), (300, 256)] {
        assert!(
            near(colour_at(&large, x, y), RED),
            "red expected at {x},{y}"
        );
    }
    for (x, y) in [(100, 100), (100, 400), (200, 256)] {
        assert!(
            near(colour_at(&large, x, y), BLUE),
            "blue expected at {x},{y}"
        );
    }
    for output in [&processed.large, &processed.thumbnail] {
        assert!(!output.windows(4).any(|w| w == b"Exif"));
        let markers = jpeg_markers(output);
        // APP0 (JFIF) at most: no EXIF or XMP (APP1), ICC (APP2), other
        // application segments or comments.
        assert!(
            markers
                .iter()
                .all(|m| !(0xe1..=0xef).contains(m) && *m != 0xfe),
            "metadata segments left: {markers:x?}"
        );
    }
}

#[test]
fn pixels_in_a_wide_gamut_profile_are_stored_in_srgb() {
    use moxcms::{ColorProfile, Layout, TransformOptions};
    let p3_green = Rgb([40, 170, 90]);
    let photo = image::RgbImage::from_pixel(64, 64, p3_green);
    let p3 = ColorProfile::new_display_p3().encode().unwrap();
    let in_srgb = {
        let transform = ColorProfile::new_display_p3()
            .create_transform_8bit(
                Layout::Rgb,
                &ColorProfile::new_srgb(),
                Layout::Rgb,
                TransformOptions::default(),
            )
            .unwrap();
        let mut out = [0u8; 3];
        transform.transform(&p3_green.0, &mut out).unwrap();
        Rgb(out)
    };
    assert!(
        !near(in_srgb, p3_green),
        "the sample must tell the spaces apart"
    );

    let tagged = process_blocking(&jpeg(&photo, None, Some(p3)), &limits()).unwrap();
    let untagged = process_blocking(&jpeg(&photo, None, None), &limits()).unwrap();

    let stored = colour_at(&open(&tagged), 256, 256);
    assert!(near(stored, in_srgb), "{stored:?} is not {in_srgb:?}");
    assert!(near(colour_at(&open(&untagged), 256, 256), p3_green));
}

#[test]
fn a_png_with_transparency_stays_a_png_and_keeps_it() {
    // Left half fully transparent, right half opaque red.
    let upload = DynamicImage::ImageRgba8(RgbaImage::from_fn(300, 300, |x, _| {
        if x < 150 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([230, 20, 20, 255])
        }
    }));

    let processed = process_blocking(&png(&upload), &limits()).unwrap();

    assert_eq!(
        (processed.content_type, processed.extension),
        ("image/png", "png")
    );
    let large = open(&processed).to_rgba8();
    assert_eq!(large.get_pixel(20, 256).0[3], 0);
    assert_eq!(large.get_pixel(500, 256).0, [230, 20, 20, 255]);
    for output in [&processed.large, &processed.thumbnail] {
        assert_eq!(png_chunks(output), ["IHDR", "IDAT", "IEND"]);
    }
}

#[test]
fn an_opaque_png_becomes_a_jpeg_even_with_an_alpha_channel() {
    let upload = DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 40, Rgba([20, 20, 230, 255])));

    let processed = process_blocking(&png(&upload), &limits()).unwrap();

    assert_eq!(processed.content_type, "image/jpeg");
    assert!(near(colour_at(&open(&processed), 256, 256), BLUE));
}

#[test]
fn a_sixteen_bit_png_is_stored_at_eight_bits() {
    let upload = DynamicImage::ImageRgba16(image::ImageBuffer::from_pixel(
        50,
        70,
        Rgba([0, 0, 65535, 30000]),
    ));

    let processed = process_blocking(&png(&upload), &limits()).unwrap();

    assert_eq!(processed.content_type, "image/png");
    let large = open(&processed);
    assert_eq!(large.color(), image::ColorType::Rgba8);
    assert_eq!(large.to_rgba8().get_pixel(256, 256).0, [0, 0, 255, 117]);
}

#[test]
fn a_gif_gives_its_first_frame() {
    let green = Rgba([20, 200, 20, 255]);
    let upload = gif(90, 60, &[green, Rgba([230, 20, 20, 255])]);

    let processed = process_blocking(&upload, &limits()).unwrap();

    assert_eq!(processed.content_type, "image/jpeg");
    assert!(near(
        colour_at(&open(&processed), 256, 256),
        Rgb([20, 200, 20])
    ));
}

#[test]
fn a_webp_is_accepted() {
    let upload = webp(&DynamicImage::ImageRgba8(RgbaImage::from_pixel(
        120,
        80,
        Rgba([230, 20, 20, 255]),
    )));

    let processed = process_blocking(&upload, &limits()).unwrap();

    assert_eq!(processed.content_type, "image/jpeg");
    assert!(near(colour_at(&open(&processed), 256, 256), RED));
}

#[test]
fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
    // Any of these decoded would fail on the data, which is no zlib stream:
    // TooManyPixels shows the header alone decided.
    for (width, height) in [(100_000, 100_000), (8001, 10), (10, 8001), (7000, 7000)] {
        let refused = process_blocking(&png_claiming(width, height), &limits());
        assert!(
            matches!(refused, Err(ImageError::TooManyPixels)),
            "{width}x{height}: {refused:?}"
        );
    }
    // Within the limits the same header is read, and its data found corrupt.
    let corrupt = process_blocking(&png_claiming(600, 600), &limits());
    assert!(
        matches!(corrupt, Err(ImageError::NotAnImage)),
        "{corrupt:?}"
    );
}

#[test]
fn anything_but_an_intact_accepted_image_is_not_an_image() {
    let whole = jpeg(&sideways_photo(), None, None);
    let truncated = whole[..whole.len() * 2 / 3].to_vec();
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
    let cut = |bytes: Vec<u8>| bytes[..bytes.len() * 2 / 3].to_vec();
    let photo = DynamicImage::ImageRgb8(image::RgbImage::from_fn(300, 200, |x, y| {
        Rgb([x as u8, y as u8, (x ^ y) as u8])
    }));
    let uploads: [(&str, Vec<u8>); 12] = [
        ("a truncated JPEG", truncated),
        ("a truncated PNG", cut(png(&photo))),
        ("a truncated WebP", cut(webp(&photo))),
        (
            "a truncated GIF",
            cut(gif(300, 200, &[Rgba([1, 2, 3, 255])])),
        ),
        ("a JPEG cut after its header", whole[..200].to_vec()),
        ("a text file", b"Just some words, not pixels.\n".to_vec()),
        ("an SVG", svg.to_vec()),
        ("a BMP", [b"BM".as_slice(), &[0; 60]].concat()),
        ("a TIFF", [b"II*\0".as_slice(), &[0; 60]].concat()),
        ("an ICO", [b"\0\0\x01\0".as_slice(), &[0; 60]].concat()),
        (
            "a HEIC",
            [b"\0\0\0\x18ftypheic\0\0\0\0".as_slice(), &[0; 60]].concat(),
        ),
        ("nothing", Vec::new()),
    ];
    for (what, upload) in uploads {
        let refused = process_blocking(&upload, &limits());
        assert!(
            matches!(refused, Err(ImageError::NotAnImage)),
            "{what}: {refused:?}"
        );
    }
}

#[test]
fn a_jpeg_with_bytes_after_its_end_is_accepted() {
    // Some cameras append a trailer (a video, a second image) after the end
    // marker; the image itself is whole.
    let mut upload = jpeg(
        &sideways_photo(),
        Some(exif_with_orientation_and_gps(1)),
        None,
    );
    upload.extend_from_slice(b"\0\0\0\x18ftypmp42 and what follows");

    let processed = process_blocking(&upload, &limits()).unwrap();

    assert!(near(colour_at(&open(&processed), 256, 100), RED));
}

#[test]
fn the_byte_limit_admits_its_own_size_and_not_one_more() {
    let upload = jpeg(&sideways_photo(), None, None);
    let exact = ImageLimits {
        max_bytes: upload.len(),
        ..limits()
    };
    assert!(process_blocking(&upload, &exact).is_ok());
    let under = ImageLimits {
        max_bytes: upload.len() - 1,
        ..limits()
    };
    assert!(matches!(
        process_blocking(&upload, &under),
        Err(ImageError::TooLarge)
    ));
}

#[test]
fn the_content_hash_is_of_the_large_image_and_repeatable() {
    let upload = jpeg(&sideways_photo(), None, None);

    let first = process_blocking(&upload, &limits()).unwrap();
    let again = process_blocking(&upload, &limits()).unwrap();

    use sha2::Digest;
    let expected = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(&first.large));
    assert_eq!(first.content_hash, expected);
    assert_eq!(first, again);
    // Debug shows sizes, never the bytes.
    let shown = format!("{first:?}");
    assert!(shown.contains(&format!("large_bytes: {}", first.large.len())));
    assert!(shown.len() < 300);
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once() {
    let processor = ImageProcessor::new(1, 1, limits());
    let photo = image::RgbImage::from_fn(1200, 900, |x, y| Rgb([x as u8, y as u8, 90]));
    let upload = jpeg(&photo, None, None);

    // One thread and one place: of eight uploads at once, one runs, one
    // may wait, and the rest are refused without waiting.
    let calls = (0..8).map(|_| processor.process(upload.clone()));
    let outcomes: Vec<&str> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|outcome| match outcome {
            Ok(_) => "done",
            Err(ImageError::Busy) => "busy",
            Err(e) => panic!("unexpected: {e:?}"),
        })
        .collect();
    assert!(
        outcomes.contains(&"done") && outcomes.contains(&"busy"),
        "{outcomes:?}"
    );
    assert_eq!(processor.queued(), 0);
}

#[tokio::test]
async fn an_oversized_upload_is_refused_without_queueing() {
    let processor = ImageProcessor::new(
        1,
        1,
        ImageLimits {
            max_bytes: 10,
            ..limits()
        },
    );
    let refused = processor.process(vec![0; 11]).await;
    assert!(matches!(refused, Err(ImageError::TooLarge)));
}
