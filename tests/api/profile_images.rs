//! Profile images over the real binary, on both backends and on both stores
//! (a directory, and the S3 server of the environment): an upload served
//! upright and bare, replaced and removed with its objects deleted, gone
//! with its account; the helpers the other `profile_images_*` files share.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::{
    Account, DeleteAccountRequest, RemoveProfileImageRequest, SetProfileImageRequest,
};
use account_testkit::images::*;
use account_testkit::s3::{S3Server, S3Settings, REGION};
use futures::{Stream, TryStreamExt};
use image::{DynamicImage, GenericImageView, ImageFormat, Rgb, RgbImage};
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;
use sha2::Digest;
use tonic::Status;

use crate::helpers::*;
use crate::on_both_backends;

/// Every message of an upload fits the 64 KiB message limit.
pub(crate) const CHUNK: usize = 60_000;
/// The password of `registration()`.
pub(crate) const PASSWORD: &str = "secret123";
/// How long a test waits for the cleanup worker, which is woken right after
/// a commit.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// Where the S3 variants keep their images inside their bucket. Short:
/// s3s-fs keeps an object's metadata in one file named after the bucket and
/// the key in base64, which must fit the file system's 255 bytes.
const S3_PREFIX: &str = "img";

/// Where a test application keeps its images, and what a test reads of it.
pub(crate) enum Store {
    /// `media/` inside a temporary directory, which leaves room beside it
    /// for files the application must never serve.
    Dir(tempfile::TempDir),
    S3 {
        server: S3Settings,
        bucket: String,
    },
}

impl Store {
    pub(crate) fn dir() -> Store {
        Store::Dir(tempfile::tempdir().unwrap())
    }

    /// A fresh bucket on the S3 server of the environment; `None` (the test
    /// is skipped, with a message) when there is none.
    pub(crate) async fn s3() -> Option<Store> {
        let server = S3Server::from_env()?;
        let bucket = server.fresh_bucket().await;
        Some(Store::S3 { server, bucket })
    }

    /// The directory of a `Dir` store, as MEDIA_STORE names it.
    pub(crate) fn root(&self) -> PathBuf {
        match self {
            Store::Dir(dir) => dir.path().join("media"),
            Store::S3 { .. } => panic!("an S3 store has no directory"),
        }
    }

    pub(crate) fn settings(&self) -> Vec<(String, String)> {
        match self {
            Store::Dir(_) => vec![(
                "MEDIA_STORE".into(),
                format!("file://{}", self.root().display()),
            )],
            Store::S3 { server, bucket } => server.app_settings(bucket, S3_PREFIX),
        }
    }

    /// The name the store holds `key` under.
    pub(crate) fn object(&self, key: &str) -> String {
        match self {
            Store::Dir(_) => key.to_owned(),
            Store::S3 { .. } => format!("{S3_PREFIX}/{key}"),
        }
    }

    /// Every object in the store: the files under the directory, or every
    /// key of the bucket, prefix or not.
    pub(crate) async fn objects(&self) -> BTreeSet<String> {
        match self {
            Store::Dir(_) => {
                let root = self.root();
                let mut found = BTreeSet::new();
                walk(&root, &root, &mut found);
                found
            }
            Store::S3 { server, bucket } => {
                let store = AmazonS3Builder::new()
                    .with_endpoint(&server.endpoint)
                    .with_region(REGION)
                    .with_bucket_name(bucket)
                    .with_access_key_id(&server.access_key)
                    .with_secret_access_key(&server.secret_key)
                    .with_allow_http(true)
                    .with_virtual_hosted_style_request(false)
                    .build()
                    .unwrap();
                store
                    .list(None)
                    .map_ok(|meta| meta.location.to_string())
                    .try_collect()
                    .await
                    .unwrap()
            }
        }
    }

