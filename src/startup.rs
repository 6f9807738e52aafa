//! Builds the application from settings: binds both listeners, wires the
//! parts, and runs them until the caller's shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::auth::{ConfirmationTokens, PasswordHasher};
use crate::config::{EmailBackend, Settings};
use crate::grpc::{AccountGrpc, AccountServiceServer};
use crate::http::{self, router, HttpState};
use crate::limits::RateLimits;
use crate::mail::{
    ConsoleDispatcher, DeliveryWorker, FileDispatcher, MailComposer, MailDispatcher, RetryPolicy,
    SmtpDispatcher,
};
use crate::metrics::Metrics;
use crate::net;
use crate::proto;
use crate::readiness::Readiness;
use crate::service::Accounts;
use crate::storage::{self, Storage, StorageError};
use crate::telemetry::error_chain;

/// SMTP connections kept open for the worker's concurrent sends.
const SMTP_POOL_SIZE: u32 = crate::mail::SEND_SLOTS as u32;

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    accounts: Arc<Accounts>,
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    hasher: PasswordHasher,
    readiness: Arc<Readiness>,
    worker: DeliveryWorker,
    mail_queued: Arc<Notify>,
    settings: Settings,
}

impl Application {
    /// Binds GRPC_ADDR and HTTP_ADDR, connects to the database (applying
    /// migrations) and wires the mail dispatcher that EMAIL_BACKEND names.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let grpc_listener = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on GRPC_ADDR {}", settings.grpc_addr))?;
        let http_listener = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot listen on HTTP_ADDR {}", settings.http_addr))?;
        let storage = storage::open(settings.database_url(), settings.pool())
            .context("cannot use DATABASE_URL")?;
        let dispatcher = dispatcher(&settings)?;
        Self::build_with(settings, grpc_listener, http_listener, storage, dispatcher)
    }

    /// Wires the application around listeners, storage and a mail dispatcher
    /// that the caller owns (tests bind port 0 and read the port back).
    pub fn build_with(
        settings: Settings,
        grpc_listener: TcpListener,
        http_listener: TcpListener,
        storage: Arc<dyn Storage>,
        dispatcher: Arc<dyn MailDispatcher>,
    ) -> anyhow::Result<Self> {
        let composer = Arc::new(
            MailComposer::new(
                settings.email_from.clone(),
                settings.site_name.clone(),
                settings.public_base_url.as_str(),
                settings.confirmation_link_timeout,
            )
            .context("mail templates")?,
        );
        let tokens = ConfirmationTokens::new(
            settings.secret_key.expose_secret().as_bytes(),
            settings
                .secret_key_previous
                .as_ref()
                .map(|k| k.expose_secret().as_bytes()),
            settings.confirmation_link_timeout,
        );
        let hasher = PasswordHasher::new(settings.hash_concurrency, settings.hash_queue);
        let mail_queued = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::new(Arc::clone(&storage)));
        let accounts = Arc::new(
            Accounts::new(
                Arc::clone(&storage),
                hasher.clone(),
                tokens,
                Arc::clone(&composer),
                Arc::clone(&mail_queued),
            )
            .with_resend_cooldown(settings.email_resend_cooldown)
            .with_enumeration_protection(settings.enumeration_protection)
            .with_metrics(Arc::clone(&metrics))
            .with_readiness(Arc::clone(&readiness)),
        );
        let worker = DeliveryWorker::new(
            Arc::clone(&storage),
            dispatcher,
            composer,
            RetryPolicy {
                max_retries: settings.email_max_retries,
                base_delay: settings.email_retry_delay,
            },
            settings.email_claim_lease,
        )
        .with_sent_retention(settings.email_sent_retention)
        .with_resend_cooldown(settings.email_resend_cooldown)
        .with_metrics(Arc::clone(&metrics));
        Ok(Application {
            grpc_listener,
            http_listener,
            accounts,
            storage,
            metrics,
            hasher,
            readiness,
            worker,
            mail_queued,
            settings,
        })
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc_listener.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http_listener.local_addr()
    }

    /// Serves gRPC and HTTP until `shutdown` completes, then drains.
    ///
    /// Start-up does not wait for the database: both servers answer at once
    /// (health NOT_SERVING, `/readyz` 503, RPCs UNAVAILABLE) while the
    /// database is reached and migrated with backoff; then health turns
    /// SERVING and the mail worker starts. On shutdown health turns
    /// NOT_SERVING, new connections and calls are refused, calls in flight
    /// and the worker's current batch finish, all within SHUTDOWN_GRACE.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (health, health_service) = tonic_health::server::health_reporter();
        set_health(&health, tonic_health::ServingStatus::NotServing).await;

        let stop = CancellationToken::new();
        {
            let (stop, health) = (stop.clone(), health.clone());
            tokio::spawn(async move {
                shutdown.await;
                set_health(&health, tonic_health::ServingStatus::NotServing).await;
                stop.cancel();
            });
        }

        let reflection_sets = [
            proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ];
        let mut v1 = tonic_reflection::server::Builder::configure();
        let mut v1alpha = tonic_reflection::server::Builder::configure();
        for set in reflection_sets {
            v1 = v1.register_encoded_file_descriptor_set(set);
            v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
        }

        let admission = Arc::new(tokio::sync::Semaphore::new(
            self.settings.max_concurrent_requests,
        ));
        let limits = Arc::new(match &self.settings.rate_limits {
            Some(l) => RateLimits::new(
                l.per_client_per_minute,
                l.per_email_per_hour,
                l.trusted_proxies.clone(),
                l.max_keys,
            ),
            None => RateLimits::disabled(),
        });
        {
            let (limits, stop) = (Arc::clone(&limits), stop.clone());
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tokio::select! {
                        () = stop.cancelled() => break,
                        _ = every.tick() => limits.forget_idle(),
                    }
                }
            });
        }
        let grpc = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            // Detects peers that vanished without closing their connection.
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            .timeout(crate::grpc::REQUEST_TIMEOUT)
            .max_connection_age(self.settings.grpc_max_connection_age)
            // Header blocks are small in this API; the same bound as the sidecar's.
            .http2_max_header_list_size(u32::try_from(http::MAX_HEAD_BYTES).unwrap_or(u32::MAX))
            .layer(tower::util::MapResponseLayer::new(
                crate::grpc::oversized_as_resource_exhausted::<tonic::body::Body>,
            ))
            .add_service(health_service)
            .add_service(v1.build_v1()?)
            .add_service(v1alpha.build_v1alpha()?)
            .add_service(
                AccountGrpc::new(
                    Arc::clone(&self.accounts),
                    Arc::clone(&self.metrics),
                    Arc::clone(&admission),
                    Arc::clone(&limits),
                )
                .into_server(),
            )
            .serve_with_incoming_shutdown(
                net::grpc_connections(
                    self.grpc_listener,
                    self.settings.request_head_timeout,
                    stop.clone(),
                ),
                stop.clone().cancelled_owned(),
            );

        let http = http::serve(
            self.http_listener,
            router(HttpState {
                accounts: Arc::clone(&self.accounts),
                metrics: Arc::clone(&self.metrics),
                hasher: self.hasher.clone(),
                readiness: Arc::clone(&self.readiness),
                frontend_homepage: self.settings.frontend_homepage.to_string(),
                confirmation_mail_request_page: self
                    .settings
                    .confirmation_mail_request_page
                    .to_string(),
                admission,
            }),
            self.settings.request_head_timeout,
            self.settings.shutdown_grace,
            stop.clone().cancelled_owned(),
        );

        let background = tokio::spawn(bring_up(
            self.worker,
            self.mail_queued,
            health,
            BringUp {
                storage: Arc::clone(&self.storage),
                readiness: Arc::clone(&self.readiness),
                metrics: Arc::clone(&self.metrics),
                migrate: self.settings.migrate_on_start,
                metrics_refresh: self.settings.metrics_refresh,
            },
            stop.clone(),
        ));

        let grace = self.settings.shutdown_grace;
        let drained = async {
            let served =
                tokio::try_join!(async { grpc.await.context("gRPC server failed") }, async {
                    http.await;
                    Ok(())
                });
            // Whatever ended first, stop the rest too.
            stop.cancel();
            background.await.context("background tasks failed")??;
            served.map(|_| ())
        };
        let deadline = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            result = drained => result,
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs_f64(), "shutdown grace period over; exiting with work in flight");
                Ok(())
            }
        };
        self.storage.close().await;
        result
    }
}

