//! Ending sessions over the real binary on both backends: SignOut,
//! ListSessions, RevokeSession, RevokeAllSessions, and the sign-in beyond
//! SESSIONS_PER_ACCOUNT, alone and in a crowd.

use std::collections::HashSet;
use std::time::Duration;

use account_service::proto::account::v1::{
    DeleteAccountRequest, EventType, RevokeAllSessionsRequest, RevokeSessionRequest,
};
use tonic::{Code, Status};

use crate::sessions_everywhere::session_watcher;

use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{
    assert_ended, assert_live, assert_same_session, live_ids, sessions_of, sign_in, sign_out, time,
    Client, Shop,
};

on_both_backends!(
    sign_out_ends_one_session_and_answers_ok_whatever_it_is_given,
    sessions_are_listed_newest_first_and_only_while_live,
    revoke_session_ends_one_session_of_its_own_account_only,
    revoke_all_sessions_keeps_only_the_one_named,
    a_sign_in_beyond_the_limit_ends_the_least_recently_used,
    concurrent_sign_ins_leave_exactly_the_limit_live,
    a_full_list_of_long_user_agents_is_answered_whole,
);

async fn revoke(client: &mut Client, account_id: &str, session_id: &str) -> Result<(), Status> {
    client
        .revoke_session(RevokeSessionRequest {
            account_id: account_id.into(),
            session_id: session_id.into(),
        })
        .await
        .map(drop)
}

