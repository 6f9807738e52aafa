//! PostgreSQL dialect: the production backend, shared by every instance,
//! with native UUIDs and times and NOTIFY/LISTEN between instances.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgQueryResult};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::dialect::{ConnectOptions, Dialect};
use super::sql::Flavour;
use super::StorageError;

pub(super) struct Postgres;

#[async_trait]
impl Dialect for Postgres {
    type Db = sqlx::Postgres;
    type Uuid = Uuid;
    type Uuids = Vec<Uuid>;
    type Time = DateTime<Utc>;
    type Integer = i32;

    const FLAVOUR: Flavour = Flavour::Postgres;
    const SINGLE_WRITER: bool = false;
    const PING_BEFORE_USE: bool = true;
    const BEGIN_WRITE: Option<&'static str> = None;
    const MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

    fn connect_options(url: &str) -> Result<ConnectOptions<Self>, StorageError> {
        Ok(PgConnectOptions::from_str(url)?)
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    fn store_uuid(id: Uuid) -> Uuid {
        id
    }

    fn load_uuid(stored: Uuid) -> Option<Uuid> {
        Some(stored)
    }

    fn store_uuids(ids: &[Uuid]) -> Vec<Uuid> {
        ids.to_vec()
    }

    fn store_time(t: DateTime<Utc>) -> DateTime<Utc> {
        t
    }

    fn load_time(stored: DateTime<Utc>) -> Option<DateTime<Utc>> {
        Some(stored)
    }

    async fn listen(
        pool: &PgPool,
        channel: &'static str,
        wake: Arc<Notify>,
        stop: CancellationToken,
    ) {
        // Failures back off (the worker keeps polling meanwhile), so a
        // database that refuses LISTEN is not hammered with reconnections.
        let mut backoff =
            crate::backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        loop {
            let listening = crate::backoff::until_ok(
                &mut backoff,
                &stop,
                &format!("LISTEN on {channel} (polling meanwhile)"),
                || async {
                    let mut listener = PgListener::connect_with(pool).await?;
                    listener.listen(channel).await?;
                    Ok::<_, sqlx::Error>(listener)
                },
            )
            .await;
            let Some(mut listener) = listening else {
                return;
            };
            // What was notified while the listener was down would otherwise wait for a poll.
            wake.notify_one();
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    received = listener.recv() => match received {
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, channel, "LISTEN connection lost; reconnecting");
                            break;
                        }
                    },
                }
            }
        }
    }
}
