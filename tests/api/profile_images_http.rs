//! The sidecar's /media route over the real binary on both backends: images
//! cached for ever and revalidated by their strong ETag, HEAD without a
//! body, and nothing served but a stored image's exact key, whatever a path
//! tries (traversal, escapes, empty segments, files beside the images).

use account_testkit::images::*;
use image::{DynamicImage, Rgba, RgbaImage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::on_both_backends;
use crate::profile_images::*;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

on_both_backends!(
    images_are_cached_for_ever_and_revalidated,
    nothing_but_an_exact_image_key_is_served,
);

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn images_are_cached_for_ever_and_revalidated(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    let id = new_account(&app).await;
    let clear = DynamicImage::ImageRgba8(RgbaImage::from_pixel(40, 40, Rgba([0, 0, 255, 100])));
    let jpeg_image =
        Image::of(&set_image(&app, &id, &plain_jpeg(0)).await.unwrap(), &base).unwrap();
    let other = new_account(&app).await;
    let png_image =
        Image::of(&set_image(&app, &other, &png(&clear)).await.unwrap(), &base).unwrap();

    let mut tags = Vec::new();
    for (key, content_type) in [
        (&jpeg_image.large, "image/jpeg"),
        (&jpeg_image.thumbnail, "image/jpeg"),
        (&png_image.large, "image/png"),
        (&png_image.thumbnail, "image/png"),
    ] {
        let url = app.http_url(&format!("/media/{key}"));
        let full = app.http.get(&url).send().await.unwrap();
        assert_eq!(full.status(), 200, "{key}");
        assert_eq!(header(&full, "content-type"), content_type);
        assert_eq!(header(&full, "cache-control"), IMMUTABLE);
        assert_eq!(header(&full, "x-content-type-options"), "nosniff");
        let etag = header(&full, "etag").to_owned();
        assert!(
            etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
            "not a strong ETag: {etag}"
        );
        let length = header(&full, "content-length").to_owned();
        let body = full.bytes().await.unwrap();
        assert_eq!(length, body.len().to_string());

        for tag in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
        ] {
            let revalidated = app
                .http
                .get(&url)
                .header("If-None-Match", &tag)
                .send()
                .await
                .unwrap();
            assert_eq!(revalidated.status(), 304, "If-None-Match: {tag}");
            assert_eq!(header(&revalidated, "etag"), etag);
            assert_eq!(header(&revalidated, "cache-control"), IMMUTABLE);
            assert!(revalidated.bytes().await.unwrap().is_empty());
        }
        let changed = app
            .http
            .get(&url)
            .header("If-None-Match", "\"something-else\"")
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 200);
        assert_eq!(changed.bytes().await.unwrap(), body);

        let head = app.http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "content-type"), content_type);
        assert_eq!(header(&head, "content-length"), length);
        assert_eq!(header(&head, "etag"), etag);
        assert_eq!(header(&head, "cache-control"), IMMUTABLE);
        assert_eq!(header(&head, "x-content-type-options"), "nosniff");
        assert!(head.bytes().await.unwrap().is_empty());
        tags.push(etag);
    }
    assert_ne!(tags[0], tags[2], "two images, two tags");
}

/// The status of a GET of `path` sent exactly as written: a URL parser
/// would resolve its dot segments and decode `%2e` first.
async fn raw_get(app: &TestApp, path: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(app.http_addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.http_addr
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    let status_line = answer.lines().next().unwrap_or_default();
    status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("GET {path}: no status in {status_line:?}"))
}

async fn nothing_but_an_exact_image_key_is_served(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    let id = new_account(&app).await;
    let image = Image::of(&set_image(&app, &id, &plain_jpeg(0)).await.unwrap(), &base).unwrap();
    let hash = image.hash().to_owned();
    // Files the route must never hand out: beside the images, inside an
    // account's folder, and outside the media directory.
    let root = store.root();
    std::fs::write(root.join("secret.txt"), "root secret").unwrap();
    std::fs::write(
        root.join(format!("account/profile/{id}/notes.txt")),
        "notes",
    )
    .unwrap();
    std::fs::write(root.parent().unwrap().join("outside.txt"), "outside").unwrap();

    // Sent raw, the key itself is served: the refusals below are the
    // paths', not the client's.
    assert_eq!(raw_get(&app, &format!("/media/{}", image.large)).await, 200);
    let refused = [
        "/media/account/profile/../../../etc/passwd".to_owned(),
        "/media/%2e%2e/%2e%2e/etc/passwd".to_owned(),
        "/media//etc/passwd".to_owned(),
        "/media/secret.txt".to_owned(),
        format!("/media/account/profile/{id}/notes.txt"),
        "/media/../outside.txt".to_owned(),
        "/media/%2e%2e/outside.txt".to_owned(),
        "/media/..%2foutside.txt".to_owned(),
        format!("/media/account%2Fprofile%2F{id}%2F{hash}-512.jpg"),
        format!("/media/account/profile/{id}/{hash}-512.jpg%00"),
        format!("/media/account/profile/{id}/{hash}-512.jpg%00.png"),
        format!("/media/account/profile/{id}/../{id}/{hash}-512.jpg"),
        format!("/media/account/profile/./{id}/{hash}-512.jpg"),
        format!("/media/account/profile//{id}/{hash}-512.jpg"),
        format!("/media/account/profile/{id}/%2e/{hash}-512.jpg"),
        format!("/media/account/profile/{id}/{hash}-512.jp%67"),
        format!("/media/account/profile/{id}\\..\\{id}\\{hash}-512.jpg"),
        format!(
            "/media/account/profile/{}/{hash}-512.jpg",
            id.to_uppercase()
        ),
        format!(
            "/media/account/profile/{id}/{}-512.jpg",
            hash.to_uppercase()
        ),
        format!("/media/account/profile/{id}/{hash}-256.jpg"),
        format!("/media/account/profile/{id}/{hash}-512.png"),
        format!("/media/account/profile/{id}/{hash}-512.jpg/"),
        format!("/media/ACCOUNT/profile/{id}/{hash}-512.jpg"),
        format!(
            "/media/{}",
            root.parent().unwrap().join("outside.txt").display()
        ),
    ];
    for path in &refused {
        assert_eq!(raw_get(&app, path).await, 404, "GET {path}");
    }

    // A key of the right shape that names nothing.
    let unknown = format!("account/profile/{id}/{}-512.jpg", "0".repeat(64));
    let url = app.http_url(&format!("/media/{unknown}"));
    let missing = app.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "x-content-type-options"), "nosniff");
    assert_eq!(app.http.head(&url).send().await.unwrap().status(), 404);
    let conditional = app
        .http
        .get(&url)
        .header("If-None-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(conditional.status(), 404);
}
