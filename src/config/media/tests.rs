use std::path::PathBuf;

use super::*;
use crate::config::tests::parse;

#[test]
fn media_defaults_to_a_local_directory_served_under_the_public_base_url() {
    let settings = parse(&[]).unwrap();
    assert_eq!(
        settings.media.location,
        MediaLocation::File(PathBuf::from("media"))
    );
    assert_eq!(settings.media.profile_image_max_bytes, 5_242_880);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(settings.media.image_concurrency, cores.min(256));
    assert_eq!(settings.media_base_url(), "http://localhost:8080/media");
    // check-config prints the settings' Debug: the group is in it.
    let shown = format!("{settings:#?}");
    assert!(
        shown.contains("profile_image_max_bytes: 5242880"),
        "{shown}"
    );
    assert!(shown.contains("File("), "{shown}");
}

#[test]
fn the_media_base_url_joins_the_public_base_url_with_one_slash() {
    let cases = [
        ("http://localhost:8080", "http://localhost:8080/media"),
        ("http://localhost:8080/", "http://localhost:8080/media"),
        (
            "https://shop.example.com/account",
            "https://shop.example.com/account/media",
        ),
        (
            "https://shop.example.com/account/",
            "https://shop.example.com/account/media",
        ),
    ];
    for (public, media) in cases {
        let settings = parse(&["--public-base-url", public]).unwrap();
        assert_eq!(settings.media_base_url(), media, "PUBLIC_BASE_URL={public}");
    }
    let settings = parse(&["--media-base-url", "https://cdn.example.com/images/"]).unwrap();
    assert_eq!(settings.media_base_url(), "https://cdn.example.com/images");
    let settings = parse(&["--media-base-url", "https://cdn.example.com"]).unwrap();
    assert_eq!(settings.media_base_url(), "https://cdn.example.com");
    // Empty is unset.
    let settings = parse(&["--media-base-url", ""]).unwrap();
    assert_eq!(settings.media_base_url(), "http://localhost:8080/media");
}

