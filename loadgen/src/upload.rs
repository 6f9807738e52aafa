//! Profile images under load: one file uploaded again and again as one
//! account's image (SetProfileImage streams), and the photo-like JPEGs to
//! upload.

use std::io::Write;
use std::sync::Arc;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::SetProfileImageRequest;
use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, Rgb, RgbImage};
use tonic::Status;

use crate::{connect, drive, finish, registration, Load};

/// Bytes of the file each message after the first carries: a message with
/// its framing stays under the service's 64 KiB limit.
pub const CHUNK_BYTES: usize = 60_000;

/// The messages of one upload: the account's id, then the file in chunks of
/// [`CHUNK_BYTES`].
pub fn upload_messages(account_id: &str, file: &[u8]) -> Vec<SetProfileImageRequest> {
    std::iter::once(Part::AccountId(account_id.to_owned()))
        .chain(file.chunks(CHUNK_BYTES).map(|c| Part::Chunk(c.to_vec())))
        .map(|part| SetProfileImageRequest { part: Some(part) })
        .collect()
}

/// Registers one account, then uploads `file` as its profile image at the
/// configured concurrency or rate; an answer without an `image_url` counts
/// as INTERNAL.
pub async fn upload(load: &Load, file: &str) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {file}"))?;
    anyhow::ensure!(!bytes.is_empty(), "{file} is empty");
    let channel = connect(&Load {
        connections: 1,
        ..load.clone()
    })
    .await?
    .remove(0);
    let email = format!(
        "lg-upload-{}@loadgen.example",
        uuid::Uuid::new_v4().simple()
    );
    let account = AccountServiceClient::new(channel)
        .register(registration(email))
        .await
        .context("cannot register the account to upload for")?
        .into_inner()
        .account
        .context("Register answered no account")?;
    // Built once: each call sends a copy, the file read before the clock starts.
    let messages = Arc::new(upload_messages(&account.id, &bytes));
    let report = drive("upload", load, move |_, channel| {
        let messages = Arc::clone(&messages);
        async move {
            let stream = tokio_stream::iter(messages.to_vec());
            let answer = AccountServiceClient::new(channel)
                .set_profile_image(stream)
                .await?
                .into_inner();
            match answer.account {
                Some(account) if !account.image_url.is_empty() => Ok(()),
                _ => Err(Status::internal("SetProfileImage answered no image_url")),
            }
        }
    })
    .await?;
    finish(&report, load)
}

/// A photo-like picture: smooth gradients and soft shapes under fine noise
/// of amplitude `noise`, so that JPEG compresses it about as it does a
/// photograph (a flat picture would be far smaller, pure noise far larger).
/// The same arguments always give the same pixels.
pub fn photo(width: u32, height: u32, noise: u8) -> RgbImage {
    // xorshift64*: noise needs no quality, only speed and repeatability.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32
    };
    let span = 2 * u64::from(noise) + 1;
    RgbImage::from_fn(width, height, |x, y| {
        let fx = x as f32 / width.max(1) as f32;
        let fy = y as f32 / height.max(1) as f32;
        let wave = ((fx * 9.0).sin() * (fy * 7.0).cos() + 1.0) * 0.5;
        let disc = 1.0 - ((fx - 0.6).powi(2) + (fy - 0.45).powi(2)).sqrt().min(0.3) / 0.3;
        let base = [
            60.0 + 140.0 * fy + 40.0 * disc,
            80.0 + 110.0 * wave,
            210.0 - 150.0 * fx - 30.0 * disc,
        ];
        Rgb(base.map(|v| {
            let jitter = (next() % span) as f32 - f32::from(noise);
            (v + jitter).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// Writes [`photo`] as a JPEG of `quality` to `out`; returns its size.
pub fn make_jpeg(
    width: u32,
    height: u32,
    quality: u8,
    noise: u8,
    out: &str,
) -> anyhow::Result<u64> {
    anyhow::ensure!(width > 0 && height > 0, "the picture needs pixels");
    let picture = photo(width, height, noise);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot create {out}"))?,
    );
    JpegEncoder::new_with_quality(&mut file, quality)
        .write_image(
            picture.as_raw(),
            width,
            height,
            image::ExtendedColorType::Rgb8,
        )
        .context("cannot encode the JPEG")?;
    file.flush()
        .with_context(|| format!("cannot write {out}"))?;
    let size = std::fs::metadata(out)?.len();
    println!("{out}: {width}x{height} JPEG, quality {quality}, {size} bytes");
    Ok(size)
}

#[cfg(test)]
mod tests;
