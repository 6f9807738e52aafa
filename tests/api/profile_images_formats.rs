//! What SetProfileImage makes of a file, over the real binary on both
//! backends: each accepted format, the files it refuses and why, and the
//! byte limit, exact and enforced while the upload still streams.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::SetProfileImageRequest;
use account_testkit::images::*;
use image::{DynamicImage, GenericImageView, Rgb, Rgba, RgbaImage};
use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use crate::profile_images::*;

const NOT_AN_IMAGE: &str =
    "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";
const TOO_WIDE: &str = "Ensure this image has no more than 8000 pixels on each side.";

fn too_large(max_bytes: usize) -> String {
    format!("Ensure this image has no more than {max_bytes} bytes.")
}

on_both_backends!(
    transparency_stays_png_and_every_format_is_accepted,
    files_that_are_no_accepted_image_are_refused,
    the_byte_limit_admits_its_own_size_and_not_one_more,
    an_upload_past_the_limit_is_refused_while_it_still_streams,
);

async fn transparency_stays_png_and_every_format_is_accepted(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    let id = new_account(&app).await;

    // Left half fully transparent, right half opaque red.
    let half_clear = DynamicImage::ImageRgba8(RgbaImage::from_fn(300, 300, |x, _| {
        if x < 150 {
            Rgba([0, 0, 0, 0])
        } else {
            Rgba([230, 20, 20, 255])
        }
    }));
    let account = set_image(&app, &id, &png(&half_clear)).await.unwrap();
    let image = Image::of(&account, &base).unwrap();
    assert!(image.large.ends_with("-512.png"), "{image:?}");
    assert!(image.thumbnail.ends_with("-128.png"), "{image:?}");
    let (content_type, bytes, large) = served(&app, &image.large).await;
    assert_eq!(content_type, "image/png");
    assert_eq!(png_chunks(&bytes), ["IHDR", "IDAT", "IEND"]);
    let large = large.to_rgba8();
    assert_eq!(large.dimensions(), (512, 512));
    assert_eq!(large.get_pixel(20, 256).0[3], 0);
    assert_eq!(large.get_pixel(500, 256).0, [230, 20, 20, 255]);
    let (content_type, _, thumbnail) = served(&app, &image.thumbnail).await;
    assert_eq!(content_type, "image/png");
    assert_eq!(thumbnail.dimensions(), (128, 128));

    // A GIF gives its first frame; a WebP is read; both opaque, so JPEG.
    let green = Rgb([20, 200, 20]);
    let animation = gif(
        90,
        60,
        &[Rgba([20, 200, 20, 255]), Rgba([230, 20, 20, 255])],
    );
    let red = DynamicImage::ImageRgba8(RgbaImage::from_pixel(120, 80, Rgba([230, 20, 20, 255])));
    for (what, file, colour) in [("GIF", animation, green), ("WebP", webp(&red), RED)] {
        let account = set_image(&app, &id, &file).await.unwrap();
        let image = Image::of(&account, &base).unwrap();
        assert!(image.large.ends_with("-512.jpg"), "{what}: {image:?}");
        let (content_type, _, large) = served(&app, &image.large).await;
        assert_eq!(content_type, "image/jpeg", "{what}");
        assert_eq!(large.dimensions(), (512, 512), "{what}");
        assert!(near(colour_at(&large, 256, 256), colour), "{what}");
        served(&app, &image.thumbnail).await;
    }
}

async fn files_that_are_no_accepted_image_are_refused(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let id = new_account(&app).await;
    let before = set_image(&app, &id, &plain_jpeg(0)).await.unwrap();
    let objects = store.objects().await;
    assert_eq!(objects.len(), 2);

    let whole = jpeg(&sideways_photo(), None, None);
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>"#;
    let refused: [(&str, Vec<u8>, &str); 5] = [
        (
            "a PNG claiming 100000x100000",
            png_claiming(100_000, 100_000),
            TOO_WIDE,
        ),
        (
            "a truncated JPEG",
            whole[..whole.len() * 2 / 3].to_vec(),
            NOT_AN_IMAGE,
        ),
        (
            "a text file",
            b"Just some words, not pixels.\n".to_vec(),
            NOT_AN_IMAGE,
        ),
        ("an SVG", svg.to_vec(), NOT_AN_IMAGE),
        // Over the limit, though decoding it would only fail on its data.
        ("a PNG claiming 8001x10", png_claiming(8001, 10), TOO_WIDE),
    ];
    for (what, file, message) in refused {
        let status = set_image(&app, &id, &file).await.unwrap_err();

        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(
            violations(&status),
            [("image".to_owned(), message.to_owned())],
            "{what}"
        );
        let now = app.get_by_id(&id).await.unwrap();
        assert_eq!(
            (&now.image_url, &now.thumbnail_url),
            (&before.image_url, &before.thumbnail_url),
            "{what} changed the image"
        );
        assert_eq!(store.objects().await, objects, "{what} left an object");
    }
}

async fn the_byte_limit_admits_its_own_size_and_not_one_more(backend: Backend) {
    let exact = jpeg(&sideways_photo(), None, None);
    let limit = exact.len();
    let store = Store::dir();
    let app = spawn_app(backend)
        .set_all(store.settings())
        .set("PROFILE_IMAGE_MAX_BYTES", limit.to_string())
        .await;
    let id = new_account(&app).await;

    let accepted = send(&app, futures::stream::iter(upload(&id, &exact, 1000)))
        .await
        .unwrap();
    let objects = store.objects().await;

    // A byte after a JPEG's end is no harm to the image: only the size
    // refuses it, on the last chunk, which holds that byte alone.
    let mut messages = upload(&id, &exact, limit);
    messages.push(SetProfileImageRequest {
        part: Some(Part::Chunk(vec![0])),
    });
    let status = send(&app, futures::stream::iter(messages))
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violations(&status),
        [("image".to_owned(), too_large(limit))]
    );
    let now = app.get_by_id(&id).await.unwrap();
    assert_eq!(now.image_url, accepted.image_url);
    assert_eq!(store.objects().await, objects);
}

async fn an_upload_past_the_limit_is_refused_while_it_still_streams(backend: Backend) {
    let limit = 100_000;
    let store = Store::dir();
    let app = spawn_app(backend)
        .set_all(store.settings())
        .set("PROFILE_IMAGE_MAX_BYTES", limit.to_string())
        .await;
    let id = new_account(&app).await;

    // A file that never ends: an answer proves the service stopped reading
    // at the limit.
    let sent = Arc::new(AtomicUsize::new(0));
    let chunks = {
        let sent = Arc::clone(&sent);
        std::iter::repeat_with(move || {
            sent.fetch_add(1, Ordering::Relaxed);
            SetProfileImageRequest {
                part: Some(Part::Chunk(vec![0xff; 10_000])),
            }
        })
    };
    let messages = upload(&id, &[], 1).into_iter().chain(chunks);
    let answer = tokio::time::timeout(WAIT, send(&app, futures::stream::iter(messages))).await;

    let status = match answer {
        Ok(outcome) => outcome.unwrap_err(),
        Err(_) => panic!(
            "no answer after {} chunks: the upload was read past the limit",
            sent.load(Ordering::Relaxed)
        ),
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        violations(&status),
        [("image".to_owned(), too_large(limit))]
    );
    assert!(store.objects().await.is_empty());
    assert_eq!(app.get_by_id(&id).await.unwrap().image_url, "");
}
