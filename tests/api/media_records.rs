//! The profile-image records and the media deletion queue, against each
//! backend directly, with a store in memory that can fail or hold a call.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use account_service::domain::ProfileImage;
use account_service::storage::{Blobs, DeletionOutcome, ImageSwitch, Storage};
use async_trait::async_trait;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;
use crate::storage::{account, code_of, hash, mail};

on_both_backends!(
    an_image_is_pointed_at_with_an_event_and_the_old_one_is_queued,
    an_image_whose_objects_are_missing_is_not_pointed_at,
    deletions_are_retried_after_a_failure_and_claimed_once,
    an_object_pointed_at_again_is_not_deleted,
    an_upload_waits_for_a_deletion_of_its_objects_and_sees_them_gone,
    erasing_an_account_queues_its_image,
    the_sweep_deletes_only_old_objects_no_row_points_at,
);

/// A media store in memory. `fail` makes every call an error; with a
/// `gate`, `remove` waits for it after deleting (as a slow store would,
/// with the row lock held).
#[derive(Default)]
struct MemoryBlobs {
    objects: Mutex<HashSet<String>>,
    fail: bool,
    gate: Option<(Arc<Notify>, Arc<Notify>)>,
}

impl MemoryBlobs {
    fn with(keys: &[&str]) -> Self {
        MemoryBlobs {
            objects: Mutex::new(keys.iter().map(|k| k.to_string()).collect()),
            ..Default::default()
        }
    }

    fn has(&self, key: &str) -> bool {
        self.objects.lock().unwrap().contains(key)
    }
}

#[async_trait]
impl Blobs for MemoryBlobs {
    async fn present(&self, keys: &[&str]) -> anyhow::Result<bool> {
        anyhow::ensure!(!self.fail, "store down");
        let objects = self.objects.lock().unwrap();
        Ok(keys.iter().all(|k| objects.contains(*k)))
    }

    async fn remove(&self, key: &str) -> anyhow::Result<()> {
        anyhow::ensure!(!self.fail, "store down");
        self.objects.lock().unwrap().remove(key);
        if let Some((entered, release)) = &self.gate {
            entered.notify_one();
            release.notified().await;
        }
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn image(id: Uuid, hash: char) -> ProfileImage {
    let hash = hash.to_string().repeat(64);
    ProfileImage {
        large: format!("account/profile/{id}/{hash}-512.jpg"),
        thumbnail: format!("account/profile/{id}/{hash}-128.jpg"),
    }
}

async fn with_account(backend: &Backend) -> (TestDatabase, Arc<dyn Storage>, Uuid) {
    let db = TestDatabase::create(backend).await;
    let s = db.connect().await;
    let t = now();
    let a = account(&unique_email(), t);
    s.create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    (db, s, a.id)
}

/// The queued keys and their attempts, by key.
async fn queued(db: &TestDatabase) -> Vec<String> {
    let count = db.count("media_deletions").await;
    let mut keys = Vec::new();
    for i in 0..count {
        keys.push(
            db.text(&format!(
                "SELECT object_key FROM media_deletions ORDER BY object_key LIMIT 1 OFFSET {i}"
            ))
            .await,
        );
    }
    keys
}

async fn an_image_is_pointed_at_with_an_event_and_the_old_one_is_queued(backend: Backend) {
    let (db, s, id) = with_account(&backend).await;
    let (first, second) = (image(id, 'a'), image(id, 'b'));
    let blobs = MemoryBlobs::with(&[
        &first.large,
        &first.thumbnail,
        &second.large,
        &second.thumbnail,
    ]);
    let events = db.count("account_events").await;

    let ImageSwitch::Switched(a) = s
        .switch_profile_image(id, Some(&first), &blobs, now())
        .await
        .unwrap()
    else {
        panic!("not switched");
    };
    assert_eq!(a.image, Some(first.clone()));
    assert_eq!(db.count("account_events").await, events + 1);
    assert!(queued(&db).await.is_empty(), "nothing replaced yet");

    // The same image again changes nothing and is no event.
    let again = s
        .switch_profile_image(id, Some(&first), &blobs, now())
        .await
        .unwrap();
    assert!(matches!(again, ImageSwitch::Unchanged(ref a) if a.image == Some(first.clone())));
    assert_eq!(db.count("account_events").await, events + 1);

    let ImageSwitch::Switched(a) = s
        .switch_profile_image(id, Some(&second), &blobs, now())
        .await
        .unwrap()
    else {
        panic!("not switched");
    };
    assert_eq!(a.image, Some(second.clone()));
    let mut expected = vec![first.large.clone(), first.thumbnail.clone()];
    expected.sort();
    assert_eq!(queued(&db).await, expected);
    assert_eq!(
        s.account_by_id(id).await.unwrap().image,
        Some(second.clone())
    );

    let ImageSwitch::Switched(a) = s
        .switch_profile_image(id, None, &blobs, now())
        .await
        .unwrap()
    else {
        panic!("not removed");
    };
    assert_eq!(a.image, None);
    assert_eq!(queued(&db).await.len(), 4);
    assert_eq!(db.count("account_events").await, events + 3);
    assert!(matches!(
        s.switch_profile_image(id, None, &blobs, now())
            .await
            .unwrap(),
        ImageSwitch::Unchanged(_)
    ));
    assert!(matches!(
        s.switch_profile_image(Uuid::now_v7(), Some(&first), &blobs, now())
            .await
            .unwrap(),
        ImageSwitch::NotFound
    ));
}

async fn an_image_whose_objects_are_missing_is_not_pointed_at(backend: Backend) {
    let (db, s, id) = with_account(&backend).await;
    let wanted = image(id, 'c');
    let events = db.count("account_events").await;
    let half = MemoryBlobs::with(&[&wanted.large]);
    assert!(matches!(
        s.switch_profile_image(id, Some(&wanted), &half, now())
            .await
            .unwrap(),
        ImageSwitch::ObjectsMissing
    ));
    let down = MemoryBlobs {
        fail: true,
        ..Default::default()
    };
    assert!(matches!(
        s.switch_profile_image(id, Some(&wanted), &down, now())
            .await
            .unwrap(),
        ImageSwitch::ObjectsMissing
    ));
    assert_eq!(s.account_by_id(id).await.unwrap().image, None);
    assert_eq!(db.count("account_events").await, events);
}

async fn deletions_are_retried_after_a_failure_and_claimed_once(backend: Backend) {
    let (db, s, id) = with_account(&backend).await;
    let old = image(id, 'd');
    let t = now();
    s.queue_media_deletions(id, &[&old.large], t).await.unwrap();
    // Queued twice: one entry.
    s.queue_media_deletions(id, &[&old.large], t).await.unwrap();
    assert_eq!(db.count("media_deletions").await, 1);

    let lease = t + Duration::seconds(60);
    let claimed = s.claim_media_deletions(t, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].attempts, claimed[0].account_id), (1, id));
    // Held by the lease.
    assert!(s
        .claim_media_deletions(t, lease, 10)
        .await
        .unwrap()
        .is_empty());

