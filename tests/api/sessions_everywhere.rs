//! Changes that sign an account out everywhere, over the real binary on
//! both backends: a password reset, a confirmed address change, a deletion
//! and a password change (which may keep the session it came from); and the
//! session events on the account event stream.

use std::collections::HashSet;
use std::time::Duration;

use account_service::proto::account::v1::{
    ChangeEmailRequest, ChangePasswordRequest, ConfirmEmailChangeRequest, DeleteAccountRequest,
    EventType,
};
use tonic::Code;

use crate::attacks::{link_to, reset_by_mail};
use crate::credentials_binary::check;
use crate::events::Watcher;
use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{
    assert_ended, assert_live, live_ids, sessions_of, sign_in, sign_out, Client, Held, Shop,
    PASSWORD,
};

on_both_backends!(
    reset_address_change_and_deletion_end_every_session,
    a_password_change_keeps_only_the_session_it_names,
    sessions_starting_and_ending_are_events,
);

/// A watcher of session events from now on.
pub(crate) async fn session_watcher(shop: &Shop) -> Watcher {
    Watcher::start(
        &shop.service.plaintext().await,
        "",
        &[EventType::SessionStarted, EventType::SessionEnded],
    )
    .await
    .unwrap()
}

/// Two sessions of the account at `email`.
async fn two_sessions(client: &mut Client, email: &str) -> [Held; 2] {
    [sign_in(client, email).await, sign_in(client, email).await]
}

async fn assert_all_ended(client: &mut Client, sessions: &[Held], what: &str) {
    for held in sessions {
        assert_ended(client, held, what).await;
    }
}

async fn reset_address_change_and_deletion_end_every_session(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (resetting, resetting_id) = shop.account().await;
    let (moving, moving_id) = shop.account().await;
    let (leaving, leaving_id) = shop.account().await;
    let (bystander, _) = shop.account().await;
    let client = &mut shop.client;
    let unaffected = sign_in(client, &bystander).await;

    // A password reset.
    let sessions = two_sessions(client, &resetting).await;
    reset_by_mail(&shop.service, client, &resetting, "reset-pass-42").await;
    assert_all_ended(client, &sessions, "after a reset").await;
    assert!(live_ids(client, &resetting_id).await.is_empty());

    // A confirmed address change: asking alone ends nothing.
    let sessions = two_sessions(client, &moving).await;
    let new_address = unique_email();
    client
        .change_email(ChangeEmailRequest {
            id: moving_id.clone(),
            new_email: new_address.clone(),
            current_password: PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();
    let link = link_to(&shop.service, &new_address, "/account/confirm-email/").await;
    assert_eq!(live_ids(client, &moving_id).await.len(), 2);
    client
        .confirm_email_change(ConfirmEmailChangeRequest {
            token: token_of(&link),
        })
        .await
        .unwrap();
    assert_all_ended(client, &sessions, "after an address change").await;
    assert!(live_ids(client, &moving_id).await.is_empty());

    // A deletion.
    let sessions = two_sessions(client, &leaving).await;
    client
        .delete_account(DeleteAccountRequest {
            id: leaving_id.clone(),
            current_password: PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();
    assert_all_ended(client, &sessions, "after a deletion").await;
    assert_code(&sessions_of(client, &leaving_id).await, Code::NotFound);

    // The new credentials sign in afresh.
    sign_in_with(client, &resetting, "reset-pass-42").await;
    sign_in_with(client, &new_address, PASSWORD).await;
    assert_live(client, &unaffected, "another account's session").await;
}

async fn sign_in_with(client: &mut Client, email: &str, password: &str) {
    crate::sessions::try_sign_in(client, email, password, None)
        .await
        .unwrap_or_else(|status| panic!("{email}: {status:?}"));
}

fn change(id: &str, current: &str, new: &str, keep: &str) -> ChangePasswordRequest {
    ChangePasswordRequest {
        id: id.into(),
        current_password: current.into(),
        password: new.into(),
        confirm_password: new.into(),
        keep_session_id: keep.into(),
    }
}

async fn a_password_change_keeps_only_the_session_it_names(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (other_email, _) = shop.account().await;
    let client = &mut shop.client;
    let [first, kept] = two_sessions(client, &email).await;
    let third = sign_in(client, &email).await;
    let theirs = sign_in(client, &other_email).await;

    // A malformed session to keep changes nothing, and a wrong current
    // password ends nothing.
    let status = client
        .change_password(change(&id, PASSWORD, "changed-pass-1", "not-a-session"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    check(client, &email, PASSWORD).await.unwrap();
    let status = client
        .change_password(change(&id, "wrong-pass1", "changed-pass-1", ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(live_ids(client, &id).await.len(), 3);

    client
        .change_password(change(&id, PASSWORD, "changed-pass-1", kept.id()))
        .await
        .unwrap();
    assert_all_ended(client, &[first, third], "not kept").await;
    let kept = assert_live(client, &kept, "kept").await;
    assert_eq!(live_ids(client, &id).await, vec![kept.id().to_owned()]);

    // Without a session to keep, every one ends.
    client
        .change_password(change(&id, "changed-pass-1", "changed-pass-2", ""))
        .await
        .unwrap();
    assert_ended(client, &kept, "the one kept before").await;
    assert!(live_ids(client, &id).await.is_empty());
    assert_live(client, &theirs, "another account's session").await;
}

async fn sessions_starting_and_ending_are_events(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (other, _) = shop.account().await;
    let watcher = session_watcher(&shop).await;
    let client = &mut shop.client;

    let first = sign_in(client, &email).await;
    sign_out(client, first.refresh()).await.unwrap();
    // Signing out again ends nothing more.
    sign_out(client, first.refresh()).await.unwrap();
    let [second, third] = two_sessions(client, &email).await;
    sign_in(client, &other).await;
    client
        .delete_account(DeleteAccountRequest {
            id: id.clone(),
            current_password: PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();

    let seen = watcher.wait_for(7).await;
    // Anything more would come within a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = {
        let all = watcher.events().await;
        assert!(all.len() >= seen.len());
        all
    };
    let ours: Vec<(EventType, String)> = seen
        .iter()
        .filter(|e| e.account_id == id)
        .map(|e| (EventType::try_from(e.r#type).unwrap(), e.session_id.clone()))
        .collect();
    let started = |held: &Held| (EventType::SessionStarted, held.id().to_owned());
    let ended = |held: &Held| (EventType::SessionEnded, held.id().to_owned());
    assert_eq!(
        ours[..4],
        [
            started(&first),
            ended(&first),
            started(&second),
            started(&third)
        ],
        "{ours:?}"
    );
    // The deletion ends each live session once, in any order.
    let at_deletion: HashSet<_> = ours[4..].iter().cloned().collect();
    assert_eq!(ours.len(), 6, "{ours:?}");
    assert_eq!(at_deletion, HashSet::from([ended(&second), ended(&third)]));
    // The other account's sign-in is its own event.
    assert_eq!(seen.len(), 7, "{seen:?}");
}
