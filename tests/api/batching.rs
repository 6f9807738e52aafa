//! Concurrent confirmations and look-ups by id share one statement: each
//! caller still gets its own row, or NOT_FOUND.

use std::sync::{Arc, Mutex};

use account_service::domain::Account;
use account_service::proto::account::v1::ConfirmRegistrationRequest;
use account_service::storage::{Batcher, Storage, StorageError};
use chrono::{Duration, SubsecRound, Utc};
use sqlx::Connection;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::helpers::*;
use crate::on_both_backends;
use crate::storage::{account, code_of, hash, mail};

on_both_backends!(
    one_statement_answers_each_id_of_a_batch,
    callers_queued_behind_a_statement_share_the_next_one,
    concurrent_confirmations_each_get_their_own_account,
);

async fn stored(storage: &Arc<dyn Storage>, email: &str) -> Account {
    let t = Utc::now().trunc_subsecs(6) - Duration::seconds(60);
    let a = account(email, t);
    storage
        .create_account(&a, &hash().await, &mail(&a, t), &code_of(&a))
        .await
        .unwrap();
    a
}

async fn one_statement_answers_each_id_of_a_batch(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let s = db.connect().await;
    let fresh = stored(&s, "fresh@example.com").await;
    let done = stored(&s, "done@example.com").await;
    let earlier = Utc::now().trunc_subsecs(6) - Duration::seconds(30);
    let done = s.mark_verified(done.id, earlier).await.unwrap();
    let missing = Uuid::now_v7();
    let now = Utc::now().trunc_subsecs(6);

    let rows = s
        .mark_all_verified(&[missing, fresh.id, fresh.id, done.id], now)
        .await
        .unwrap();

    assert_eq!(rows.len(), 2, "{rows:?}");
    let row = |id| rows.iter().find(|a: &&Account| a.id == id).unwrap();
    assert!(row(fresh.id).verified);
    assert_eq!(row(fresh.id).updated_at, now);
    // Already verified: returned, but its updated_at does not move.
    assert_eq!(row(done.id), &done);
    let read = s
        .accounts_by_ids(&[done.id, missing, fresh.id, done.id])
        .await
        .unwrap();
    assert_eq!(read.len(), 2, "{read:?}");
    assert!(read.iter().all(|a| a.verified));
    let mut ids: Vec<Uuid> = read.iter().map(|a| a.id).collect();
    ids.sort();
    let mut expected = vec![done.id, fresh.id];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(s.accounts_by_ids(&[]).await.unwrap().is_empty());
    // A lone id takes a statement of its own.
    assert_eq!(
        s.accounts_by_ids(&[fresh.id]).await.unwrap(),
        vec![row(fresh.id).clone()]
    );
    assert!(s.accounts_by_ids(&[missing]).await.unwrap().is_empty());
}