    /// Waits until the store holds exactly the objects of `keys`.
    pub(crate) async fn wait_for(&self, keys: &[&str]) {
        let expected: BTreeSet<String> = keys.iter().map(|k| self.object(k)).collect();
        let reached = eventually(WAIT, || async {
            (self.objects().await == expected).then_some(())
        })
        .await;
        if reached.is_none() {
            panic!(
                "expected the store to hold {expected:?}, it holds {:?}",
                self.objects().await
            );
        }
    }
}

fn walk(root: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(root, &path, found);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            let parts: Vec<_> = relative.iter().map(|p| p.to_string_lossy()).collect();
            found.insert(parts.join("/"));
        }
    }
}

/// A test application keeping its images in `store`.
pub(crate) async fn shop(backend: Backend, store: &Store) -> TestApp {
    spawn_app(backend)
        .set_all(store.settings())
        .set("IMAGE_CONCURRENCY", "2")
        .await
}

/// A new account's id.
pub(crate) async fn new_account(app: &TestApp) -> String {
    app.register(registration(&unique_email()))
        .await
        .unwrap()
        .id
}

pub(crate) async fn delete_account(app: &TestApp, id: &str) {
    app.client
        .clone()
        .delete_account(DeleteAccountRequest {
            id: id.into(),
            current_password: PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();
}

/// The messages of an upload: the account, then the file in chunks.
pub(crate) fn upload(account_id: &str, file: &[u8], chunk: usize) -> Vec<SetProfileImageRequest> {
    let first = SetProfileImageRequest {
        part: Some(Part::AccountId(account_id.into())),
    };
    std::iter::once(first)
        .chain(file.chunks(chunk).map(|c| SetProfileImageRequest {
            part: Some(Part::Chunk(c.to_vec())),
        }))
        .collect()
}

/// Sends an upload as it is and returns the account it answers.
pub(crate) async fn send(
    app: &TestApp,
    messages: impl Stream<Item = SetProfileImageRequest> + Send + 'static,
) -> Result<Account, Status> {
    app.client
        .clone()
        .set_profile_image(messages)
        .await
        .map(|r| r.into_inner().account.expect("account in response"))
}

/// Uploads `file` for `account_id`, in chunks of [`CHUNK`].
pub(crate) async fn set_image(
    app: &TestApp,
    account_id: &str,
    file: &[u8],
) -> Result<Account, Status> {
    send(app, futures::stream::iter(upload(account_id, file, CHUNK))).await
}

pub(crate) async fn remove_image(app: &TestApp, account_id: &str) -> Result<Account, Status> {
    app.client
        .clone()
        .remove_profile_image(RemoveProfileImageRequest {
            account_id: account_id.into(),
        })
        .await
        .map(|r| r.into_inner().account.expect("account in response"))
}

/// Where images are served by default: PUBLIC_BASE_URL/media.
pub(crate) fn default_base(app: &TestApp) -> String {
    format!("http://{}/media", app.http_addr)
}

/// An account's image as its urls name it: the keys of both sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    pub(crate) large: String,
    pub(crate) thumbnail: String,
}

impl Image {
    /// The image `account` points at, `None` without one. Both urls must be
    /// under `base` and name `account/profile/<id>/<hash>-512.<ext>` and
    /// the same hash at 128.
    pub(crate) fn of(account: &Account, base: &str) -> Option<Image> {
        if account.image_url.is_empty() && account.thumbnail_url.is_empty() {
            return None;
        }
        let key = |url: &str| {
            url.strip_prefix(base)
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{url} is not under {base}"))
                .to_owned()
        };
        let image = Image {
            large: key(&account.image_url),
            thumbnail: key(&account.thumbnail_url),
        };
        let prefix = format!("account/profile/{}/", account.id);
        let file = image
            .large
            .strip_prefix(&prefix)
            .expect("the account's key");
        let (hash, variant) = file.split_once('-').expect("<hash>-512.<ext>");
        assert_eq!(hash.len(), 64, "{file}");
        assert!(hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(["512.jpg", "512.png"].contains(&variant), "{file}");
        assert_eq!(image.thumbnail, image.large.replace("-512.", "-128."));
        Some(image)
    }

    pub(crate) fn hash(&self) -> &str {
        let file = self.large.rsplit('/').next().unwrap();
        &file[..64]
    }

    pub(crate) fn keys(&self) -> [&str; 2] {
        [&self.large, &self.thumbnail]
    }
}

/// GET of a key on the sidecar.
pub(crate) async fn get_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.http
        .get(app.http_url(&format!("/media/{key}")))
        .send()
        .await
        .unwrap()
}

/// The image served under `key`: its Content-Type and bytes, decoded.
pub(crate) async fn served(app: &TestApp, key: &str) -> (String, Vec<u8>, DynamicImage) {
    let response = get_key(app, key).await;
    assert_eq!(response.status(), 200, "GET {key}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap().to_vec();
    let format = match content_type.as_str() {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        other => panic!("{key} served as {other}"),
    };
    let decoded = image::load_from_memory_with_format(&bytes, format).unwrap();
    (content_type, bytes, decoded)
}

pub(crate) fn colour_at(image: &DynamicImage, x: u32, y: u32) -> Rgb<u8> {
    *image.to_rgb8().get_pixel(x, y)
}

/// Within what a JPEG's compression changes.
pub(crate) fn near(actual: Rgb<u8>, expected: Rgb<u8>) -> bool {
    actual
        .0
        .iter()
        .zip(expected.0)
        .all(|(a, e)| a.abs_diff(e) <= 24)
}

/// A JPEG of one colour, a different one for each `n`.
pub(crate) fn plain_jpeg(n: u8) -> Vec<u8> {
    let colour = Rgb([n.wrapping_mul(23), 255 - n.wrapping_mul(11), 90]);
    jpeg(&RgbImage::from_pixel(96, 64, colour), None, None)
}

on_both_backends!(an_image_on_disk_is_served_replaced_removed_and_erased);

/// The S3 variants, reported as ignored without an S3 server to run them.
mod an_image_in_s3_is_served_replaced_removed_and_erased {
    use account_testkit::Backend;

    #[cfg_attr(not(s3_tests), ignore = "set TEST_S3_ENDPOINT to run the S3 variant")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::an_image_in_s3_is_served_replaced_removed_and_erased(Backend::Sqlite).await
    }

    #[cfg_attr(
        not(all(s3_tests, postgres_tests)),
        ignore = "set TEST_S3_ENDPOINT and TEST_DATABASE_URL to run this variant"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(backend) = Backend::postgres() {
            super::an_image_in_s3_is_served_replaced_removed_and_erased(backend).await
        }
    }
}

