//! What one profile image upload costs on one core: a 2-megapixel JPEG
//! decoded, cropped, resized to 512² and 128², and encoded. `cargo bench
//! --bench profile_images` prints the figure; with `PROFILE_IMAGE_SAMPLE` set
//! to a path, the upload is also written there, for `vipsthumbnail` to make
//! the same 512 square from (`vipsthumbnail SAMPLE -s 512 -m centre -o
//! out.jpg[Q=85]`).

use std::hint::black_box;
use std::time::Duration;

use account_service::media::image::{process_blocking, ImageLimits};
use criterion::{criterion_group, criterion_main, Criterion};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, Rgb, RgbImage};

/// 1732 × 1155: 2.0 megapixels in a camera's 3:2.
const WIDTH: u32 = 1732;
const HEIGHT: u32 = 1155;

/// Smooth gradients with fine noise over them, as a photograph has: a flat
/// image would make the JPEG decoder's work unrealistically light.
fn photograph() -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    let image = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let noise = (state % 24) as i32 - 12;
        let channel = |base: i32| (base + noise).clamp(0, 255) as u8;
        Rgb([
            channel((x * 255 / WIDTH) as i32),
            channel((y * 255 / HEIGHT) as i32),
            channel(((x + y) * 255 / (WIDTH + HEIGHT)) as i32),
        ])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(
            image.as_raw(),
            WIDTH,
            HEIGHT,
            image::ExtendedColorType::Rgb8,
        )
        .expect("encode the sample");
    out
}

fn profile_images(c: &mut Criterion) {
    let upload = photograph();
    if let Some(path) = std::env::var_os("PROFILE_IMAGE_SAMPLE") {
        std::fs::write(path, &upload).expect("write the sample");
    }
    let limits = ImageLimits::default();
    c.bench_function("profile_image/2mp_jpeg", |b| {
        b.iter(|| process_blocking(black_box(&upload), &limits).expect("processed"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(10));
    targets = profile_images
}
criterion_main!(benches);