    let down = MemoryBlobs {
        objects: Mutex::new([old.large.clone()].into()),
        fail: true,
        gate: None,
    };
    let outcome = s.delete_media(&claimed[0], &down).await.unwrap();
    assert!(matches!(outcome, DeletionOutcome::Failed(_)));
    assert_eq!(db.count("media_deletions").await, 1, "kept for a retry");
    let retry_at = t + Duration::seconds(8);
    s.retry_media_deletion(&old.large, retry_at).await.unwrap();
    assert!(s
        .claim_media_deletions(retry_at - Duration::seconds(1), lease, 10)
        .await
        .unwrap()
        .is_empty());
    let again = s.claim_media_deletions(retry_at, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);

    let up = MemoryBlobs::with(&[&old.large]);
    assert!(matches!(
        s.delete_media(&again[0], &up).await.unwrap(),
        DeletionOutcome::Deleted
    ));
    assert!(!up.has(&old.large));
    assert_eq!(db.count("media_deletions").await, 0);
}

async fn an_object_pointed_at_again_is_not_deleted(backend: Backend) {
    let (db, s, id) = with_account(&backend).await;
    let current = image(id, 'e');
    let blobs = MemoryBlobs::with(&[&current.large, &current.thumbnail]);
    s.switch_profile_image(id, Some(&current), &blobs, now())
        .await
        .unwrap();
    // A leftover entry for the object the account points at now (an
    // earlier upload of the same picture that failed, say).
    let t = now();
    s.queue_media_deletions(id, &[&current.large], t)
        .await
        .unwrap();
    let claimed = s
        .claim_media_deletions(t, t + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert!(matches!(
        s.delete_media(&claimed[0], &blobs).await.unwrap(),
        DeletionOutcome::StillUsed
    ));
    assert!(blobs.has(&current.large));
    assert_eq!(db.count("media_deletions").await, 0);
    let used = s
        .media_in_use(&[(id, &current.large), (id, "account/profile/x/y-512.jpg")])
        .await
        .unwrap();
    assert!(used.contains(&current.large));
}

/// A deletion holds the account's row lock from its check to the store's
/// answer; an upload of the same objects that commits meanwhile would point
/// at nothing. It must wait, then see its objects gone and say so.
async fn an_upload_waits_for_a_deletion_of_its_objects_and_sees_them_gone(backend: Backend) {
    let (_db, s, id) = with_account(&backend).await;
    let same = image(id, 'f');
    let t = now();
    s.queue_media_deletions(id, &[&same.large], t)
        .await
        .unwrap();
    let claimed = s
        .claim_media_deletions(t, t + Duration::seconds(60), 10)
        .await
        .unwrap();
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let blobs = Arc::new(MemoryBlobs {
        objects: Mutex::new([same.large.clone(), same.thumbnail.clone()].into()),
        fail: false,
        gate: Some((Arc::clone(&entered), Arc::clone(&release))),
    });
    let deletion = {
        let (s, blobs, claimed) = (Arc::clone(&s), Arc::clone(&blobs), claimed[0].clone());
        tokio::spawn(async move { s.delete_media(&claimed, &*blobs).await.unwrap() })
    };
    entered.notified().await;
    // The object is gone from the store; the deletion has not committed.
    let upload = {
        let (s, blobs, same) = (Arc::clone(&s), Arc::clone(&blobs), same.clone());
        tokio::spawn(async move {
            s.switch_profile_image(id, Some(&same), &*blobs, now())
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !upload.is_finished(),
        "the upload must wait for the row lock"
    );
    release.notify_one();
    assert!(matches!(deletion.await.unwrap(), DeletionOutcome::Deleted));
    assert!(matches!(upload.await.unwrap(), ImageSwitch::ObjectsMissing));
    assert_eq!(s.account_by_id(id).await.unwrap().image, None);
}

async fn erasing_an_account_queues_its_image(backend: Backend) {
    let (db, s, id) = with_account(&backend).await;
    let current = image(id, '7');
    let blobs = MemoryBlobs::with(&[&current.large, &current.thumbnail]);
    s.switch_profile_image(id, Some(&current), &blobs, now())
        .await
        .unwrap();
    let a = s.account_by_id(id).await.unwrap();
    let goodbye = mail(&a, now());
    assert!(s
        .delete_account(id, &a.email, None, &goodbye, now())
        .await
        .unwrap());
    let mut expected = vec![current.large.clone(), current.thumbnail.clone()];
    expected.sort();
    assert_eq!(queued(&db).await, expected);
    let t = now();
    for d in s
        .claim_media_deletions(t, t + Duration::seconds(60), 10)
        .await
        .unwrap()
    {
        assert!(matches!(
            s.delete_media(&d, &blobs).await.unwrap(),
            DeletionOutcome::Deleted
        ));
    }
    assert!(blobs.objects.lock().unwrap().is_empty());
}

/// A crash between an upload's objects and its commit leaves objects no
/// row points at: the sweep finds them once they are an hour old, and
/// leaves younger ones (an upload about to commit) and used ones alone.
async fn the_sweep_deletes_only_old_objects_no_row_points_at(backend: Backend) {
    use account_service::config::MediaLocation;
    use account_service::media::MediaStore;
    use account_service::media_cleanup::MediaCleanup;
    use account_service::metrics::Metrics;

    let (_db, s, id) = with_account(&backend).await;
    let dir = tempfile::tempdir().unwrap();
    let store = MediaStore::open(&MediaLocation::File(dir.path().to_owned())).unwrap();
    let (used, orphan) = (image(id, '1'), image(id, '2'));
    let stranger = image(Uuid::now_v7(), '3');
    for key in used
        .keys()
        .into_iter()
        .chain(orphan.keys())
        .chain(stranger.keys())
    {
        store.put(key, b"x".to_vec(), "image/jpeg").await.unwrap();
    }
    s.switch_profile_image(id, Some(&used), &store, now())
        .await
        .unwrap();
    let cleanup = MediaCleanup::new(
        Arc::clone(&s),
        store.clone(),
        Arc::new(Metrics::new()),
        Arc::new(Notify::new()),
    );

    // Everything is younger than an hour: nothing is swept.
    assert_eq!(cleanup.sweep(Utc::now()).await.unwrap(), 0);
    // Two hours on, the four objects no row points at are.
    let later = Utc::now() + Duration::hours(2);
    assert_eq!(cleanup.sweep(later).await.unwrap(), 4);
    assert_eq!(cleanup.run_once(later).await.unwrap(), 4);
    let mut left: Vec<String> = store
        .list_profile_objects()
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    left.sort();
    let mut expected = vec![used.large.clone(), used.thumbnail.clone()];
    expected.sort();
    assert_eq!(left, expected);
}