async fn an_image_on_disk_is_served_replaced_removed_and_erased(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    image_lifecycle(&app, &store, &base).await;
}

/// The same over S3, under a key prefix, served from a MEDIA_BASE_URL of
/// its own (a CDN in front of the sidecar).
async fn an_image_in_s3_is_served_replaced_removed_and_erased(backend: Backend) {
    let Some(store) = Store::s3().await else {
        return;
    };
    let base = "https://cdn.example.com/images";
    let app = spawn_app(backend)
        .set_all(store.settings())
        .set("MEDIA_BASE_URL", format!("{base}/"))
        .await;
    image_lifecycle(&app, &store, base).await;
}

async fn image_lifecycle(app: &TestApp, store: &Store, base: &str) {
    let id = new_account(app).await;
    let first = a_sideways_photo_is_served_upright_and_bare(app, store, base, &id).await;
    replacing_and_removing_delete_the_objects(app, store, base, &id, &first).await;
    deleting_the_account_deletes_its_objects(app, store, base, &id).await;
}

async fn a_sideways_photo_is_served_upright_and_bare(
    app: &TestApp,
    store: &Store,
    base: &str,
    id: &str,
) -> Image {
    let photo = jpeg(
        &sideways_photo(),
        Some(exif_with_orientation_and_gps(6)),
        None,
    );
    assert!(photo.windows(4).any(|w| w == b"Exif"));

    // Small chunks: the file is put together again from many messages.
    let account = send(app, futures::stream::iter(upload(id, &photo, 1000)))
        .await
        .unwrap();

    let image = Image::of(&account, base).expect("an image");
    assert!(image.large.ends_with("-512.jpg"), "{image:?}");
    let (content_type, bytes, large) = served(app, &image.large).await;
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(large.dimensions(), (512, 512));
    assert_eq!(
        image.hash(),
        data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(&bytes)),
        "the key names the large image's SHA-256"
    );
    // Upright: the red block is the right half of the square.
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
    let (content_type, thumbnail_bytes, thumbnail) = served(app, &image.thumbnail).await;
    assert_eq!(content_type, "image/jpeg");
    assert_eq!(thumbnail.dimensions(), (128, 128));
    assert!(near(colour_at(&thumbnail, 100, 64), RED));
    assert!(near(colour_at(&thumbnail, 28, 64), BLUE));
    for output in [&bytes, &thumbnail_bytes] {
        assert!(!output.windows(4).any(|w| w == b"Exif"), "EXIF left");
        let markers = jpeg_markers(output);
        assert!(
            !markers.contains(&0xe1),
            "an APP1 segment left: {markers:x?}"
        );
    }

    let fetched = app.get_by_id(id).await.unwrap();
    assert_eq!(
        (&fetched.image_url, &fetched.thumbnail_url),
        (&account.image_url, &account.thumbnail_url)
    );
    // Written before the answer: the store holds both sizes, nothing else.
    assert_eq!(
        store.objects().await,
        image.keys().iter().map(|k| store.object(k)).collect()
    );
    image
}

