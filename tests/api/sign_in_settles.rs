//! A sign-in's password check against each backend directly: reserved with
//! the account's read, and given back in the transaction that starts the
//! session it earned.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use account_service::storage::{Liveness, LoginReservation, Storage};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;
use crate::session_rotations::new_session;
use crate::storage::{account, code_of, hash, mail};

on_both_backends!(
    a_reservation_reads_the_live_account_and_its_hash,
    a_locked_address_is_refused_and_reads_nothing,
    a_check_given_back_with_its_session_forgets_the_failures,
    a_check_given_back_beside_another_leaves_that_one_reserved,
    a_session_refused_to_a_gone_account_gives_its_check_back,
    sign_ins_of_one_account_settling_at_once_forget_every_failure,
);

const MAX: u32 = 5;

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn stale(at: DateTime<Utc>) -> DateTime<Utc> {
    at - Duration::seconds(60)
}

fn live(at: DateTime<Utc>) -> Liveness {
    Liveness::at(
        at,
        StdDuration::from_secs(3600),
        StdDuration::from_secs(86_400),
    )
}

/// A new database, the storage over it, and a verified account of `email`
/// with its stored hash.
async fn store_with(
    backend: &Backend,
    email: &str,
    at: DateTime<Utc>,
) -> (TestDatabase, Arc<dyn Storage>, Uuid, String) {
    let db = TestDatabase::create(backend).await;
    let s = db.connect().await;
    let a = account(email, at);
    let h = hash().await;
    s.create_account(&a, &h, &mail(&a, at), &code_of(&a))
        .await
        .unwrap();
    s.mark_verified(a.id, at).await.unwrap();
    (db, s, a.id, h.expose().to_string())
}

/// Whether one more check of `email` may start now (taken when it may).
async fn reserve(s: &Arc<dyn Storage>, email: &str, max: u32, at: DateTime<Utc>) -> bool {
    s.reserve_login_attempt(email, at, max, stale(at))
        .await
        .unwrap()
        == LoginReservation::Reserved
}

/// `n` failed checks of `email`.
async fn fail(s: &Arc<dyn Storage>, email: &str, n: usize, at: DateTime<Utc>) {
    for _ in 0..n {
        assert!(reserve(s, email, MAX, at).await);
        s.record_login_failure(email, at).await.unwrap();
    }
}

async fn a_reservation_reads_the_live_account_and_its_hash(backend: Backend) {
    let at = now();
    let (_db, s, id, stored) = store_with(&backend, "reads@example.com", at).await;
    let (reservation, found) = s
        .reserve_and_read("reads@example.com", at, MAX, stale(at))
        .await
        .unwrap();
    assert_eq!(reservation, LoginReservation::Reserved);
    let (a, h) = found.expect("the account is live");
    assert_eq!((a.id, a.verified, h), (id, true, stored));

    let (reservation, found) = s
        .reserve_and_read("nobody@example.com", at, MAX, stale(at))
        .await
        .unwrap();
    assert_eq!(reservation, LoginReservation::Reserved);
    assert!(found.is_none());
    // The read took a check of its address: with a limit of two, one more
    // fits.
    assert!(reserve(&s, "reads@example.com", 2, at).await);
    assert!(!reserve(&s, "reads@example.com", 2, at).await);
}

async fn a_locked_address_is_refused_and_reads_nothing(backend: Backend) {
    let at = now();
    let (_db, s, _, _) = store_with(&backend, "locked@example.com", at).await;
    fail(&s, "locked@example.com", MAX as usize, at).await;
    let until = at + Duration::minutes(15);
    s.lock_login("locked@example.com", MAX, until)
        .await
        .unwrap();

    let (reservation, found) = s
        .reserve_and_read("locked@example.com", at, MAX, stale(at))
        .await
        .unwrap();
    assert_eq!(
        reservation,
        LoginReservation::Refused {
            locked_until: Some(until),
            lockouts: 1,
        }
    );
    assert!(found.is_none());

    // MAX checks under way already: refused with no lockout on record.
    let (_db2, s2, _, _) = store_with(&backend, "busy@example.com", at).await;
    for _ in 0..MAX {
        assert!(reserve(&s2, "busy@example.com", MAX, at).await);
    }
    let (reservation, found) = s2
        .reserve_and_read("busy@example.com", at, MAX, stale(at))
        .await
        .unwrap();
    assert_eq!(
        reservation,
        LoginReservation::Refused {
            locked_until: None,
            lockouts: 0,
        }
    );
    assert!(found.is_none());
}