async fn revoke_all(client: &mut Client, account_id: &str, except: &str) -> Result<i32, Status> {
    client
        .revoke_all_sessions(RevokeAllSessionsRequest {
            account_id: account_id.into(),
            except_session_id: except.into(),
        })
        .await
        .map(|r| r.into_inner().revoked)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

async fn sign_out_ends_one_session_and_answers_ok_whatever_it_is_given(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let leaving = sign_in(client, &email).await;
    let staying = sign_in(client, &email).await;

    sign_out(client, leaving.refresh()).await.unwrap();
    assert_ended(client, &leaving, "signed out").await;
    // Again, and with tokens never issued: still OK.
    sign_out(client, leaving.refresh()).await.unwrap();
    for token in ["", "garbage", "acr_", &format!("acr_{}", "x".repeat(43))] {
        sign_out(client, token).await.unwrap();
    }
    assert_eq!(live_ids(client, &id).await, vec![staying.id().to_owned()]);
    assert_live(client, &staying, "the other session").await;
}

async fn sessions_are_listed_newest_first_and_only_while_live(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (_, stranger) = shop.account().await;
    let client = &mut shop.client;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(sign_in(client, &email).await);
        // Sign-ins a clock tick apart, so "newest" has one meaning.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let listed = sessions_of(client, &id).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [held[2].id(), held[1].id(), held[0].id()]);
    for (session, signed) in listed.iter().zip(held.iter().rev()) {
        assert_same_session(session, &signed.session);
    }

    // The oldest refreshed is still the oldest: created_at orders.
    assert_live(client, &held[0], "refreshed").await;
    sign_out(client, held[1].refresh()).await.unwrap();
    assert_eq!(
        live_ids(client, &id).await,
        vec![held[2].id().to_owned(), held[0].id().to_owned()]
    );
    let listed = sessions_of(client, &id).await.unwrap();
    assert!(time(&listed[1].last_used_at) > time(&listed[1].created_at));

    // Another account's list holds none of them.
    assert!(live_ids(client, &stranger).await.is_empty());
    assert_code(&sessions_of(client, &new_id()).await, Code::NotFound);
    for malformed in ["", "not-an-id", "' OR 1=1 --"] {
        assert_code(&sessions_of(client, malformed).await, Code::InvalidArgument);
    }
}

async fn revoke_session_ends_one_session_of_its_own_account_only(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (other_email, other_id) = shop.account().await;
    let client = &mut shop.client;
    let ended = sign_in(client, &email).await;
    let kept = sign_in(client, &email).await;
    let theirs = sign_in(client, &other_email).await;

    revoke(client, &id, ended.id()).await.unwrap();
    assert_ended(client, &ended, "revoked").await;
    revoke(client, &id, ended.id()).await.unwrap();

    // Naming another account's session ends nothing.
    assert_code(&revoke(client, &id, theirs.id()).await, Code::NotFound);
    assert_code(
        &revoke(client, &new_id(), theirs.id()).await,
        Code::NotFound,
    );
    assert_code(&revoke(client, &id, &new_id()).await, Code::NotFound);
    for (account, session) in [("not-an-id", kept.id()), (id.as_str(), "not-an-id")] {
        assert_code(
            &revoke(client, account, session).await,
            Code::InvalidArgument,
        );
    }
    assert_eq!(
        live_ids(client, &other_id).await,
        vec![theirs.id().to_owned()]
    );
    assert_live(client, &theirs, "the other account's session").await;
    assert_eq!(live_ids(client, &id).await, vec![kept.id().to_owned()]);
    assert_live(client, &kept, "the session not named").await;

    // Once the account is deleted, its ended sessions are still on record
    // for a while: naming one answers that the account is gone.
    client
        .delete_account(DeleteAccountRequest {
            id: id.clone(),
            current_password: crate::sessions::PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();
    for session in [kept.id(), ended.id()] {
        assert_code(&revoke(client, &id, session).await, Code::NotFound);
    }
}

/// A hundred sessions whose user agents are each 512 two-byte characters
/// make an answer of over 100 KB: it is answered whole.
async fn a_full_list_of_long_user_agents_is_answered_whole(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let agent = "é".repeat(512);
    let now = if shop.db.is_sqlite() {
        "CAST(strftime('%s', 'now') AS INTEGER) * 1000000"
    } else {
        "now()"
    };
    let rows: Vec<String> = (0..99)
        .map(|i| {
            format!(
                "('{}', '{id}', {now}, {now}, '{agent}', '2001:db8::{i:x}', FALSE)",
                new_id()
            )
        })
        .collect();
    shop.db
        .execute(&format!(
            "INSERT INTO sessions (id, account_id, created_at, last_used_at, user_agent, \
             ip_address, two_step) VALUES {}",
            rows.join(", ")
        ))
        .await;
    let client = &mut shop.client;
    let own = sign_in(client, &email).await;
    let listed = sessions_of(client, &id).await.unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(listed.iter().filter(|s| s.user_agent == agent).count(), 99);
    assert!(listed.iter().any(|s| s.id == own.id()));
}

async fn revoke_all_sessions_keeps_only_the_one_named(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (other_email, _) = shop.account().await;
    let client = &mut shop.client;
    let first = sign_in(client, &email).await;
    let kept = sign_in(client, &email).await;
    let third = sign_in(client, &email).await;
    let theirs = sign_in(client, &other_email).await;

    // A malformed exception ends nothing.
    assert_code(
        &revoke_all(client, &id, "not-an-id").await,
        Code::InvalidArgument,
    );
    assert_eq!(live_ids(client, &id).await.len(), 3);

    assert_eq!(revoke_all(client, &id, kept.id()).await.unwrap(), 2);
    assert_ended(client, &first, "first").await;
    assert_ended(client, &third, "third").await;
    let kept = assert_live(client, &kept, "the one kept").await;
    assert_eq!(live_ids(client, &id).await, vec![kept.id().to_owned()]);
    assert_live(client, &theirs, "another account's").await;

    // Another account's session as the exception keeps none of this one's.
    assert_eq!(revoke_all(client, &id, theirs.id()).await.unwrap(), 1);
    assert_ended(client, &kept, "kept before").await;
    assert_eq!(revoke_all(client, &id, "").await.unwrap(), 0);
    assert_code(&revoke_all(client, &new_id(), "").await, Code::NotFound);
    assert_code(
        &revoke_all(client, "not-an-id", "").await,
        Code::InvalidArgument,
    );
    assert_live(client, &theirs, "still another account's").await;
}

async fn a_sign_in_beyond_the_limit_ends_the_least_recently_used(backend: Backend) {
    let mut shop = Shop::start(backend, &[("SESSIONS_PER_ACCOUNT", "3")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let first = sign_in(client, &email).await;
    let second = sign_in(client, &email).await;
    let third = sign_in(client, &email).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The oldest sign-in is used; the second is the one left unused.
    let first = assert_live(client, &first, "first").await;
    let third = assert_live(client, &third, "third").await;

    let fourth = sign_in(client, &email).await;
    assert_ended(client, &second, "least recently used").await;
    let mut live = live_ids(client, &id).await;
    live.sort();
    let mut expected = vec![
        first.id().to_owned(),
        third.id().to_owned(),
        fourth.id().to_owned(),
    ];
    expected.sort();
    assert_eq!(live, expected);
    for (held, what) in [(&first, "first"), (&third, "third"), (&fourth, "fourth")] {
        assert_live(client, held, what).await;
    }
}

async fn concurrent_sign_ins_leave_exactly_the_limit_live(backend: Backend) {
    const SIGN_INS: usize = 12;
    // Room for every check at once, which the lockout would otherwise cap.
    let settings = [("SESSIONS_PER_ACCOUNT", "3"), ("LOGIN_MAX_FAILURES", "50")];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, id) = shop.account().await;
    let watcher = session_watcher(&shop).await;
    let held = futures::future::join_all((0..SIGN_INS).map(|_| {
        let mut client = shop.client.clone();
        let email = email.clone();
        async move { sign_in(&mut client, &email).await }
    }))
    .await;

    let client = &mut shop.client;
    let live: HashSet<String> = live_ids(client, &id).await.into_iter().collect();
    assert_eq!(live.len(), 3, "the limit holds however the sign-ins race");
    for h in &held {
        if live.contains(h.id()) {
            assert_live(client, h, "a session kept").await;
        } else {
            assert_ended(client, h, "a session evicted").await;
        }
    }
    // Every session started once, and every evicted one ended once, after
    // it started.
    watcher.wait_for(2 * SIGN_INS - 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen: Vec<(EventType, String)> = watcher
        .events()
        .await
        .iter()
        .map(|e| (EventType::try_from(e.r#type).unwrap(), e.session_id.clone()))
        .collect();
    assert_eq!(seen.len(), 2 * SIGN_INS - 3, "{seen:?}");
    for h in &held {
        let at = |kind: EventType| seen.iter().position(|e| *e == (kind, h.id().to_owned()));
        let started = at(EventType::SessionStarted).expect("a STARTED event per sign-in");
        match at(EventType::SessionEnded) {
            Some(ended) => {
                assert!(!live.contains(h.id()), "a live session has no end");
                assert!(started < ended, "{seen:?}");
            }
            None => assert!(live.contains(h.id()), "an evicted session has its end"),
        }
    }
}
