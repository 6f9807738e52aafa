//! WatchAccountEvents over the real server: every change once and in
//! order, resumable from any cursor, across two instances on one
//! PostgreSQL database, with expiry and keep-alives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use account_service::events::Cursor;
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    AccountEvent, ChangeEmailRequest, ChangePasswordRequest, DeleteAccountRequest, EventType,
    UpdateProfileRequest, WatchAccountEventsRequest,
};
use prost_types::FieldMask;
use tokio::sync::Mutex;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::helpers::*;
use crate::on_both_backends;

const PASSWORD: &str = "secret123";

/// The events a stream delivered so far, collected in the background.
pub(crate) struct Watcher {
    seen: Arc<Mutex<Vec<AccountEvent>>>,
    task: tokio::task::JoinHandle<Result<(), Status>>,
}

impl Watcher {
    pub(crate) async fn start(
        channel: &Channel,
        after_cursor: &str,
        types: &[EventType],
    ) -> Result<Watcher, Status> {
        let mut stream = AccountServiceClient::new(channel.clone())
            .watch_account_events(WatchAccountEventsRequest {
                after_cursor: after_cursor.into(),
                types: types.iter().map(|t| *t as i32).collect(),
            })
            .await?
            .into_inner();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                while let Some(event) = stream.message().await? {
                    seen.lock().await.push(event);
                }
                Ok(())
            })
        };
        Ok(Watcher { seen, task })
    }

    /// The real events (keep-alives left out) once there are at least `n`.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<AccountEvent> {
        let got = eventually(Duration::from_secs(20), || async {
            let events = self.events().await;
            (events.len() >= n).then_some(events)
        })
        .await;
        match got {
            Some(events) => events,
            None => panic!("expected {n} events, got {:?}", self.events().await),
        }
    }

    pub(crate) async fn events(&self) -> Vec<AccountEvent> {
        self.seen
            .lock()
            .await
            .iter()
            .filter(|e| e.r#type != EventType::Unspecified as i32)
            .cloned()
            .collect()
    }

    async fn all(&self) -> Vec<AccountEvent> {
        self.seen.lock().await.clone()
    }
}

