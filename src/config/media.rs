//! Media settings: where profile images are stored, how large an upload may
//! be, how many are processed at once, and the address they are served at.

use std::path::PathBuf;

use clap::Args;
use secrecy::SecretString;

use super::parse::{bounded, secret, shown};
use super::Settings;

/// The largest PROFILE_IMAGE_MAX_BYTES may be: 20 MiB.
pub const MAX_PROFILE_IMAGE_BYTES: u64 = 20 * 1024 * 1024;
/// The most IMAGE_CONCURRENCY may be.
pub const MAX_IMAGE_CONCURRENCY: u64 = 256;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Profile images")]
pub struct MediaSettings {
    /// Where profile images are stored: file://DIR (created when missing; a
    /// relative DIR is in the working directory) or s3://BUCKET[/PREFIX],
    /// reached with AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY.
    #[arg(long = "media-store", env = "MEDIA_STORE", default_value = "file://media",
        value_parser = MediaLocation::parse)]
    pub location: MediaLocation,
    /// Largest profile image upload, in bytes (at most 20 MiB).
    #[arg(long, env, default_value = "5242880",
        value_parser = bounded::<usize>(1, MAX_PROFILE_IMAGE_BYTES))]
    pub profile_image_max_bytes: usize,
    /// Images decoded and resized at once (default: the number of cores).
    #[arg(long, env, default_value_t = default_image_concurrency(),
        value_parser = bounded::<usize>(1, MAX_IMAGE_CONCURRENCY))]
    pub image_concurrency: usize,
    /// Address profile images are served at, an http(s) URL. Unset or
    /// empty: PUBLIC_BASE_URL followed by /media.
    #[arg(long, env, default_value = "", value_parser = media_base_url)]
    pub media_base_url: String,
    #[command(flatten)]
    pub s3: S3Access,
}

/// How an `s3://` store is reached. Each value set here is used as given;
/// the AWS_* variables not listed (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_S3,
/// web identity and container credentials…) are read as the AWS SDKs do.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Profile images")]
pub struct S3Access {
    /// S3 endpoint of a server other than AWS (MinIO, s3s, …); an http://
    /// endpoint is reached over plain HTTP. Unset: AWS itself, over HTTPS.
    #[arg(long, env = "AWS_ENDPOINT_URL", value_parser = endpoint_url)]
    pub aws_endpoint_url: Option<String>,
    /// Region of the bucket (default: AWS_DEFAULT_REGION, else us-east-1).
    #[arg(long, env = "AWS_REGION")]
    pub aws_region: Option<String>,
    /// Access key id of the S3 credentials.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true, value_parser = secret)]
    pub aws_access_key_id: Option<SecretString>,
    /// Secret access key of the S3 credentials.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = secret)]
    pub aws_secret_access_key: Option<SecretString>,
    /// Session token of temporary S3 credentials.
    #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true, value_parser = secret)]
    pub aws_session_token: Option<SecretString>,
}

/// Where blobs are kept, decided once from MEDIA_STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLocation {
    /// A directory, absolute or relative to the working directory.
    File(PathBuf),
    /// An S3 bucket, and the key prefix inside it (empty for none), without
    /// a leading or trailing `/`.
    S3 { bucket: String, prefix: String },
}

impl MediaLocation {
    /// `file://DIR` or `s3://BUCKET[/PREFIX]`. Read as written rather than
    /// as a URL: `file://media` is the directory `media`, not a host.
    pub fn parse(raw: &str) -> Result<MediaLocation, String> {
        let raw = raw.trim();
        if let Some(dir) = raw.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(
                    "file:// needs a directory, e.g. file://media or file:///var/lib/account/media"
                        .into(),
                );
            }
            return Ok(MediaLocation::File(PathBuf::from(dir)));
        }
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err("s3:// needs a bucket, e.g. s3://my-bucket/media".into());
            }
            if !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(format!(
                    "'{}' is not a bucket name (letters, digits, '.', '-' and '_')",
                    shown(bucket)
                ));
            }
            let prefix = prefix.trim_end_matches('/');
            // The prefix becomes part of every key: nothing that a store
            // could read as a different path.
            let segment_ok = |s: &str| {
                !s.is_empty()
                    && s != "."
                    && s != ".."
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            };
            if !prefix.is_empty() && !prefix.split('/').all(segment_ok) {
                return Err(format!(
                    "'{}' is not a key prefix (segments of letters, digits, '.', '-' and '_', \
                     separated by single '/')",
                    shown(prefix)
                ));
            }
            return Ok(MediaLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        Err(format!(
            "'{}' is not file://DIR or s3://BUCKET[/PREFIX]",
            shown(raw)
        ))
    }
}

impl std::fmt::Display for MediaLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaLocation::File(dir) => write!(f, "file://{}", dir.display()),
            MediaLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            MediaLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An http(s) URL with a host and no credentials in it.
fn endpoint_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    match url::Url::parse(raw) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(raw.to_owned())
        }
        // Not echoed: a mistyped value could be a key pasted in the wrong place.
        _ => Err("must be an http:// or https:// URL with a host and no credentials".into()),
    }
}

/// The number of cores, within IMAGE_CONCURRENCY's bounds.
fn default_image_concurrency() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_IMAGE_CONCURRENCY as usize)
}

/// Empty, or an absolute http(s) URL with a host and neither query nor
/// fragment (keys are appended to it); kept without a trailing `/`.
fn media_base_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    let url = url::Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must have no query or fragment: image paths are appended to it".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials: it is given to every client".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

impl Settings {
    /// Where profile images are served, without a trailing `/`:
    /// MEDIA_BASE_URL, or PUBLIC_BASE_URL followed by `/media`.
    pub fn media_base_url(&self) -> String {
        match self.media.media_base_url.as_str() {
            "" => format!(
                "{}/media",
                self.server.public_base_url.as_str().trim_end_matches('/')
            ),
            url => url.trim_end_matches('/').to_owned(),
        }
    }
}

#[cfg(test)]
mod tests;