async fn callers_queued_behind_a_statement_share_the_next_one(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let s = db.connect().await;
    let fresh = stored(&s, "fresh@example.com").await;
    let done = stored(&s, "done@example.com").await;
    let done = s
        .mark_verified(done.id, Utc::now().trunc_subsecs(6))
        .await
        .unwrap();
    let missing = Uuid::now_v7();

    // Every statement is recorded; the first one waits for a permit, so
    // that the callers after it queue up behind it.
    let statements = Arc::new(Mutex::new(Vec::<Vec<Uuid>>::new()));
    let gate = Arc::new(Semaphore::new(0));
    let batcher = {
        let (s, statements, gate) = (Arc::clone(&s), Arc::clone(&statements), Arc::clone(&gate));
        Batcher::new(move |ids: Vec<Uuid>| {
            let (s, statements, gate) =
                (Arc::clone(&s), Arc::clone(&statements), Arc::clone(&gate));
            async move {
                let first = {
                    let mut all = statements.lock().unwrap();
                    all.push(ids.clone());
                    all.len() == 1
                };
                if first {
                    gate.acquire().await.unwrap().forget();
                }
                s.mark_all_verified(&ids, Utc::now().trunc_subsecs(6)).await
            }
        })
    };
    let lead = tokio::spawn({
        let b = Arc::clone(&batcher);
        async move { b.call(done.id).await }
    });
    let in_flight = eventually(std::time::Duration::from_secs(5), || async {
        (statements.lock().unwrap().len() == 1).then_some(())
    })
    .await;
    assert!(in_flight.is_some(), "the first statement did not start");
    let queued: Vec<_> = [missing, fresh.id, fresh.id, done.id]
        .into_iter()
        .map(|id| {
            let b = Arc::clone(&batcher);
            tokio::spawn(async move { b.call(id).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    gate.add_permits(1);

    assert_eq!(lead.await.unwrap().unwrap(), done);
    let mut answers = Vec::new();
    for q in queued {
        answers.push(q.await.unwrap());
    }
    assert!(matches!(answers[0], Err(StorageError::NotFound)));
    for answer in &answers[1..3] {
        let a = answer.as_ref().unwrap();
        assert_eq!(a.id, fresh.id);
        assert!(a.verified);
    }
    assert_eq!(answers[3].as_ref().unwrap(), &done);
    // One statement for the lone first caller, one for the four queued
    // behind it (three distinct ids).
    let all = statements.lock().unwrap().clone();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0], vec![done.id]);
    let mut expected = vec![missing, fresh.id, done.id];
    expected.sort();
    assert_eq!(all[1], expected);
}

async fn concurrent_confirmations_each_get_their_own_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut accounts = Vec::new();
    for _ in 0..24 {
        let email = unique_email();
        let account = app.register(registration(&email)).await.unwrap();
        accounts.push(account);
    }
    let tokens = app.tokens();
    let now = Utc::now();
    let calls: Vec<_> = accounts
        .iter()
        .flat_map(|a| {
            let token = tokens.issue(Uuid::parse_str(&a.id).unwrap(), now).unwrap();
            [token.clone(), token]
        })
        .map(|token| {
            let mut client = app.client.clone();
            tokio::spawn(async move {
                client
                    .confirm_registration(ConfirmRegistrationRequest::with_token(token))
                    .await
                    .map(|r| r.into_inner().account.unwrap())
            })
        })
        .collect();
    let mut confirmed = Vec::new();
    for call in calls {
        confirmed.push(call.await.unwrap().unwrap());
    }
    for (i, account) in confirmed.iter().enumerate() {
        assert_eq!(account.id, accounts[i / 2].id);
        assert_eq!(account.email, accounts[i / 2].email);
        assert!(account.verified);
    }
    let lookups: Vec<_> = accounts
        .iter()
        .map(|a| {
            let (client, id) = (app.client.clone(), a.id.clone());
            tokio::spawn(async move {
                let mut client = client;
                client
                    .get_account(account_service::proto::account::v1::GetAccountRequest {
                        lookup: Some(
                            account_service::proto::account::v1::get_account_request::Lookup::Id(
                                id,
                            ),
                        ),
                    })
                    .await
                    .map(|r| r.into_inner().account.unwrap())
            })
        })
        .collect();
    for (call, account) in lookups.into_iter().zip(&accounts) {
        let found = call.await.unwrap().unwrap();
        assert_eq!(found.id, account.id);
        assert!(found.verified);
    }
    let unknown = app.get_by_id(&Uuid::now_v7().to_string()).await;
    assert_code(&unknown, tonic::Code::NotFound);
}

/// On SQLite, look-ups by id are read on the calling thread; a row that read
/// cannot take is left to the pool, which reports it as every read does.
#[tokio::test]
async fn a_malformed_row_read_beside_the_pool_is_still_reported() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let s = db.connect().await;
    let good = stored(&s, "good@example.com").await;
    let bad = stored(&s, "bad@example.com").await;
    let read = s.accounts_by_ids(&[good.id, bad.id]).await.unwrap();
    assert_eq!(read.len(), 2, "{read:?}");

    let mut raw = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE accounts SET created_at = ?1 WHERE id = ?2")
        .bind(i64::MAX)
        .bind(bad.id.to_string())
        .execute(&mut raw)
        .await
        .unwrap();

    for ids in [vec![bad.id], vec![good.id, bad.id]] {
        let e = s.accounts_by_ids(&ids).await.unwrap_err();
        assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
    }
    // The other rows still read, and a change is seen at once.
    assert_eq!(s.account_by_id(good.id).await.unwrap(), good);
    let verified = s
        .mark_verified(good.id, Utc::now().trunc_subsecs(6))
        .await
        .unwrap();
    assert_eq!(s.account_by_id(good.id).await.unwrap(), verified);
    assert!(verified.verified);
}

/// On SQLite, the event log is read beside the pool as well: every field
/// comes back as written, batches continue where the last one ended, and a
/// row that read cannot take is left to the pool, which reports it.
#[tokio::test]
async fn the_event_log_read_beside_the_pool_keeps_every_field() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    let s = db.connect().await;
    let (account, session) = (Uuid::now_v7(), Uuid::now_v7());
    let at = Utc::now().trunc_subsecs(6);
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut raw = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
    for (kind, session_id, trace) in [
        (1_i64, None, ""),
        (7, Some(session.to_string()), traceparent),
        (8, Some(session.to_string()), ""),
    ] {
        sqlx::query(
            "INSERT INTO account_events (type, account_id, occurred_at, session_id, traceparent) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(kind)
        .bind(account.to_string())
        .bind(at.timestamp_micros())
        .bind(session_id)
        .bind(trace)
        .execute(&mut raw)
        .await
        .unwrap();
    }

    let first = s.read_events(Default::default(), 2).await.unwrap();
    assert!(!first.held_back);
    let read: Vec<_> = first
        .events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.account_id,
                e.occurred_at,
                e.session_id,
                e.traceparent.as_str(),
            )
        })
        .collect();
    assert_eq!(
        read,
        [
            (1, account, at, None, ""),
            (7, account, at, Some(session), traceparent)
        ]
    );
    let rest = s.read_events(first.events[1].position, 10).await.unwrap();
    assert_eq!(rest.events.len(), 1, "{rest:?}");
    assert_eq!(
        (rest.events[0].kind, rest.events[0].session_id),
        (8, Some(session))
    );
    assert!(rest.events[0].position.seq > first.events[1].position.seq);
    let past_the_end = s.read_events(rest.events[0].position, 10).await.unwrap();
    assert!(past_the_end.events.is_empty());

    sqlx::query("UPDATE account_events SET account_id = 'not a uuid' WHERE type = 8")
        .execute(&mut raw)
        .await
        .unwrap();
    let e = s
        .read_events(first.events[1].position, 10)
        .await
        .unwrap_err();
    assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
    assert!(s.read_events(Default::default(), 10).await.is_err());
}