#[test]
fn media_store_is_a_directory_or_a_bucket() {
    let store = |raw: &str| parse(&["--media-store", raw]).map(|s| s.media.location);
    assert_eq!(
        store("file:///var/lib/account/media").unwrap(),
        MediaLocation::File(PathBuf::from("/var/lib/account/media"))
    );
    assert_eq!(
        store("file://data/media").unwrap(),
        MediaLocation::File(PathBuf::from("data/media"))
    );
    assert_eq!(
        store("s3://images").unwrap(),
        MediaLocation::S3 {
            bucket: "images".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        store("s3://images/").unwrap(),
        MediaLocation::S3 {
            bucket: "images".into(),
            prefix: String::new()
        }
    );
    assert_eq!(
        store("s3://my-images.eu/prod/account-service/").unwrap(),
        MediaLocation::S3 {
            bucket: "my-images.eu".into(),
            prefix: "prod/account-service".into()
        }
    );
    assert_eq!(
        store("s3://my-images.eu/prod").unwrap().to_string(),
        "s3://my-images.eu/prod"
    );
    assert_eq!(store("file://media").unwrap().to_string(), "file://media");
}

#[test]
fn bad_media_values_name_their_variable() {
    let cases: &[(&[&str], &str)] = &[
        (&["--media-store", "file://"], "MEDIA_STORE"),
        (&["--media-store", "s3://"], "MEDIA_STORE"),
        (&["--media-store", "s3:///prefix"], "MEDIA_STORE"),
        (&["--media-store", "s3://bucket/a//b"], "MEDIA_STORE"),
        (&["--media-store", "s3://bucket/../other"], "MEDIA_STORE"),
        (&["--media-store", "s3://bucket/a/./b"], "MEDIA_STORE"),
        (&["--media-store", "s3://bu cket"], "MEDIA_STORE"),
        (&["--media-store", "s3://bucket/a%2Fb"], "MEDIA_STORE"),
        (&["--media-store", "gs://bucket"], "MEDIA_STORE"),
        (
            &["--media-store", "https://bucket.s3.amazonaws.com"],
            "MEDIA_STORE",
        ),
        (&["--media-store", "media"], "MEDIA_STORE"),
        (&["--media-store", ""], "MEDIA_STORE"),
        (
            &["--profile-image-max-bytes", "0"],
            "PROFILE_IMAGE_MAX_BYTES",
        ),
        (
            &["--profile-image-max-bytes", "20971521"],
            "PROFILE_IMAGE_MAX_BYTES",
        ),
        (
            &["--profile-image-max-bytes", "5MB"],
            "PROFILE_IMAGE_MAX_BYTES",
        ),
        (&["--image-concurrency", "0"], "IMAGE_CONCURRENCY"),
        (&["--image-concurrency", "257"], "IMAGE_CONCURRENCY"),
        (&["--media-base-url", "cdn.example.com"], "MEDIA_BASE_URL"),
        (&["--media-base-url", "/media"], "MEDIA_BASE_URL"),
        (
            &["--media-base-url", "ftp://cdn.example.com"],
            "MEDIA_BASE_URL",
        ),
        (
            &["--media-base-url", "https://cdn.example.com/?v=1"],
            "MEDIA_BASE_URL",
        ),
        (
            &["--media-base-url", "https://cdn.example.com/#top"],
            "MEDIA_BASE_URL",
        ),
        (
            &["--media-base-url", "https://user:hunter2@cdn.example.com"],
            "MEDIA_BASE_URL",
        ),
    ];
    for (args, variable) in cases {
        let err = parse(args).expect_err(&format!("{args:?} was accepted"));
        assert_eq!(err.variable, *variable, "{args:?}: {err}");
        assert!(!err.to_string().contains('\n'), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn media_numbers_take_their_bounds() {
    let settings = parse(&["--profile-image-max-bytes", "1", "--image-concurrency", "1"]).unwrap();
    assert_eq!(settings.media.profile_image_max_bytes, 1);
    assert_eq!(settings.media.image_concurrency, 1);
    let settings = parse(&[
        "--profile-image-max-bytes",
        "20971520",
        "--image-concurrency",
        "256",
    ])
    .unwrap();
    assert_eq!(settings.media.profile_image_max_bytes, 20 * 1024 * 1024);
    assert_eq!(settings.media.image_concurrency, 256);
}

#[test]
fn s3_access_is_read_as_settings_and_never_shown() {
    let settings = parse(&[
        "--media-store",
        "s3://images/prod",
        "--aws-endpoint-url",
        "http://127.0.0.1:9000",
        "--aws-region",
        "eu-west-1",
        "--aws-access-key-id",
        "AKIDNEVERSHOWN",
        "--aws-secret-access-key",
        "secret-never-shown",
        "--aws-session-token",
        "token-never-shown",
    ])
    .unwrap();
    let s3 = &settings.media.s3;
    assert_eq!(
        s3.aws_endpoint_url.as_deref(),
        Some("http://127.0.0.1:9000")
    );
    assert_eq!(s3.aws_region.as_deref(), Some("eu-west-1"));
    use secrecy::ExposeSecret;
    let exposed =
        |v: &Option<secrecy::SecretString>| v.as_ref().unwrap().expose_secret().to_owned();
    assert_eq!(exposed(&s3.aws_access_key_id), "AKIDNEVERSHOWN");
    assert_eq!(exposed(&s3.aws_secret_access_key), "secret-never-shown");
    assert_eq!(exposed(&s3.aws_session_token), "token-never-shown");
    // What check-config prints.
    let shown = format!("{settings:#?}");
    for secret in ["AKIDNEVERSHOWN", "secret-never-shown", "token-never-shown"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("REDACTED"), "{shown}");
    assert!(shown.contains("http://127.0.0.1:9000"), "{shown}");
    // The endpoint is a web address, and a bad one is not echoed.
    for bad in [
        "minio:9000",
        "ftp://minio",
        "http://key:secret-never-shown@minio",
    ] {
        let err = parse(&["--aws-endpoint-url", bad]).unwrap_err();
        assert_eq!(err.variable, "AWS_ENDPOINT_URL");
        assert!(!err.to_string().contains("secret-never-shown"), "{err}");
    }
}