async fn a_check_given_back_with_its_session_forgets_the_failures(backend: Backend) {
    let at = now();
    let (_db, s, id, _) = store_with(&backend, "settles@example.com", at).await;
    fail(&s, "settles@example.com", (MAX - 1) as usize, at).await;
    let (reservation, _) = s
        .reserve_and_read("settles@example.com", at, MAX, stale(at))
        .await
        .unwrap();
    assert_eq!(reservation, LoginReservation::Reserved);

    let session = new_session(id, at);
    let started = s
        .start_session(&session, "t", 100, live(at), Some("settles@example.com"))
        .await
        .unwrap();
    assert!(started);
    // Four failures and the check were forgotten: MAX checks fit again.
    for i in 0..MAX {
        assert!(
            reserve(&s, "settles@example.com", MAX, at).await,
            "check {i}"
        );
    }
    assert!(!reserve(&s, "settles@example.com", MAX, at).await);
}

async fn a_check_given_back_beside_another_leaves_that_one_reserved(backend: Backend) {
    let at = now();
    let (_db, s, id, _) = store_with(&backend, "beside@example.com", at).await;
    assert!(reserve(&s, "beside@example.com", 2, at).await);
    assert!(reserve(&s, "beside@example.com", 2, at).await);
    assert!(!reserve(&s, "beside@example.com", 2, at).await);

    let session = new_session(id, at);
    assert!(s
        .start_session(&session, "t", 100, live(at), Some("beside@example.com"))
        .await
        .unwrap());
    // One given back, the other still under way.
    assert!(reserve(&s, "beside@example.com", 2, at).await);
    assert!(!reserve(&s, "beside@example.com", 2, at).await);
}

async fn a_session_refused_to_a_gone_account_gives_its_check_back(backend: Backend) {
    let at = now();
    let (_db, s, _, _) = store_with(&backend, "gone@example.com", at).await;
    fail(&s, "gone@example.com", 2, at).await;
    assert!(reserve(&s, "gone@example.com", 3, at).await);
    assert!(!reserve(&s, "gone@example.com", 3, at).await);
    // A session of an account that is not there stores nothing; the check
    // is given back even so, and the password did match, so the failures
    // go with it.
    let session = new_session(Uuid::now_v7(), at);
    assert!(!s
        .start_session(&session, "t", 100, live(at), Some("gone@example.com"))
        .await
        .unwrap());
    for i in 0..3 {
        assert!(reserve(&s, "gone@example.com", 3, at).await, "check {i}");
    }
    assert!(!reserve(&s, "gone@example.com", 3, at).await);
}

/// Sign-ins of one account whose checks all succeeded, settled at once:
/// they queue on the account's row, and each reads what the one before
/// left, so the last one finds itself alone and forgets the failures.
async fn sign_ins_of_one_account_settling_at_once_forget_every_failure(backend: Backend) {
    const SIGN_INS: usize = 12;
    const LIMIT: u32 = 20;
    let at = now();
    let (_db, s, id, _) = store_with(&backend, "together@example.com", at).await;
    fail(&s, "together@example.com", 3, at).await;
    for _ in 0..SIGN_INS {
        assert!(reserve(&s, "together@example.com", LIMIT, at).await);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(SIGN_INS));
    let starts: Vec<_> = (0..SIGN_INS)
        .map(|i| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            tokio::spawn(async move {
                let session = new_session(id, at);
                barrier.wait().await;
                s.start_session(
                    &session,
                    &format!("together-{i}"),
                    100,
                    live(at),
                    Some("together@example.com"),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    for start in starts {
        assert!(start.await.unwrap());
    }
    for i in 0..LIMIT {
        assert!(
            reserve(&s, "together@example.com", LIMIT, at).await,
            "check {i}: failures or reservations were left behind"
        );
    }
    assert!(!reserve(&s, "together@example.com", LIMIT, at).await);
}