fn types(events: &[AccountEvent]) -> Vec<EventType> {
    events
        .iter()
        .map(|e| EventType::try_from(e.r#type).unwrap())
        .collect()
}

async fn watch_error(app: &TestApp, after_cursor: &str, types: Vec<i32>) -> Status {
    match AccountServiceClient::new(app.channel.clone())
        .watch_account_events(WatchAccountEventsRequest {
            after_cursor: after_cursor.into(),
            types,
        })
        .await
    {
        Ok(_) => panic!("the stream was opened"),
        Err(status) => status,
    }
}

on_both_backends!(
    every_change_is_an_event_in_order_and_resumable,
    cursors_expire_and_idle_streams_get_keep_alives,
    a_long_log_is_replayed_whole_across_growing_reads,
);

/// A watcher far behind reads the log in larger and larger statements: every
/// event still arrives once and in order, across each read's boundary.
async fn a_long_log_is_replayed_whole_across_growing_reads(backend: Backend) {
    const EVENTS: i64 = 4_321;
    let app = spawn_app(backend).await;
    let id = uuid::Uuid::now_v7();
    let insert = if app.db.is_sqlite() {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {EVENTS}) \
             INSERT INTO account_events (type, account_id, occurred_at) \
             SELECT 1 + i % 3, '{id}', CAST(strftime('%s', 'now') AS INTEGER) * 1000000 FROM n"
        )
    } else {
        format!(
            "INSERT INTO account_events (type, account_id, occurred_at) \
             SELECT 1 + i % 3, '{id}', now() FROM generate_series(1, {EVENTS}) AS i"
        )
    };
    app.db.execute(&insert).await;
    let watcher = Watcher::start(&app.channel, "", &[]).await.unwrap();
    let events = watcher.wait_for(EVENTS as usize).await;
    assert_eq!(events.len(), EVENTS as usize, "no event twice");
    let positions: Vec<_> = events
        .iter()
        .map(|e| Cursor::parse(&e.cursor).unwrap().unwrap().position)
        .collect();
    assert!(
        positions
            .windows(2)
            .all(|w| (w[0].xid, w[0].seq) < (w[1].xid, w[1].seq)),
        "in log order"
    );
    let kinds: Vec<i32> = events.iter().map(|e| e.r#type).collect();
    let expected: Vec<i32> = (1..=EVENTS).map(|i| 1 + (i % 3) as i32).collect();
    assert_eq!(kinds, expected);
    assert!(events.iter().all(|e| e.account_id == id.to_string()));
}

async fn every_change_is_an_event_in_order_and_resumable(backend: Backend) {
    let app = spawn_app(backend).await;
    let from_start = Watcher::start(&app.channel, "", &[]).await.unwrap();
    let deletions = Watcher::start(&app.channel, "", &[EventType::AccountDeleted])
        .await
        .unwrap();
    let mut client = app.client.clone();
    let email = unique_email();

    let (account, link) = app.register_and_get_link(&email).await;
    let id = account.id.clone();
    app.http.get(&link).send().await.unwrap();
    // Confirming again is not a change.
    app.http.get(&link).send().await.unwrap();
    client
        .update_profile(UpdateProfileRequest {
            id: id.clone(),
            update_mask: Some(FieldMask {
                paths: vec!["username".into()],
            }),
            username: "renamed".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let new = unique_email();
    client
        .change_email(ChangeEmailRequest {
            id: id.clone(),
            new_email: new.clone(),
            current_password: PASSWORD.into(),
            code: String::new(),
        })
        .await
        .unwrap();
    let mails = app.wait_for_mails(3).await;
    let change_link = mails
        .iter()
        .find(|m| m.to.contains(&new))
        .expect("the link to the new address")
        .link();
    app.http.get(&change_link).send().await.unwrap();
    client
        .change_password(ChangePasswordRequest {
            id: id.clone(),
            current_password: PASSWORD.into(),
            password: "other-pass1".into(),
            confirm_password: "other-pass1".into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap();
    client
        .delete_account(DeleteAccountRequest {
            id: id.clone(),
            current_password: "other-pass1".into(),
            code: String::new(),
        })
        .await
        .unwrap();

    let expected = [
        EventType::AccountRegistered,
        EventType::AccountVerified,
        EventType::ProfileUpdated,
        EventType::EmailChanged,
        EventType::PasswordChanged,
        EventType::AccountDeleted,
    ];
    let events = from_start.wait_for(6).await;
    assert_eq!(types(&events), expected);
    assert!(events.iter().all(|e| e.account_id == id));
    assert!(events.iter().all(|e| e.occurred_at.is_some()));
    let only_deleted = deletions.wait_for(1).await;
    assert_eq!(types(&only_deleted), [EventType::AccountDeleted]);
    assert_eq!(only_deleted[0].cursor, events[5].cursor);

    // Resuming after the third event gives exactly the rest.
    let resumed = Watcher::start(&app.channel, &events[2].cursor, &[])
        .await
        .unwrap();
    let rest = resumed.wait_for(3).await;
    assert_eq!(rest, events[3..]);
    // Resuming after the last gives nothing, until something happens.
    let caught_up = Watcher::start(&app.channel, &events[5].cursor, &[])
        .await
        .unwrap();
    app.register(registration(&unique_email())).await.unwrap();
    let next = caught_up.wait_for(1).await;
    assert_eq!(types(&next), [EventType::AccountRegistered]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(from_start.events().await.len(), 7, "no duplicates");
    assert_eq!(caught_up.events().await.len(), 1);
    assert!(!from_start.task.is_finished());

    // Bad requests are refused before any stream starts.
    for cursor in ["garbage", "djE6MTox", &"A".repeat(60 * 1024)] {
        let status = watch_error(&app, cursor, vec![]).await;
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(violations(&status)[0].0, "after_cursor");
    }
    for bad in [vec![0], vec![99], vec![-1]] {
        let status = watch_error(&app, "", bad).await;
        assert_eq!(status.code(), Code::InvalidArgument);
    }
}

async fn cursors_expire_and_idle_streams_get_keep_alives(backend: Backend) {
    // Long enough that a loaded machine resumes well within it.
    let retention = Duration::from_secs(4);
    let app = spawn_app(backend)
        .set("ACCOUNT_EVENT_RETENTION", "4s")
        .set("ACCOUNT_EVENT_KEEPALIVE", "0.3")
        .await;
    let watcher = Watcher::start(&app.channel, "", &[]).await.unwrap();
    app.register(registration(&unique_email())).await.unwrap();
    // The event occurred before Register answered.
    let registered = tokio::time::Instant::now();
    let events = watcher.wait_for(1).await;
    let cursor = events[0].cursor.clone();

    // Within the retention, the cursor resumes.
    Watcher::start(&app.channel, &cursor, &[]).await.unwrap();

    // Idle: keep-alives carry the watcher's cursor and no account. (Those
    // sent while Register ran, on a slow machine, still carry the start.)
    let position = |c: &str| Cursor::parse(c).unwrap().unwrap().position;
    let event_position = position(&cursor);
    let alive = eventually(Duration::from_secs(5), || async {
        let all = watcher.all().await;
        let after_event = all
            .iter()
            .filter(|e| e.r#type == EventType::Unspecified as i32)
            .filter(|e| position(&e.cursor) == event_position)
            .count();
        (after_event >= 2).then_some(all)
    })
    .await
    .expect("keep-alives on an idle stream, at the event's position");
    let keepalives: Vec<_> = alive
        .iter()
        .filter(|e| e.r#type == EventType::Unspecified as i32)
        .collect();
    assert!(keepalives.iter().all(|k| k.account_id.is_empty()));
    assert!(keepalives
        .iter()
        .all(|k| position(&k.cursor) <= event_position));

    // Past the retention, the event's cursor is refused.
    tokio::time::sleep_until(registered + retention + Duration::from_millis(300)).await;
    let status = watch_error(&app, &cursor, vec![]).await;
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(reason(&status).as_deref(), Some("CURSOR_EXPIRED"));
    // A quiet stream's keep-alives stay fresh: nothing was missed.
    let fresh = watcher.all().await.last().unwrap().cursor.clone();
    assert_ne!(fresh, cursor);
    Watcher::start(&app.channel, &fresh, &[]).await.unwrap();
    // An empty cursor always works.
    Watcher::start(&app.channel, "", &[]).await.unwrap();
}

/// Two instances on one PostgreSQL database take changes concurrently
/// while two consumers watch, one of each instance: one from the start,
/// one resuming from a cursor taken mid-way. Each sees every event exactly
/// once, in the log's order.
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_two_consumers_every_event_exactly_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let db = TestDatabase::create(&backend).await;
    let first = spawn_app(db.shared()).await;
    let second = spawn_app(db.shared()).await;
    let early = Watcher::start(&first.channel, "", &[]).await.unwrap();

    // Accounts on both instances, then many concurrent profile updates
    // through both, so that transactions commit out of order.
    let mut ids = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &first } else { &second };
        ids.push(
            app.register(registration(&unique_email()))
                .await
                .unwrap()
                .id,
        );
    }
    let updates = |app: &TestApp, round: usize| {
        let ids = ids.clone();
        let client = app.client.clone();
        async move {
            let mut calls = Vec::new();
            for (n, id) in ids.iter().enumerate() {
                for k in 0..5 {
                    let mut client = client.clone();
                    let id = id.clone();
                    calls.push(tokio::spawn(async move {
                        client
                            .update_profile(UpdateProfileRequest {
                                id,
                                update_mask: Some(FieldMask {
                                    paths: vec!["first_name".into()],
                                }),
                                first_name: format!("r{round}-n{n}-k{k}"),
                                ..Default::default()
                            })
                            .await
                    }));
                }
            }
            for call in calls {
                call.await.unwrap().unwrap();
            }
        }
    };
    tokio::join!(updates(&first, 0), updates(&second, 1));
    let midway = early.wait_for(20).await;
    let cursor = midway[19].cursor.clone();
    let late = Watcher::start(&second.channel, &cursor, &[]).await.unwrap();
    tokio::join!(updates(&second, 2), updates(&first, 3));
    for i in 0..4 {
        let app = if i % 2 == 0 { &second } else { &first };
        ids.push(
            app.register(registration(&unique_email()))
                .await
                .unwrap()
                .id,
        );
    }

    // What the log holds, in its order.
    let total = usize::try_from(db_count(&db).await).unwrap();
    assert_eq!(total, 10 + 4 * 6 * 5, "one event per change");
    let from_start = early.wait_for(total).await;
    let resumed = late.wait_for(total - 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let from_start_final = early.events().await;
    let resumed_final = late.events().await;
    assert_eq!(from_start_final.len(), total, "no duplicates");
    assert_eq!(resumed_final.len(), total - 20, "no duplicates");
    assert_eq!(from_start, from_start_final);
    assert_eq!(resumed, resumed_final);
    assert_eq!(
        resumed[..],
        from_start[20..],
        "the same events in the same order"
    );
    let cursors: std::collections::HashSet<_> = from_start.iter().map(|e| &e.cursor).collect();
    assert_eq!(cursors.len(), total, "every event once");

    // Each account's history in the order it happened.
    let mut per_account: HashMap<&str, Vec<EventType>> = HashMap::new();
    for e in &from_start {
        per_account
            .entry(e.account_id.as_str())
            .or_default()
            .push(EventType::try_from(e.r#type).unwrap());
    }
    for id in &ids {
        let history = &per_account[id.as_str()];
        assert_eq!(history[0], EventType::AccountRegistered, "{id}");
        assert!(history[1..].iter().all(|t| *t == EventType::ProfileUpdated));
    }
}

async fn db_count(db: &TestDatabase) -> i64 {
    let url = db.url.clone();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM account_events")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

/// Open streams end at shutdown instead of holding it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let mut app = spawn_app(Backend::Sqlite).set("SHUTDOWN_GRACE", "20").await;
    let watcher = Watcher::start(&app.channel, "", &[]).await.unwrap();
    app.register(registration(&unique_email())).await.unwrap();
    watcher.wait_for(1).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the application stopped with a stream open");
    assert!(started.elapsed() < Duration::from_secs(10));
    let ended = tokio::time::timeout(Duration::from_secs(5), watcher.task)
        .await
        .expect("the stream ended")
        .unwrap();
    // It ends saying why, so the consumer resumes elsewhere.
    let status = ended.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

/// Streams are bounded per process: one past the bound is refused at once,
/// and a slot frees when a consumer goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_are_bounded() {
    // One client opens them all: its share is the whole instance.
    let app = spawn_app(Backend::Sqlite)
        .set("EVENT_STREAMS_PER_CALLER", "256")
        .await;
    let endpoint = || {
        Channel::from_shared(format!("http://{}", app.grpc_addr))
            .unwrap()
            .connect_lazy()
    };
    let channels: Vec<Channel> = (0..4).map(|_| endpoint()).collect();
    let mut open = Vec::new();
    for i in 0..account_service::events::MAX_WATCHERS {
        let channel = &channels[i % channels.len()];
        open.push(Watcher::start(channel, "", &[]).await.unwrap());
    }
    let refused = watch_error(&app, "", vec![]).await;
    assert_eq!(refused.code(), Code::ResourceExhausted);
    let gone = open.pop().unwrap();
    gone.task.abort();
    let reopened = eventually(Duration::from_secs(10), || async {
        Watcher::start(&app.channel, "", &[]).await.ok()
    })
    .await;
    assert!(reopened.is_some(), "a slot frees when a consumer goes");
}

/// The log is read in transaction-id order, whatever the ids look like as
/// text (99 before 100), and in sequence order within a transaction.
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_read_in_transaction_order() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let app = spawn_app(backend).await;
    let id = uuid::Uuid::now_v7();
    app.db
        .execute(&format!(
            "INSERT INTO account_events (xid, type, account_id, occurred_at) VALUES \
             ('100'::xid8, 1, '{id}', now()), ('99'::xid8, 2, '{id}', now()), \
             ('1000'::xid8, 3, '{id}', now()), ('99'::xid8, 4, '{id}', now())"
        ))
        .await;
    let batch = app
        .storage
        .read_events(Default::default(), 10)
        .await
        .unwrap();
    let order: Vec<(u64, i64)> = batch
        .events
        .iter()
        .map(|e| (e.position.xid, e.kind))
        .collect();
    assert_eq!(order, [(99, 2), (99, 4), (100, 1), (1000, 3)]);
    let rest = app
        .storage
        .read_events(batch.events[1].position, 10)
        .await
        .unwrap();
    assert_eq!(rest.events.len(), 2);
    assert_eq!(rest.events[0].position.xid, 100);
}
