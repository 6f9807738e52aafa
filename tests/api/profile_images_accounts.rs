//! Profile images and the accounts they belong to, over the real binary on
//! both backends: an upload names a live account first, concurrent uploads
//! leave one image and its two objects, an image set again after it was
//! replaced survives the deletion queued for it, and every change is a
//! PROFILE_UPDATED event.

use std::collections::BTreeSet;

use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::{
    Account, ChangePasswordRequest, EventType, SetProfileImageRequest,
};
use tonic::{Code, Status};

use crate::events::Watcher;
use crate::helpers::*;
use crate::on_both_backends;
use crate::profile_images::*;

const REQUIRED: &str = "This field is required.";

fn chunk(bytes: &[u8]) -> SetProfileImageRequest {
    SetProfileImageRequest {
        part: Some(Part::Chunk(bytes.to_vec())),
    }
}

fn account_id(id: &str) -> SetProfileImageRequest {
    SetProfileImageRequest {
        part: Some(Part::AccountId(id.into())),
    }
}

fn field_of(status: &Status) -> Vec<String> {
    violations(status)
        .into_iter()
        .map(|(field, _)| field)
        .collect()
}

on_both_backends!(
    an_upload_names_a_live_account_first,
    concurrent_uploads_leave_one_image_and_its_two_objects,
    an_image_set_again_survives_the_deletion_of_its_first_time,
    setting_and_removing_an_image_are_profile_updates,
);

async fn an_upload_names_a_live_account_first(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let id = new_account(&app).await;
    let before = set_image(&app, &id, &plain_jpeg(0)).await.unwrap();
    let objects = store.objects().await;
    let gone = new_account(&app).await;
    delete_account(&app, &gone).await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let file = plain_jpeg(1);

    let invalid: [(&str, Vec<SetProfileImageRequest>, (&str, &str)); 5] = [
        (
            "the file without the account",
            vec![chunk(&file)],
            ("account_id", REQUIRED),
        ),
        ("nothing at all", vec![], ("account_id", REQUIRED)),
        (
            "the account alone",
            vec![account_id(&id)],
            ("image", REQUIRED),
        ),
        (
            "an empty chunk",
            vec![account_id(&id), chunk(&[])],
            ("image", REQUIRED),
        ),
        (
            "the file first",
            vec![chunk(&file), account_id(&id)],
            ("account_id", REQUIRED),
        ),
    ];
    for (what, messages, (field, message)) in invalid {
        let status = send(&app, futures::stream::iter(messages))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(
            violations(&status),
            [(field.to_owned(), message.to_owned())],
            "{what}"
        );
    }
    let named_twice = vec![account_id(&id), chunk(&file), account_id(&id)];
    let not_a_uuid = vec![account_id("not-a-uuid"), chunk(&file)];
    for (what, messages) in [("named twice", named_twice), ("not a UUID", not_a_uuid)] {
        let status = send(&app, futures::stream::iter(messages))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(field_of(&status), ["account_id"], "{what}");
    }
    for (what, nobody) in [("unknown", &unknown), ("deleted", &gone)] {
        let status = set_image(&app, nobody, &file).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
        let status = remove_image(&app, nobody).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{what}: {status:?}");
    }
    let status = remove_image(&app, "not-a-uuid").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(field_of(&status), ["account_id"]);

    let now = app.get_by_id(&id).await.unwrap();
    assert_eq!(
        (&now.image_url, &now.thumbnail_url),
        (&before.image_url, &before.thumbnail_url)
    );
    assert_eq!(
        store.objects().await,
        objects,
        "a refused upload left an object"
    );
}

async fn concurrent_uploads_leave_one_image_and_its_two_objects(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    let id = new_account(&app).await;
    let files: Vec<Vec<u8>> = (0..10).map(plain_jpeg).collect();

    let answers: Vec<Result<Account, Status>> =
        futures::future::join_all(files.iter().map(|file| set_image(&app, &id, file))).await;

    let answered: BTreeSet<String> = answers
        .into_iter()
        .map(|answer| Image::of(&answer.unwrap(), &base).unwrap().large)
        .collect();
    assert_eq!(answered.len(), 10, "ten different images");
    let last = Image::of(&app.get_by_id(&id).await.unwrap(), &base).expect("an image");
    assert!(answered.contains(&last.large), "{last:?} was not uploaded");
    deletions_done(&app).await;
    store.wait_for(&last.keys()).await;
    served(&app, &last.large).await;
    served(&app, &last.thumbnail).await;
}

/// Image A, replaced by B, then uploaded again: A's objects were queued
/// for deletion when B replaced it, and must outlive that deletion now that
/// the account points at them again.
async fn an_image_set_again_survives_the_deletion_of_its_first_time(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let base = default_base(&app);
    let id = new_account(&app).await;
    let (a, b) = (plain_jpeg(4), plain_jpeg(5));

    for _ in 0..3 {
        let first = Image::of(&set_image(&app, &id, &a).await.unwrap(), &base).unwrap();
        set_image(&app, &id, &b).await.unwrap();
        let again = Image::of(&set_image(&app, &id, &a).await.unwrap(), &base).unwrap();
        assert_eq!(again, first, "the same file gives the same keys");

        deletions_done(&app).await;
        store.wait_for(&again.keys()).await;
        served(&app, &again.large).await;
        served(&app, &again.thumbnail).await;
    }
}

/// Waits until the deletion queue is empty.
async fn deletions_done(app: &TestApp) {
    let drained = eventually(WAIT, || async {
        (app.db.count("media_deletions").await == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "deletions still queued");
}

async fn setting_and_removing_an_image_are_profile_updates(backend: Backend) {
    let store = Store::dir();
    let app = shop(backend, &store).await;
    let watcher = Watcher::start(&app.channel, "", &[]).await.unwrap();
    let id = new_account(&app).await;
    let file = plain_jpeg(6);

    set_image(&app, &id, &file).await.unwrap();
    // The same file again is no change, nor is removing what is gone, nor
    // a refused upload.
    set_image(&app, &id, &file).await.unwrap();
    remove_image(&app, &id).await.unwrap();
    remove_image(&app, &id).await.unwrap();
    set_image(&app, &id, b"not an image").await.unwrap_err();
    // A change of another kind marks the end of what came before it.
    app.client
        .clone()
        .change_password(ChangePasswordRequest {
            id: id.clone(),
            current_password: PASSWORD.into(),
            password: "other-pass1".into(),
            confirm_password: "other-pass1".into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap();

    let events = watcher.wait_for(4).await;
    let types: Vec<EventType> = events
        .iter()
        .map(|e| EventType::try_from(e.r#type).unwrap())
        .collect();
    assert_eq!(
        types,
        [
            EventType::AccountRegistered,
            EventType::ProfileUpdated,
            EventType::ProfileUpdated,
            EventType::PasswordChanged,
        ]
    );
    assert!(events.iter().all(|e| e.account_id == id));
}
