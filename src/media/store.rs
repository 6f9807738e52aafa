//! The blob store of profile images: a directory or an S3 bucket behind
//! `object_store`, under an optional key prefix, with errors that name the
//! operation and the key but never a credential.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use secrecy::{ExposeSecret, SecretString};
use tokio_stream::StreamExt;

use super::key::PROFILE_PREFIX;
use crate::config::{MediaLocation, S3Access};
use crate::telemetry::error_chain;

/// Where blobs are kept: cheap to clone, shared by every clone.
#[derive(Clone)]
pub struct MediaStore {
    store: Arc<dyn ObjectStore>,
    /// Put before every key: the PREFIX of `s3://BUCKET/PREFIX`, or nothing.
    prefix: String,
    /// S3 keeps a Content-Type with each object; a directory cannot, and
    /// `object_store` refuses attributes it cannot keep.
    keeps_attributes: bool,
    /// Credentials taken from the environment: S3 error bodies may echo the
    /// access key id, so every error's text is cleared of them.
    secrets: Arc<[SecretString]>,
    /// MEDIA_STORE as configured, for errors and logs.
    location: Arc<str>,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MediaStore").field(&self.location).finish()
    }
}

/// A media store that could not be opened or used. Its text names the
/// operation, the key and the store, never a credential.
#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    #[error("cannot create the media directory {}", dir.display())]
    Directory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the media store {location}: {detail}")]
    Open { location: String, detail: String },
    #[error("'{0}' is not a media key")]
    InvalidKey(String),
    #[error("{operation} of {key} in the media store {location} failed: {detail}")]
    Failed {
        operation: &'static str,
        key: String,
        location: Arc<str>,
        /// The whole error chain, credentials removed.
        detail: String,
    },
}

impl MediaStore {
    /// The store MEDIA_STORE names, S3 reached with the AWS_* variables of
    /// the environment alone: [`MediaStore::open_with`] without settings.
    pub fn open(location: &MediaLocation) -> Result<MediaStore, MediaStoreError> {
        MediaStore::open_with(location, &S3Access::default())
    }