async fn replacing_and_removing_delete_the_objects(
    app: &TestApp,
    store: &Store,
    base: &str,
    id: &str,
    first: &Image,
) {
    let replaced = set_image(app, id, &plain_jpeg(1)).await.unwrap();
    let second = Image::of(&replaced, base).expect("the new image");
    assert_ne!(second.hash(), first.hash());
    store.wait_for(&second.keys()).await;
    assert_eq!(get_key(app, &first.large).await.status(), 404);
    served(app, &second.large).await;

    let removed = remove_image(app, id).await.unwrap();
    assert_eq!(
        (removed.image_url.as_str(), removed.thumbnail_url.as_str()),
        ("", "")
    );
    let fetched = app.get_by_id(id).await.unwrap();
    assert_eq!(
        (fetched.image_url.as_str(), fetched.thumbnail_url.as_str()),
        ("", "")
    );
    store.wait_for(&[]).await;
    assert_eq!(get_key(app, &second.thumbnail).await.status(), 404);

    // Without an image, removing is answered the same.
    let again = remove_image(app, id).await.unwrap();
    assert_eq!(
        (again.image_url.as_str(), again.thumbnail_url.as_str()),
        ("", "")
    );
}

async fn deleting_the_account_deletes_its_objects(
    app: &TestApp,
    store: &Store,
    base: &str,
    id: &str,
) {
    let own = Image::of(&set_image(app, id, &plain_jpeg(2)).await.unwrap(), base).unwrap();
    let other_id = new_account(app).await;
    let other = Image::of(
        &set_image(app, &other_id, &plain_jpeg(3)).await.unwrap(),
        base,
    )
    .unwrap();
    store.wait_for(&[own.keys(), other.keys()].concat()).await;

    delete_account(app, id).await;

    // The other account's image stays.
    store.wait_for(&other.keys()).await;
    assert_eq!(get_key(app, &own.large).await.status(), 404);
    served(app, &other.large).await;
}
