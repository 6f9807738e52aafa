//! A browser shows an uploaded profile image: headless Chromium loads the
//! `image_url` that SetProfileImage answered, from the sidecar, and decodes
//! it. A test binary of its own, so that the api binary stays free of a
//! browser's start-up.
//!
//! Needs `/usr/bin/chromium` (Debian's `chromium`); without it the test says
//! so and passes, unless REQUIRE_BROWSER_TESTS=1 (as in CI), where it fails.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::SetProfileImageRequest;
use account_testkit::{registration, spawn_app, unique_email, Backend};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageEncoder, Rgb, RgbImage};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium exits once the page is loaded and its virtual time budget
/// spent, in a second or two here; on a busy machine this whole test once
/// took 50 s.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);

/// The browser, or `None` (the test is skipped) when it is not installed
/// and not required.
fn chromium() -> Option<&'static Path> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("REQUIRE_BROWSER_TESTS").as_deref() != Ok("1"),
        "REQUIRE_BROWSER_TESTS=1 but {CHROMIUM} is missing (apt-get install chromium)"
    );
    eprintln!("skipped: {CHROMIUM} is missing (apt-get install chromium to run the browser test)");
    None
}

/// A 300×200 JPEG: a landscape photo as a phone would send it.
fn landscape_jpeg() -> Vec<u8> {
    let picture = RgbImage::from_fn(300, 200, |x, y| {
        Rgb([(x * 255 / 300) as u8, (y * 255 / 200) as u8, 160])
    });
    let mut out = Cursor::new(Vec::new());
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(picture.as_raw(), 300, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    out.into_inner()
}

/// A page that shows `src` and, once the browser has decoded it, writes its
/// natural size into `#size` (or `error` if it could not load it).
fn page(src: &str) -> String {
    let src = src
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    format!(
        r#"<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Profile image</title></head>
<body>
<p id="size">loading</p>
<img id="photo" alt="profile image" src="{src}">
<script>
const img = document.getElementById("photo");
const size = document.getElementById("size");
const show = () => {{ size.textContent = img.naturalWidth + "x" + img.naturalHeight; }};
if (img.complete && img.naturalWidth > 0) {{ show(); }}
img.addEventListener("load", show);
img.addEventListener("error", () => {{ size.textContent = "error"; }});
</script>
</body>
</html>
"#
    )
}

/// The DOM Chromium holds after loading `page` (`--dump-dom`), with a
/// profile of its own in `dir`.
fn dump_dom(chromium: &Path, page: &Path, dir: &Path) -> String {
    let profile = dir.join("profile");
    let out = dir.join("dom.html");
    let err = dir.join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish within {BROWSER_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "Chromium failed ({status}); its log:\n{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    std::fs::read_to_string(&out).unwrap()
}

/// The text of the element `<p id="size">` in a dumped DOM.
fn size_shown(dom: &str) -> Option<&str> {
    let start = dom.find(r#"<p id="size">"#)? + r#"<p id="size">"#.len();
    let end = start + dom[start..].find("</p>")?;
    Some(&dom[start..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_shows_the_uploaded_image_at_512_by_512() {
    let Some(chromium) = chromium() else {
        return;
    };
    // Arrange: the service on port 0, whose PUBLIC_BASE_URL is its sidecar's
    // address, so that MEDIA_BASE_URL (by default PUBLIC_BASE_URL + /media)
    // is the sidecar's /media route.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(Backend::Sqlite).await;
    let account = app.register(registration(&unique_email())).await.unwrap();
    let upload = landscape_jpeg();
    let messages: Vec<SetProfileImageRequest> = std::iter::once(Part::AccountId(account.id))
        .chain(upload.chunks(16 * 1024).map(|c| Part::Chunk(c.to_vec())))
        .map(|part| SetProfileImageRequest { part: Some(part) })
        .collect();
    let answer = app
        .client
        .clone()
        .set_profile_image(tokio_stream::iter(messages))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let image_url = answer.image_url;
    assert!(
        image_url.starts_with(&app.http_url("/media/account/profile/")),
        "image_url {image_url:?} is not served by the test's sidecar"
    );
    let page_path: PathBuf = dir.path().join("profile.html");
    std::fs::write(&page_path, page(&image_url)).unwrap();

    // Act: the browser runs off the async workers, which serve its request.
    let browser_dir = dir.path().to_owned();
    let dom = tokio::task::spawn_blocking(move || dump_dom(chromium, &page_path, &browser_dir))
        .await
        .unwrap();

    // Assert: a 300×200 upload is shown as its centred square, 512 a side.
    assert_eq!(
        size_shown(&dom),
        Some("512x512"),
        "the page did not show the image at 512x512; the DOM:\n{dom}"
    );
}