    /// The store MEDIA_STORE names. A directory is created when missing; a
    /// bucket is not contacted until the first operation.
    ///
    /// S3 takes the usual AWS_* variables (AWS_ENDPOINT_URL or
    /// AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN…), the values set in `s3`
    /// taking precedence, and addresses the bucket in the path, as MinIO and
    /// other S3-compatible servers expect; plain HTTP is allowed only when
    /// the endpoint is an `http://` URL.
    pub fn open_with(
        location: &MediaLocation,
        s3: &S3Access,
    ) -> Result<MediaStore, MediaStoreError> {
        let shown = location.to_string();
        match location {
            MediaLocation::File(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| MediaStoreError::Directory {
                    dir: dir.clone(),
                    source,
                })?;
                // The blob must be on disk before the row that names it is
                // committed: a crash must not leave a row without its image.
                let store = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| MediaStoreError::Open {
                        location: shown.clone(),
                        detail: error_chain(&e),
                    })?
                    .with_fsync(true);
                Ok(MediaStore::from_store(Arc::new(store), &shown, "", false))
            }
            MediaLocation::S3 { bucket, prefix } => {
                let builder = with_access(AmazonS3Builder::from_env(), s3)
                    .with_bucket_name(bucket)
                    .with_virtual_hosted_style_request(false);
                let endpoint = builder
                    .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
                    .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint))
                    .unwrap_or_default();
                let http = endpoint
                    .get(..7)
                    .is_some_and(|s| s.eq_ignore_ascii_case("http://"));
                let secrets: Arc<[SecretString]> = [
                    AmazonS3ConfigKey::AccessKeyId,
                    AmazonS3ConfigKey::SecretAccessKey,
                    AmazonS3ConfigKey::Token,
                ]
                .iter()
                .filter_map(|key| builder.get_config_value(key))
                .filter(|value| !value.is_empty())
                .map(SecretString::from)
                .collect();
                let store =
                    builder
                        .with_allow_http(http)
                        .build()
                        .map_err(|e| MediaStoreError::Open {
                            location: shown.clone(),
                            detail: redact(&error_chain(&e), &secrets),
                        })?;
                let mut media = MediaStore::from_store(Arc::new(store), &shown, prefix, true);
                media.secrets = secrets;
                Ok(media)
            }
        }
    }

    /// A store the caller built (an in-memory one in tests), its keys under
    /// `prefix`; `keeps_attributes` when it keeps a Content-Type per object.
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        location: &str,
        prefix: &str,
        keeps_attributes: bool,
    ) -> MediaStore {
        MediaStore {
            store,
            prefix: prefix.trim_matches('/').to_owned(),
            keeps_attributes,
            secrets: Arc::new([]),
            location: location.into(),
        }
    }

    /// Stores `bytes` under `key`, replacing what was there, with its
    /// Content-Type where the store keeps one.
    pub async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), MediaStoreError> {
        let path = self.path(key)?;
        let mut options = PutOptions::default();
        if self.keeps_attributes {
            let mut attributes = Attributes::new();
            attributes.insert(Attribute::ContentType, content_type.to_owned().into());
            options.attributes = attributes;
        }
        self.store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
            .map_err(|e| self.failed("put", key, &e))?;
        Ok(())
    }

    /// The object under `key`, or `None` when there is none.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>, MediaStoreError> {
        let path = self.path(key)?;
        let read = async { self.store.get(&path).await?.bytes().await };
        match read.await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("get", key, &e)),
        }
    }

    /// The size in bytes of the object under `key`, without reading it, or
    /// `None` when there is none.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, MediaStoreError> {
        let path = self.path(key)?;
        match self.store.head(&path).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("head", key, &e)),
        }
    }

    /// Whether an object is stored under `key`.
    pub async fn exists(&self, key: &str) -> Result<bool, MediaStoreError> {
        Ok(self.size(key).await?.is_some())
    }

    /// Deletes the object under `key`; one already gone is no error, so a
    /// delete can be retried.
    pub async fn delete(&self, key: &str) -> Result<(), MediaStoreError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", key, &e)),
        }
    }

    /// Every object under `account/profile/`, by key, with the time it was
    /// last written: what a sweep for images no account names goes through.
    pub async fn list_profile_objects(
        &self,
    ) -> Result<Vec<(String, DateTime<Utc>)>, MediaStoreError> {
        let prefix = self.path(PROFILE_PREFIX)?;
        let mut listing = self.store.list(Some(&prefix));
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| self.failed("list", PROFILE_PREFIX, &e))?;
            let full = meta.location.as_ref();
            let key = match self.prefix.as_str() {
                "" => Some(full),
                prefix => full
                    .strip_prefix(prefix)
                    .and_then(|rest| rest.strip_prefix('/')),
            };
            // A listing under the prefix yields only keys under it; anything
            // else would be a store's quirk, and is not ours to touch.
            if let Some(key) = key {
                objects.push((key.to_owned(), meta.last_modified));
            }
        }
        Ok(objects)
    }

    /// The store's path of `key`, behind the prefix.
    fn path(&self, key: &str) -> Result<Path, MediaStoreError> {
        let key = key.trim_end_matches('/');
        let full = match self.prefix.as_str() {
            "" => key.to_owned(),
            prefix => format!("{prefix}/{key}"),
        };
        match Path::parse(&full) {
            Ok(path) if !key.is_empty() && !key.starts_with('/') => Ok(path),
            _ => Err(MediaStoreError::InvalidKey(
                key.chars().filter(|c| !c.is_control()).take(200).collect(),
            )),
        }
    }

    fn failed(
        &self,
        operation: &'static str,
        key: &str,
        e: &object_store::Error,
    ) -> MediaStoreError {
        MediaStoreError::Failed {
            operation,
            key: key.to_owned(),
            location: Arc::clone(&self.location),
            detail: redact(&error_chain(e), &self.secrets),
        }
    }
}

/// `builder` with the values `s3` sets (an empty one is unset).
fn with_access(builder: AmazonS3Builder, s3: &S3Access) -> AmazonS3Builder {
    let set = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let secret = |value: &Option<SecretString>| {
        value
            .as_ref()
            .map(|v| v.expose_secret().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut builder = builder;
    if let Some(endpoint) = set(&s3.aws_endpoint_url) {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = set(&s3.aws_region) {
        builder = builder.with_region(region);
    }
    if let Some(key_id) = secret(&s3.aws_access_key_id) {
        builder = builder.with_access_key_id(key_id);
    }
    if let Some(key) = secret(&s3.aws_secret_access_key) {
        builder = builder.with_secret_access_key(key);
    }
    if let Some(token) = secret(&s3.aws_session_token) {
        builder = builder.with_token(token);
    }
    builder
}

/// `text` with every secret replaced.
fn redact(text: &str, secrets: &[SecretString]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| {
        text.replace(secret.expose_secret(), "[REDACTED]")
    })
}

#[cfg(test)]
mod tests;
