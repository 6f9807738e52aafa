//! Sessions against each backend directly: batched rotation of refresh
//! tokens (what one batch rotates and what it leaves to the one-token path,
//! and batches that race for the same tokens), and sign-ins of one account
//! that start their sessions at once.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use account_service::domain::{Session, SessionEnd};
use account_service::storage::{Liveness, Refresh, Refreshed, Rotation, Storage};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;
use crate::storage::{account, code_of, hash, mail};

on_both_backends!(
    a_batch_rotates_each_current_token_once_and_leaves_the_rest,
    batches_racing_for_one_token_rotate_it_once,
    batches_locking_the_same_tokens_in_any_order_all_finish,
    sessions_started_at_once_beyond_the_limit_leave_exactly_the_limit,
    a_live_session_keeps_every_token_so_an_old_one_is_always_reuse,
    only_live_sessions_count_towards_the_limit_and_the_revoked,
);

const IDLE: StdDuration = StdDuration::from_secs(3600);
const LIFETIME: StdDuration = StdDuration::from_secs(86_400);

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn live(at: DateTime<Utc>) -> Liveness {
    Liveness::at(at, IDLE, LIFETIME)
}

/// A verified account with `n` sessions, the i-th held by the token hash
/// `{tag}-{i}`.
async fn sessions(s: &Arc<dyn Storage>, tag: &str, n: usize, at: DateTime<Utc>) -> Vec<Session> {
    let a = verified_account(s, &format!("{tag}@example.com"), at).await;
    let mut out = Vec::new();
    for i in 0..n {
        let session = new_session(a.id, at);
        assert!(s
            .start_session(&session, &format!("{tag}-{i}"), 100, live(at), None)
            .await
            .unwrap());
        out.push(session);
    }
    out
}

/// A new database, and the storage over it (kept while the database is).
async fn store(backend: &Backend) -> (TestDatabase, Arc<dyn Storage>) {
    let db = TestDatabase::create(backend).await;
    let s = db.connect().await;
    (db, s)
}

/// A verified account of `email`, made at `at`.
async fn verified_account(
    s: &Arc<dyn Storage>,
    email: &str,
    at: DateTime<Utc>,
) -> account_service::domain::Account {
    let a = account(email, at);
    s.create_account(&a, &hash().await, &mail(&a, at), &code_of(&a))
        .await
        .unwrap();
    s.mark_verified(a.id, at).await.unwrap();
    a
}

/// A session of `account_id` that starts at `at`.
pub(crate) fn new_session(account_id: Uuid, at: DateTime<Utc>) -> Session {
    Session {
        id: Uuid::now_v7(),
        account_id,
        created_at: at,
        last_used_at: at,
        user_agent: "agent".into(),
        ip_address: "203.0.113.9".into(),
        two_step: false,
    }
}

fn rotation(token: &str, at: DateTime<Utc>) -> Rotation {
    Rotation {
        current: token.into(),
        previous: token.into(),
        successor: format!("{token}+"),
        live: live(at),
    }
}

/// What the one-token path answers for `token` at `at`.
async fn refresh(s: &Arc<dyn Storage>, token: &str, at: DateTime<Utc>) -> Refreshed {
    let presented = [token.to_string()];
    let successor = format!("{token}+");
    s.refresh_session(&Refresh {
        presented: &presented,
        successor: &successor,
        live: live(at),
        reuse_interval: StdDuration::from_secs(10),
    })
    .await
    .unwrap()
}

