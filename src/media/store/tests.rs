use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{Attribute, ObjectStoreExt};
use uuid::Uuid;

use super::*;
use crate::media::profile_keys;

const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn file_store() -> (tempfile::TempDir, MediaStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(&MediaLocation::File(dir.path().join("media"))).unwrap();
    (dir, store)
}

/// Put, get, size, exists, list, delete and delete again: the life of an
/// image's two objects, as the service and the sweep go through it.
async fn round_trip(store: &MediaStore) {
    let account = Uuid::new_v4();
    let (large, thumbnail) = profile_keys(account, HASH, "jpg");
    assert_eq!(store.get(&large).await.unwrap(), None);
    assert!(!store.exists(&large).await.unwrap());
    assert_eq!(store.size(&large).await.unwrap(), None);
    assert!(store.list_profile_objects().await.unwrap().is_empty());

    let before = chrono::Utc::now() - chrono::Duration::seconds(5);
    store
        .put(&large, b"large bytes".to_vec(), "image/jpeg")
        .await
        .unwrap();
    store
        .put(&thumbnail, b"small".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        store.get(&large).await.unwrap().as_deref(),
        Some(&b"large bytes"[..])
    );
    assert!(store.exists(&thumbnail).await.unwrap());
    assert_eq!(store.size(&thumbnail).await.unwrap(), Some(5));
    // A put replaces.
    store
        .put(&thumbnail, b"smaller".to_vec(), "image/jpeg")
        .await
        .unwrap();
    assert_eq!(
        store.get(&thumbnail).await.unwrap().as_deref(),
        Some(&b"smaller"[..])
    );

    let mut listed = store.list_profile_objects().await.unwrap();
    listed.sort();
    let keys: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec![large.as_str(), thumbnail.as_str()];
    expected.sort();
    assert_eq!(keys, expected);
    for (key, modified) in &listed {
        assert!(*modified > before, "{key} modified at {modified}");
        assert!(crate::media::ProfileKey::parse(key).is_some(), "{key}");
    }

    store.delete(&large).await.unwrap();
    assert_eq!(store.get(&large).await.unwrap(), None);
    assert!(!store.exists(&large).await.unwrap());
    // Deleting what is gone succeeds: a retried deletion is no error.
    store.delete(&large).await.unwrap();
    store.delete(&thumbnail).await.unwrap();
    store.delete(&thumbnail).await.unwrap();
    assert!(store.list_profile_objects().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_file_store_keeps_gets_lists_and_deletes_images() {
    let (_dir, store) = file_store();
    round_trip(&store).await;
}

#[tokio::test]
async fn a_file_store_creates_its_directory_and_lists_only_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/media");
    let store = MediaStore::open(&MediaLocation::File(root.clone())).unwrap();
    assert!(root.is_dir());
    // Opening an existing directory again is fine.
    MediaStore::open(&MediaLocation::File(root.clone())).unwrap();
    store
        .put("other/thing.txt", b"x".to_vec(), "text/plain")
        .await
        .unwrap();
    assert!(store.list_profile_objects().await.unwrap().is_empty());
    assert_eq!(
        format!("{store:?}"),
        format!("MediaStore({:?})", format!("file://{}", root.display()))
    );
}

#[tokio::test]
async fn a_file_that_stands_where_the_directory_should_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("media");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = MediaStore::open(&MediaLocation::File(file)).unwrap_err();
    assert!(matches!(err, MediaStoreError::Directory { .. }), "{err:?}");
}

#[tokio::test]
async fn keys_that_are_not_paths_are_refused_before_the_store() {
    let (_dir, store) = file_store();
    for key in [
        "",
        "/",
        "/etc/passwd",
        "../outside",
        "account/../x",
        "a//b",
        "a/./b",
    ] {
        let err = store
            .put(key, b"x".to_vec(), "image/jpeg")
            .await
            .unwrap_err();
        assert!(
            matches!(err, MediaStoreError::InvalidKey(_)),
            "{key:?}: {err:?}"
        );
        assert!(matches!(
            store.get(key).await.unwrap_err(),
            MediaStoreError::InvalidKey(_)
        ));
        assert!(matches!(
            store.delete(key).await.unwrap_err(),
            MediaStoreError::InvalidKey(_)
        ));
    }
}

