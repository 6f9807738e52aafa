use axum::body::{to_bytes, Body};
use axum::http::{Method, Request};
use tower::ServiceExt;
use uuid::Uuid;

use super::*;
use crate::config::MediaLocation;
use crate::media::profile_keys;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0 not really a jpeg";

struct Fixture {
    _dir: tempfile::TempDir,
    store: MediaStore,
    /// `/media/account/profile/<uuid>/<hash>-512.jpg`, stored.
    large: String,
    /// The thumbnail's path, stored as PNG.
    thumbnail: String,
    account: Uuid,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(&MediaLocation::File(dir.path().join("media"))).unwrap();
    let account = Uuid::new_v4();
    let (large, _) = profile_keys(account, HASH, "jpg");
    let (_, thumbnail) = profile_keys(account, HASH, "png");
    store
        .put(&large, JPEG.to_vec(), "image/jpeg")
        .await
        .unwrap();
    store
        .put(&thumbnail, b"png".to_vec(), "image/png")
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        store,
        large: format!("/media/{large}"),
        thumbnail: format!("/media/{thumbnail}"),
        account,
    }
}

async fn send(
    store: &MediaStore,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = routes::<MediaStore>()
        .with_state(store.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap().to_vec();
    (parts.status, parts.headers, body)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn an_image_is_served_with_its_type_and_cached_for_ever() {
    let f = fixture().await;
    let (status, headers, body) = send(&f.store, Method::GET, &f.large, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, JPEG);
    assert_eq!(header(&headers, "content-type"), Some("image/jpeg"));
    assert_eq!(
        header(&headers, "content-length"),
        Some(JPEG.len().to_string().as_str())
    );
    assert_eq!(
        header(&headers, "cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(
        header(&headers, "etag"),
        Some(format!("\"{HASH}\"").as_str())
    );
    assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));

    let (status, headers, body) = send(&f.store, Method::GET, &f.thumbnail, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"png");
    assert_eq!(header(&headers, "content-type"), Some("image/png"));
    // A query string changes nothing.
    let (status, _, body) = send(&f.store, Method::GET, &format!("{}?v=2", f.large), &[]).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, JPEG));
}

#[tokio::test]
async fn head_gives_the_same_headers_and_no_body() {
    let f = fixture().await;
    let (_, get_headers, _) = send(&f.store, Method::GET, &f.large, &[]).await;
    let (status, headers, body) = send(&f.store, Method::HEAD, &f.large, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    for name in [
        "content-type",
        "content-length",
        "cache-control",
        "etag",
        "x-content-type-options",
    ] {
        assert_eq!(header(&headers, name), header(&get_headers, name), "{name}");
    }
    let (status, _, body) = send(
        &f.store,
        Method::HEAD,
        &f.large.replace(HASH, &"0".repeat(64)),
        &[],
    )
    .await;
    assert_eq!((status, body.len()), (StatusCode::NOT_FOUND, 0));
}

#[tokio::test]
async fn a_matching_if_none_match_is_answered_not_modified() {
    let f = fixture().await;
    let etag = format!("\"{HASH}\"");
    let weak = format!("W/\"{HASH}\"");
    let listed = format!("\"{}\", {weak}", "1".repeat(64));
    for value in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        for method in [Method::GET, Method::HEAD] {
            let (status, headers, body) = send(
                &f.store,
                method.clone(),
                &f.large,
                &[("if-none-match", value)],
            )
            .await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{method} {value}");
            assert!(body.is_empty());
            assert_eq!(header(&headers, "etag"), Some(etag.as_str()));
            assert_eq!(
                header(&headers, "cache-control"),
                Some("public, max-age=31536000, immutable")
            );
        }
    }
    // Another tag: the image itself.
    let other = format!("\"{}\"", "1".repeat(64));
    let (status, _, body) = send(
        &f.store,
        Method::GET,
        &f.large,
        &[("if-none-match", other.as_str())],
    )
    .await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, JPEG));
    // Nothing to match against: not found, even for `*`.
    let missing = f.large.replace(HASH, &"2".repeat(64));
    for value in [etag.as_str(), "*"] {
        let (status, _, _) =
            send(&f.store, Method::GET, &missing, &[("if-none-match", value)]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    }
}