async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    health.set_service_status("", status).await;
    health
        .set_service_status(
            <AccountServiceServer<AccountGrpc> as tonic::server::NamedService>::NAME,
            status,
        )
        .await;
}

/// How the database is brought up, and what runs once it is.
struct BringUp {
    storage: Arc<dyn Storage>,
    /// Marked once the database was reached (and migrated).
    readiness: Arc<Readiness>,
    /// Where the outbox gauges go.
    metrics: Arc<Metrics>,
    /// Apply pending migrations (MIGRATE_ON_START), or only check the schema.
    migrate: bool,
    /// How often the outbox gauges of /metrics are refreshed.
    metrics_refresh: Duration,
}

/// Reaches the database with backoff and migrates it (or checks its schema),
/// then serves: marks the service ready, turns health SERVING and runs the
/// mail worker and the metrics refresh until `stop`.
///
/// A database that cannot be reached is waited for; one whose schema does
/// not match this binary is a fatal error that stops the whole process,
/// since no amount of waiting fixes it.
async fn bring_up(
    worker: DeliveryWorker,
    mail_queued: Arc<Notify>,
    health: tonic_health::server::HealthReporter,
    plan: BringUp,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let storage = Arc::clone(&plan.storage);
    let mut backoff =
        crate::backoff::Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let attempt = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            attempt = async {
                if plan.migrate { storage.migrate().await } else { storage.check_schema().await }
            } => attempt,
        };
        match attempt {
            Ok(()) => break,
            Err(StorageError::Schema(problem)) => {
                stop.cancel();
                anyhow::bail!("database schema: {problem}");
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    retry_in_secs = delay.as_secs_f64(),
                    error = %error_chain(&e),
                    "database not reachable; retrying"
                );
                tokio::select! {
                    () = stop.cancelled() => return Ok(()),
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    plan.readiness.mark_ready();
    if !stop.is_cancelled() {
        set_health(&health, tonic_health::ServingStatus::Serving).await;
    }
    tracing::info!("database ready; serving");
    let listener = {
        let (storage, wake, stop) = (Arc::clone(&storage), Arc::clone(&mail_queued), stop.clone());
        tokio::spawn(async move { storage.listen_for_mail(wake, stop).await })
    };
    let gauges = tokio::spawn(crate::metrics::refresh_outbox_gauges(
        Arc::clone(&storage),
        plan.metrics,
        plan.metrics_refresh,
        stop.clone(),
    ));
    worker.run(mail_queued, stop).await;
    let _ = listener.await;
    let _ = gauges.await;
    Ok(())
}

/// The dispatcher that EMAIL_BACKEND names.
pub fn dispatcher(settings: &Settings) -> anyhow::Result<Arc<dyn MailDispatcher>> {
    Ok(match &settings.email_backend {
        EmailBackend::Console => Arc::new(ConsoleDispatcher),
        EmailBackend::Smtp(url) => Arc::new(
            SmtpDispatcher::from_url(url.expose_secret(), settings.smtp_timeout, SMTP_POOL_SIZE)
                // lettre's error names no credentials, but the URL is not repeated either.
                .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?,
        ),
        EmailBackend::File => Arc::new(
            FileDispatcher::new(settings.email_file_path.clone()).with_context(|| {
                format!(
                    "cannot create EMAIL_FILE_PATH {}",
                    settings.email_file_path.display()
                )
            })?,
        ),
    })
}