#[tokio::test]
async fn a_prefix_is_put_before_every_key_and_taken_off_in_listings() {
    let memory = Arc::new(InMemory::new());
    let store = MediaStore::from_store(memory.clone(), "memory://", "/prod/images/", true);
    round_trip(&store).await;

    let (large, _) = profile_keys(Uuid::new_v4(), HASH, "png");
    store
        .put(&large, b"png".to_vec(), "image/png")
        .await
        .unwrap();
    let stored = memory
        .get(&Path::parse(format!("prod/images/{large}")).unwrap())
        .await
        .unwrap();
    // A store that keeps attributes keeps the Content-Type.
    assert_eq!(
        stored
            .attributes
            .get(&Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("image/png")
    );
    // Objects beside the prefix are not the store's.
    memory
        .put(
            &Path::parse(format!("prod/other/{large}")).unwrap(),
            b"x".to_vec().into(),
        )
        .await
        .unwrap();
    let listed = store.list_profile_objects().await.unwrap();
    assert_eq!(
        listed.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        vec![large]
    );
}

#[test]
fn errors_never_carry_the_credentials() {
    let secrets: Vec<SecretString> = vec!["AKIDEXAMPLE".into(), "wJalrXUtnFEMI/K7MDENG".into()];
    let text = "403: <Error><AWSAccessKeyId>AKIDEXAMPLE</AWSAccessKeyId>\
                <StringToSign>AKIDEXAMPLE/20260101/us-east-1/s3</StringToSign> \
                wJalrXUtnFEMI/K7MDENG</Error>";
    let clean = redact(text, &secrets);
    assert!(
        !clean.contains("AKIDEXAMPLE") && !clean.contains("wJalrXUtnFEMI"),
        "{clean}"
    );
    assert!(clean.contains("[REDACTED]"));
}

#[test]
fn an_s3_store_opens_without_contacting_the_bucket() {
    let location = MediaLocation::S3 {
        bucket: "images".into(),
        prefix: "prod".into(),
    };
    let access = S3Access {
        aws_endpoint_url: Some("http://127.0.0.1:9".into()),
        aws_region: Some("eu-west-1".into()),
        aws_access_key_id: Some("AKIDEXAMPLE".to_owned().into()),
        aws_secret_access_key: Some("never-shown-secret".to_owned().into()),
        aws_session_token: None,
    };
    let store = MediaStore::open_with(&location, &access).unwrap();
    let shown = format!("{store:?}");
    assert_eq!(shown, "MediaStore(\"s3://images/prod\")");
}

/// The same life against a real S3 server (s3s-fs in CI), with a wrong
/// secret refused and never echoed.
#[cfg_attr(not(s3_tests), ignore = "set TEST_S3_ENDPOINT to run the S3 variant")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_store_keeps_gets_lists_and_deletes_images() {
    let Some(s3) = account_testkit::s3::S3Server::from_env() else {
        return;
    };
    let bucket = s3.fresh_bucket().await;
    let access = S3Access {
        aws_endpoint_url: Some(s3.endpoint.clone()),
        aws_region: Some(account_testkit::s3::REGION.into()),
        aws_access_key_id: Some(s3.access_key.clone().into()),
        aws_secret_access_key: Some(s3.secret_key.clone().into()),
        aws_session_token: None,
    };
    for prefix in ["", "prod/account"] {
        let location = MediaLocation::S3 {
            bucket: bucket.clone(),
            prefix: prefix.into(),
        };
        let store = MediaStore::open_with(&location, &access).unwrap();
        round_trip(&store).await;
    }

    let wrong = S3Access {
        aws_secret_access_key: Some("wrong-secret-never-shown".to_owned().into()),
        ..access
    };
    let location = MediaLocation::S3 {
        bucket,
        prefix: String::new(),
    };
    let store = MediaStore::open_with(&location, &wrong).unwrap();
    let (large, _) = profile_keys(Uuid::new_v4(), HASH, "jpg");
    let err = store
        .put(&large, b"x".to_vec(), "image/jpeg")
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(matches!(err, MediaStoreError::Failed { .. }), "{text}");
    assert!(!text.contains("wrong-secret-never-shown"), "{text}");
    assert!(!text.contains(&s3.access_key), "{text}");
    assert!(!text.contains(&s3.secret_key), "{text}");
}
