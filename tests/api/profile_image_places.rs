//! Uploads hold a bounded number of places: a caller that opens uploads and
//! never finishes them is refused past the bound (RESOURCE_EXHAUSTED with a
//! retry delay), the rest of the API answers meanwhile, and the places come
//! back when its streams end.

use std::time::Duration;

use account_service::proto::account::v1::set_profile_image_request::Part;
use account_service::proto::account::v1::{SetProfileImageRequest, SetProfileImageResponse};
use futures::channel::mpsc;
use futures::SinkExt;
use tonic::{Code, Status};

use crate::helpers::*;

fn message(part: Part) -> SetProfileImageRequest {
    SetProfileImageRequest { part: Some(part) }
}

/// A small PNG, built in code.
fn png() -> Vec<u8> {
    let image = image::RgbImage::from_pixel(64, 48, image::Rgb([10, 200, 30]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Starts an upload that names `account_id` and then waits; the sender ends it.
fn held_upload(
    app: &TestApp,
    account_id: &str,
) -> (
    mpsc::Sender<SetProfileImageRequest>,
    tokio::task::JoinHandle<Result<tonic::Response<SetProfileImageResponse>, Status>>,
) {
    let (mut tx, rx) = mpsc::channel(4);
    tx.try_send(message(Part::AccountId(account_id.to_owned())))
        .unwrap();
    let mut client = app.client.clone();
    (
        tx,
        tokio::spawn(async move { client.set_profile_image(rx).await }),
    )
}

async fn upload(app: &TestApp, account_id: &str, bytes: Vec<u8>) -> Result<(), Status> {
    let messages = vec![
        message(Part::AccountId(account_id.to_owned())),
        message(Part::Chunk(bytes)),
    ];
    app.client
        .clone()
        .set_profile_image(futures::stream::iter(messages))
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_never_finish_cannot_take_every_place() {
    let media = tempfile::tempdir().unwrap();
    let app = spawn_app(Backend::Sqlite)
        .set("IMAGE_CONCURRENCY", "1")
        .set("MEDIA_STORE", format!("file://{}", media.path().display()))
        .await;
    let account = app.register(registration(&unique_email())).await.unwrap();
    // IMAGE_CONCURRENCY 1: one upload processed and 16 waiting or arriving.
    let places = 17;
    let mut held = Vec::new();
    for _ in 0..places {
        held.push(held_upload(&app, &account.id));
    }

    let refused = eventually(Duration::from_secs(10), || async {
        let (tx, call) = held_upload(&app, &account.id);
        drop(tx);
        match call.await.unwrap() {
            Err(status) if status.code() == Code::ResourceExhausted => Some(status),
            _ => None,
        }
    })
    .await
    .expect("an upload past the bound must be refused");
    let details = tonic_types::StatusExt::get_error_details(&refused);
    assert!(details.retry_info().is_some(), "{refused:?}");

    // The rest of the API is not held up.
    assert_eq!(app.get_by_id(&account.id).await.unwrap().id, account.id);

    // Ending the held streams gives the places back.
    for (mut tx, call) in held {
        tx.close().await.unwrap();
        let status = call.await.unwrap().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "an empty upload");
    }
    let done = eventually(Duration::from_secs(10), || async {
        upload(&app, &account.id, png()).await.ok()
    })
    .await;
    assert!(done.is_some(), "uploads are accepted again");
}