#[tokio::test]
async fn a_missing_image_or_a_wrong_name_is_not_found() {
    let f = fixture().await;
    let missing = [
        f.large.replace(HASH, &"3".repeat(64)),
        f.large
            .replace(&f.account.to_string(), &Uuid::new_v4().to_string()),
        f.large.replace(".jpg", ".png"),
        f.large.replace(".jpg", ".gif"),
        f.large.replace(".jpg", ".JPG"),
        f.large.replace(".jpg", ".jpeg"),
        f.large.replace("-512", "-256"),
        f.large.replace(HASH, &HASH.to_uppercase()),
        f.large.replace(
            &f.account.to_string(),
            &f.account.to_string().to_uppercase(),
        ),
        f.large
            .replace("/media/account/profile/", "/media/account/avatar/"),
        "/media/".into(),
        "/media/x".into(),
    ];
    for path in missing {
        let (status, headers, _) = send(&f.store, Method::GET, &path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_ne!(
            header(&headers, "content-type"),
            Some("image/jpeg"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn traversal_never_reaches_the_store() {
    let f = fixture().await;
    // A file beside the store's directory, and one inside it under a name
    // that is not an image key: neither may be served.
    std::fs::write(f._dir.path().join("secret.txt"), b"secret").unwrap();
    f.store
        .put(
            "account/profile/notes.txt",
            b"secret".to_vec(),
            "text/plain",
        )
        .await
        .unwrap();
    let large = f.large.trim_start_matches("/media/");
    let attempts = [
        "/media/account/profile/../../etc/passwd".to_owned(),
        "/media/account/profile/../../../secret.txt".to_owned(),
        "/media/account/profile/notes.txt".to_owned(),
        "/media/account/profile/%2e%2e/%2e%2e/secret.txt".to_owned(),
        "/media/%2e%2e/secret.txt".to_owned(),
        format!(
            "/media/{}",
            large.replace("account/profile", "account%2Fprofile")
        ),
        format!("/media/{}", large.replace('/', "%2F")),
        format!("/media/{}", large.replace("-512", "%2D512")),
        format!("/media/{}", large.replace('/', "\\")),
        "/media//etc/passwd".to_owned(),
        format!("/media//{large}"),
        format!("/media/./{large}"),
        format!("/media/{large}/.."),
        format!("/media/{large}/."),
        format!("/media/{large}/"),
        format!(
            "/media/account/profile/../profile/{}",
            large.trim_start_matches("account/profile/")
        ),
    ];
    for path in &attempts {
        for method in [Method::GET, Method::HEAD] {
            let (status, _, body) = send(&f.store, method.clone(), path, &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}");
            assert!(!body.windows(6).any(|w| w == b"secret"), "{path}");
        }
    }
    // The genuine path still works.
    let (status, _, _) = send(&f.store, Method::GET, &f.large, &[]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_store_that_fails_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    // Where a directory of the key should be, a file: every read fails
    // with an error other than "not found".
    let root = dir.path().join("media");
    let store = MediaStore::open(&MediaLocation::File(root.clone())).unwrap();
    let account = Uuid::new_v4();
    std::fs::create_dir_all(root.join("account/profile")).unwrap();
    std::fs::write(root.join(format!("account/profile/{account}")), b"file").unwrap();
    let (large, _) = profile_keys(account, HASH, "jpg");
    let path = format!("/media/{large}");
    for method in [Method::GET, Method::HEAD] {
        let (status, headers, _) = send(&store, method.clone(), &path, &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{method}");
        assert_eq!(header(&headers, "retry-after"), Some("1"));
    }
}