async fn a_batch_rotates_each_current_token_once_and_leaves_the_rest(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t0 = now();
    let held = sessions(&s, "batch", 5, t0).await;
    // batch-2 is already rotated, batch-3's session was signed out and
    // batch-4's session has been idle too long at the batch's moment.
    let t1 = t0 + Duration::seconds(1);
    assert!(matches!(
        refresh(&s, "batch-2", t1).await,
        Refreshed::Rotated(_)
    ));
    s.end_session(held[3].account_id, held[3].id, SessionEnd::SignedOut, t1)
        .await
        .unwrap();

    let t2 = t0 + Duration::seconds(2);
    let idle_cut = Rotation {
        live: Liveness {
            used_after: t1,
            ..live(t2)
        },
        ..rotation("batch-4", t2)
    };
    let twice = Rotation {
        live: live(t2 + Duration::microseconds(7)),
        ..rotation("batch-0", t2)
    };
    let batch = vec![
        rotation("batch-0", t2),
        rotation("batch-1", t2),
        twice.clone(),
        rotation("batch-2", t2),
        rotation("batch-3", t2),
        idle_cut.clone(),
        rotation("never-issued", t2),
    ];
    let rotated = s.rotate_current(&batch).await.unwrap();

    let mut answered: Vec<(String, Uuid)> = rotated
        .iter()
        .map(|r| (r.rotation.current.clone(), r.session.id))
        .collect();
    answered.sort();
    let mut expected = vec![
        ("batch-0".to_string(), held[0].id),
        ("batch-0".to_string(), held[0].id),
        ("batch-1".to_string(), held[1].id),
    ];
    expected.sort();
    assert_eq!(answered, expected, "only current tokens of live sessions");
    for r in &rotated {
        assert!(
            r.rotation == twice || r.rotation == batch[0] || r.rotation == batch[1],
            "each answer names the request it answers"
        );
        // A token asked for twice was rotated once, at one of the moments.
        let moments: Vec<_> = batch
            .iter()
            .filter(|b| b.current == r.rotation.current)
            .map(|b| b.live.now)
            .collect();
        assert!(moments.contains(&r.session.last_used_at));
        assert_eq!(r.session.account_id, held[0].account_id);
    }

    // The successors are current, and the presented tokens rotated out:
    // within the interval they answer their session again (the successor is
    // still current), and the successor itself rotates.
    let t3 = t2 + Duration::seconds(1);
    for token in ["batch-0", "batch-1"] {
        assert!(s
            .rotate_current(&[rotation(token, t3)])
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            refresh(&s, token, t3).await,
            Refreshed::Rotated(_)
        ));
        let next = format!("{token}+");
        assert_eq!(
            s.rotate_current(&[rotation(&next, t3)])
                .await
                .unwrap()
                .len(),
            1
        );
    }
    // Nothing was changed for the others: the idle session is still there
    // to be refused as expired, the ended one as invalid, and the unknown
    // token is unknown.
    assert_eq!(refresh(&s, "batch-3", t3).await, Refreshed::Invalid);
    assert_eq!(refresh(&s, "never-issued", t3).await, Refreshed::Invalid);
    let relaxed = rotation("batch-4", t3);
    assert_eq!(
        s.rotate_current(std::slice::from_ref(&relaxed))
            .await
            .unwrap()
            .len(),
        1,
        "the idle-cut token was left current"
    );
    // batch-2 was rotated once, before the batch: its successor is current
    // and it was not rotated again, so presenting it answers its session.
    assert!(matches!(
        refresh(&s, "batch-2", t1 + Duration::seconds(2)).await,
        Refreshed::Rotated(_)
    ));
    assert_eq!(
        s.rotate_current(&[rotation("batch-2+", t3)])
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn batches_racing_for_one_token_rotate_it_once(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t0 = now();
    let n = 40;
    sessions(&s, "race", n + 1, t0).await;
    let t1 = t0 + Duration::seconds(1);
    // Each batch holds the shared token and one of its own.
    let calls = (1..=n).map(|i| {
        let s = Arc::clone(&s);
        async move {
            let batch = [rotation("race-0", t1), rotation(&format!("race-{i}"), t1)];
            s.rotate_current(&batch).await
        }
    });
    let results = futures::future::join_all(calls).await;
    let mut shared = 0;
    let mut own = 0;
    for result in results {
        for r in result.expect("a batch fails only on a database error") {
            if r.rotation.current == "race-0" {
                shared += 1;
            } else {
                own += 1;
            }
        }
    }
    assert_eq!(shared, 1, "one batch rotated the shared token");
    assert_eq!(own, n, "every batch rotated its own token");
    assert_eq!(
        s.rotate_current(&[rotation("race-0+", t1)])
            .await
            .unwrap()
            .len(),
        1,
        "one successor, current"
    );
}

async fn batches_locking_the_same_tokens_in_any_order_all_finish(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t0 = now();
    let n = 8;
    sessions(&s, "order", n, t0).await;
    let t1 = t0 + Duration::seconds(1);
    let tokens: Vec<String> = (0..n).map(|i| format!("order-{i}")).collect();
    let calls = (0..30).map(|k| {
        let s = Arc::clone(&s);
        let mut batch: Vec<Rotation> = tokens.iter().map(|t| rotation(t, t1)).collect();
        if k % 2 == 1 {
            batch.reverse();
        }
        batch.rotate_left(k % n);
        async move { s.rotate_current(&batch).await }
    });
    let results = futures::future::join_all(calls).await;
    let mut rotated = Vec::new();
    for result in results {
        rotated.extend(
            result
                .expect("no batch fails (no deadlock)")
                .into_iter()
                .map(|r| r.rotation.current),
        );
    }
    rotated.sort();
    assert_eq!(rotated, tokens, "each token rotated exactly once");
}

/// Sessions of one account started at once, with no password check to
/// spread them out, beyond the limit: exactly the limit stays live, and
/// each evicted session has its SESSION_ENDED event after its STARTED one.
async fn sessions_started_at_once_beyond_the_limit_leave_exactly_the_limit(backend: Backend) {
    const STARTS: usize = 40;
    const LIMIT: u32 = 3;
    let (_db, s) = store(&backend).await;
    let at = now();
    let a = verified_account(&s, "starts@example.com", at).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(STARTS));
    let starts: Vec<_> = (0..STARTS)
        .map(|i| {
            let (s, barrier) = (Arc::clone(&s), Arc::clone(&barrier));
            tokio::spawn(async move {
                let session = new_session(a.id, at);
                barrier.wait().await;
                s.start_session(&session, &format!("start-{i}"), LIMIT, live(at), None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for start in starts {
        assert!(start.await.unwrap(), "every start is of a live account");
    }

    let live_now = s.live_sessions(a.id, live(at)).await.unwrap();
    assert_eq!(live_now.len(), LIMIT as usize, "{live_now:?}");
    // On PostgreSQL the log holds back what lies above the oldest running
    // transaction of the whole cluster, which another test may have open.
    let events = eventually(StdDuration::from_secs(20), || {
        let s = Arc::clone(&s);
        async move {
            let batch = s.read_events(Default::default(), 500).await.unwrap();
            (!batch.held_back).then_some(batch.events)
        }
    })
    .await
    .expect("the log's horizon passes the sign-ins");
    let mut started = Vec::new();
    let mut ended = Vec::new();
    for e in events.iter().filter(|e| e.account_id == a.id) {
        match e.kind {
            7 => started.push(e.session_id.unwrap()),
            8 => {
                let id = e.session_id.unwrap();
                assert!(started.contains(&id), "{id} ended before it started");
                ended.push(id);
            }
            _ => {}
        }
    }
    assert_eq!(started.len(), STARTS);
    assert_eq!(ended.len(), STARTS - LIMIT as usize);
    assert!(live_now.iter().all(|l| !ended.contains(&l.id)));
}

async fn a_live_session_keeps_every_token_so_an_old_one_is_always_reuse(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t0 = now();
    let held = sessions(&s, "kept", 1, t0).await;
    let t1 = t0 + Duration::seconds(1);
    for token in ["kept-0", "kept-0+"] {
        let rotated = refresh(&s, token, t1).await;
        assert!(matches!(rotated, Refreshed::Rotated(_)), "{token}");
    }
    // Housekeeping long after: the live session loses none of its tokens.
    let later = t1 + Duration::days(30);
    assert_eq!(s.prune_sessions(later).await.unwrap(), 0);
    let t2 = t1 + Duration::minutes(30);
    assert!(matches!(refresh(&s, "kept-0", t2).await, Refreshed::Reused));
    assert!(matches!(
        refresh(&s, "kept-0++", t2).await,
        Refreshed::Invalid
    ));
    // Once it has ended, it goes with its tokens.
    assert_eq!(s.prune_sessions(later).await.unwrap(), 1);
    assert!(s.session_states(&[held[0].id]).await.unwrap().is_empty());
    assert!(matches!(
        refresh(&s, "kept-0", t2).await,
        Refreshed::Invalid
    ));
}

async fn only_live_sessions_count_towards_the_limit_and_the_revoked(backend: Backend) {
    let (_db, s) = store(&backend).await;
    let t = now();
    let a = verified_account(&s, "counted@example.com", t).await;
    // Past its lifetime but used a moment ago, and not yet ended by
    // housekeeping; and a live one used less recently.
    let lifetime = chrono::Duration::from_std(LIFETIME).unwrap();
    let outlived = Session {
        last_used_at: t - Duration::minutes(5),
        ..new_session(a.id, t - lifetime - Duration::minutes(1))
    };
    let idle = new_session(a.id, t - Duration::minutes(30));
    let newest = new_session(a.id, t);
    for (session, at) in [(&outlived, outlived.created_at), (&idle, idle.created_at)] {
        assert!(s
            .start_session(session, &session.id.to_string(), 2, live(at), None)
            .await
            .unwrap());
    }
    assert!(s
        .start_session(&newest, "newest", 2, live(t), None)
        .await
        .unwrap());
    let ids: Vec<Uuid> = s
        .live_sessions(a.id, live(t))
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids, [newest.id, idle.id], "the outlived one took no place");

    let revoked = s
        .end_sessions(a.id, None, SessionEnd::Revoked, live(t))
        .await
        .unwrap();
    assert_eq!(revoked, 2, "the outlived session was not live to revoke");
    let states = s
        .session_states(&[outlived.id, idle.id, newest.id])
        .await
        .unwrap();
    assert!(states.iter().all(|state| state.ended), "{states:?}");
}
