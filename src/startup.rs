//! Builds the application from settings: binds both listeners, wires the
//! parts, and runs them until the caller's shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::access::{Access, Callers};
use crate::auth::{
    AccessTokens, ChallengeTokens, ConfirmationCodes, ConfirmationTokens, EmailChangeTokens,
    FailureFloor, Keyring, PageTokens, PasswordHasher, RecoveryCodes, RefreshTokens, ResetTokens,
    SecretBox, SigningKeys,
};
use crate::config::Settings;
use crate::events::EventFeed;
use crate::grpc::{self, AccountGrpc, ConnectionLimits, GrpcSecurity, Health};
use crate::housekeeping::Housekeeping;
use crate::http::{self, router, HttpState};
use crate::limits::RateLimits;
use crate::mail::{self, Catalogues, DeliveryWorker, MailComposer, MailDispatcher, RetryPolicy};
use crate::media::{ImageLimits, ImageProcessor, MediaStore};
use crate::media_cleanup::MediaCleanup;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::service::{Accounts, PasswordResets, ProfileImages, SecondFactors, Sessions};
use crate::storage::{self, CommitHooks, Storage, StorageError};
use crate::telemetry::error_chain;
use crate::tls::Tls;

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    /// Serves /metrics apart from the HTTP sidecar, when METRICS_ADDR is set.
    metrics_listener: Option<TcpListener>,
    access: Arc<Access>,
    tls: Option<Arc<Tls>>,
    accounts: Arc<Accounts>,
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    hasher: PasswordHasher,
    readiness: Arc<Readiness>,
    worker: DeliveryWorker,
    housekeeping: Housekeeping,
    mail_queued: Arc<Notify>,
    /// Issues and verifies access tokens; the sidecar publishes their keys.
    access_tokens: Arc<AccessTokens>,
    /// Where profile images are kept; the sidecar serves them from it.
    media: MediaStore,
    /// Deletes the objects of replaced and erased images.
    media_cleanup: MediaCleanup,
    settings: Settings,
}

impl Application {
    /// Binds GRPC_ADDR and HTTP_ADDR, opens the database named by
    /// DATABASE_URL (reached and migrated once running) and wires the mail
    /// dispatcher that EMAIL_BACKEND names.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let bind = |name: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {name} {addr}"))
        };
        let grpc_listener = bind("GRPC_ADDR", settings.server.grpc_addr).await?;
        let http_listener = bind("HTTP_ADDR", settings.server.http_addr).await?;
        let metrics_listener = match settings.server.metrics_addr {
            Some(addr) => Some(bind("METRICS_ADDR", addr).await?),
            None => None,
        };
        let storage = storage::open(&settings.database.database_url, settings.database.pool())
            .context("cannot use DATABASE_URL")?;
        let dispatcher = mail::dispatcher(&settings.mail)?;
        let app = Self::build_with(settings, grpc_listener, http_listener, storage, dispatcher)?;
        Ok(match metrics_listener {
            Some(listener) => app.with_metrics_listener(listener),
            None => app,
        })
    }

    /// Serves /metrics on `listener` only, and no longer on the HTTP sidecar.
    pub fn with_metrics_listener(mut self, listener: TcpListener) -> Self {
        self.metrics_listener = Some(listener);
        self
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
        let (security, delivery) = (&settings.security, &settings.delivery);
        let callers = match settings.access.api_keys_file() {
            Some(path) => Some(Callers::load(path)?),
            None => None,
        };
        let tls = match settings.access.tls() {
            Some(files) => Some(Arc::new(Tls::load(files)?)),
            None => None,
        };
        let access = Arc::new(Access::new(
            callers,
            tls.as_ref()
                .is_some_and(|t| t.requires_client_certificates()),
        ));
        if access.is_open() {
            tracing::warn!(
                "API_KEYS_FILE is not set and client certificates are not required: every caller \
                 may make every call. Configure callers before the gRPC port is reachable by anyone else."
            );
        }
        let media = MediaStore::open_with(&settings.media.location, &settings.media.s3)
            .context("cannot use MEDIA_STORE")?;
        let catalogues = Catalogues::load(
            &settings.mail.default_locale,
            settings.mail.templates_dir.as_deref(),
        )
        .context("cannot load the mail text")?;
        let composer = Arc::new(
            MailComposer::new(
                settings.mail.email_from.clone(),
                settings.mail.site_name.clone(),
                settings.server.public_base_url.as_str(),
                security.confirmation_link_timeout,
                catalogues,
            )
            .with_reset_lifetime(security.password_reset_timeout),
        );
        let keyring = Keyring::new(
            security.signing_key().as_bytes(),
            security.previous_key().map(str::as_bytes),
        );
        let resets = PasswordResets {
            tokens: ResetTokens::new(&keyring, security.password_reset_timeout),
            cooldown: delivery.password_reset_cooldown,
        };
        let tokens = ConfirmationTokens::new(&keyring, security.confirmation_link_timeout);
        let email_changes = EmailChangeTokens::new(&keyring, security.confirmation_link_timeout);
        let pages = PageTokens::new(&keyring);
        let signing_keys = match settings.sessions.signing_key_file() {
            Some(path) => SigningKeys::from_pem_file(path)?,
            None => SigningKeys::derive(&keyring),
        };
        let access_tokens = Arc::new(AccessTokens::new(
            signing_keys,
            settings.access_token_issuer(),
            settings.sessions.access_token_audience.clone(),
            settings.sessions.access_token_ttl,
        ));
        let events = Arc::new(
            EventFeed::new(Arc::clone(&storage))
                // Commits on other instances wake watchers through LISTEN on
                // PostgreSQL; SQLite's other processes (the CLI) only by polling.
                .with_poll_interval(match settings.database.database_url.kind {
                    crate::config::DatabaseKind::Postgres => Duration::from_secs(10),
                    crate::config::DatabaseKind::Sqlite => Duration::from_secs(1),
                })
                .with_retention(settings.events.account_event_retention)
                .with_keepalive(settings.events.account_event_keepalive)
                .with_streams_per_caller(settings.events.event_streams_per_caller),
        );
        let limits = &settings.limits;
        let hasher = PasswordHasher::new(limits.hash_concurrency(), limits.hash_queue);
        let mail_queued = Arc::new(Notify::new());
        let metrics = Arc::new(Metrics::new());
        let readiness = Arc::new(Readiness::new(Arc::clone(&storage)));
        // Wake-ups follow from the commit itself: whatever queued mail wakes
        // the delivery worker, whatever wrote events wakes the feed.
        storage.set_commit_hooks(
            CommitHooks::new()
                .on_mail_queued({
                    let wake = Arc::clone(&mail_queued);
                    move || wake.notify_one()
                })
                .on_events_written({
                    // Weak: the feed holds the storage; a strong one would be a cycle.
                    let events = Arc::downgrade(&events);
                    move || {
                        if let Some(events) = events.upgrade() {
                            events.committed();
                        }
                    }
                }),
        );
        let accounts = Accounts::new(
            Arc::clone(&storage),
            hasher.clone(),
            tokens,
            Arc::clone(&composer),
            Arc::clone(&metrics),
        )
        .with_resend_cooldown(delivery.email_resend_cooldown)
        .with_enumeration_protection(security.enumeration_protection)
        .with_sign_in_policy(security.sign_in())
        .with_failure_floor(FailureFloor::calibrate(hasher.hash_cost()))
        .with_password_resets(resets)
        .with_lifecycle(email_changes, pages, Arc::clone(&events))
        .with_confirmation_codes(ConfirmationCodes::new(
            &keyring,
            security.confirmation_link_timeout,
        ))
        .with_sessions(Sessions {
            access: Arc::clone(&access_tokens),
            refresh: RefreshTokens::new(&keyring),
            policy: settings.sessions.policy(),
        })
        .with_second_factors(SecondFactors {
            secrets: SecretBox::new(&keyring),
            recovery: RecoveryCodes::new(&keyring),
            challenges: ChallengeTokens::new(&keyring),
            site_name: settings.mail.site_name.clone(),
        })
        .with_profile_images(profile_images(&settings, media.clone()));
        let worker = DeliveryWorker::new(
            Arc::clone(&storage),
            dispatcher,
            composer,
            RetryPolicy {
                max_retries: delivery.email_max_retries,
                base_delay: delivery.email_retry_delay,
            },
            delivery.email_claim_lease,
            Arc::clone(&metrics),
        )
        .with_poll_interval(delivery.email_poll_interval);
        let media_cleanup = MediaCleanup::new(
            Arc::clone(&storage),
            media.clone(),
            Arc::clone(&metrics),
            accounts
                .profile_images()
                .map_or_else(|| Arc::new(Notify::new()), |images| images.deletions()),
        );
        let housekeeping = Housekeeping::new(Arc::clone(&storage))
            .with_sent_retention(delivery.email_sent_retention)
            .with_event_retention(events.retention() + crate::events::PRUNE_MARGIN)
            .with_sessions(settings.sessions.policy())
            // Password reset cooldowns are kept beside the confirmation ones:
            // pruned only once the longer of the two has run out.
            .with_resend_cooldown(
                delivery
                    .email_resend_cooldown
                    .max(delivery.password_reset_cooldown),
            );
        Ok(Application {
            grpc_listener,
            http_listener,
            metrics_listener: None,
            access,
            tls,
            accounts: Arc::new(accounts),
            storage,
            metrics,
            hasher,
            readiness,
            worker,
            housekeeping,
            mail_queued,
            access_tokens,
            media,
            media_cleanup,
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
        let server = &self.settings.server;
        let stop = CancellationToken::new();
        // One bound on the requests handled at once, across both servers.
        let admission = Arc::new(Semaphore::new(self.settings.limits.max_concurrent_requests));
        let limits = Arc::new(RateLimits::from_settings(
            &self.settings.limits,
            self.settings
                .limits
                .rate_limit_store(self.settings.database.database_url.kind),
            &self.storage,
            &self.readiness,
            self.access.callers(),
        ));
        limits.spawn_sweeper(stop.clone());
        let events = Arc::clone(self.accounts.events());
        tokio::spawn(Arc::clone(&events).relay(stop.clone()));
        {
            // Event streams never end on their own: they end at shutdown,
            // so that draining the connections does not wait for them.
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                events.close();
            });
        }
        if let Some(tls) = &self.tls {
            spawn_tls_reloader(Arc::clone(tls), stop.clone());
        }

        let grpc = grpc::serve(
            self.grpc_listener,
            AccountGrpc::new(
                Arc::clone(&self.accounts),
                Arc::clone(&self.metrics),
                Arc::clone(&admission),
                limits,
                Arc::clone(&self.access),
                Arc::clone(&self.readiness),
            ),
            ConnectionLimits {
                head_timeout: server.request_head_timeout,
                max_age: server.grpc_max_connection_age,
            },
            GrpcSecurity {
                tls: self.tls.clone(),
                reflection_guard: self
                    .settings
                    .security
                    .production()
                    .then(|| Arc::clone(&self.access)),
            },
            stop.clone(),
        )
        .await?;
        let health = grpc.health.clone();
        {
            let (stop, health) = (stop.clone(), health.clone());
            tokio::spawn(async move {
                shutdown.await;
                health.set(ServingStatus::NotServing).await;
                stop.cancel();
            });
        }
        let state = HttpState {
            accounts: Arc::clone(&self.accounts),
            metrics: Arc::clone(&self.metrics),
            hasher: self.hasher.clone(),
            readiness: Arc::clone(&self.readiness),
            frontend_homepage: server.frontend_homepage.as_str().to_owned(),
            confirmation_mail_request_page: server
                .confirmation_mail_request_page
                .as_str()
                .to_owned(),
            password_reset_page: server.password_reset_page.as_str().to_owned(),
            password_reset_request_page: server.password_reset_request_page.as_str().to_owned(),
            admission,
            jwks: self.access_tokens.jwks_json().to_owned().into(),
            media: self.media.clone(),
        };
        let metrics_server = self.metrics_listener.map(|listener| {
            tokio::spawn(http::serve(
                listener,
                http::metrics_router(state.clone()),
                server.request_head_timeout,
                server.shutdown_grace,
                stop.clone().cancelled_owned(),
            ))
        });
        let http = http::serve(
            self.http_listener,
            router(state, metrics_server.is_none()),
            server.request_head_timeout,
            server.shutdown_grace,
            stop.clone().cancelled_owned(),
        );
        let background = tokio::spawn(bring_up(
            self.worker,
            self.mail_queued,
            health,
            BringUp {
                storage: Arc::clone(&self.storage),
                housekeeping: self.housekeeping,
                media_cleanup: self.media_cleanup,
                readiness: Arc::clone(&self.readiness),
                metrics: Arc::clone(&self.metrics),
                migrate: self.settings.database.migrate_on_start,
                metrics_refresh: self.settings.telemetry.metrics_refresh,
                // Idle, the gauges change only when another instance
                // delivers mail: every other poll is fresh enough.
                metrics_idle_refresh: self.settings.delivery.email_poll_interval * 2,
            },
            stop.clone(),
        ));

        let drained = async {
            let served = tokio::try_join!(grpc.run(), async {
                http.await;
                Ok(())
            });
            // Whatever ended first, stop the rest too.
            stop.cancel();
            if let Some(metrics_server) = metrics_server {
                let _ = metrics_server.await;
            }
            background.await.context("background tasks failed")??;
            served.map(|_| ())
        };
        let result = within_grace(drained, &stop, server.shutdown_grace).await;
        self.storage.close().await;
        result
    }
}

/// Re-reads the TLS certificate files on SIGHUP until `stop`: new
/// connections get the new certificates, open ones keep theirs.
fn spawn_tls_reloader(tls: Arc<Tls>, stop: CancellationToken) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: TLS certificates will not be reloaded");
                return;
            }
        };
        while stop
            .run_until_cancelled(hangups.recv())
            .await
            .flatten()
            .is_some()
        {
            match tls.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
                Err(e) => tracing::error!(
                    error = %format!("{e:#}"),
                    "SIGHUP: TLS certificates not reloaded; the previous ones stay in use"
                ),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (tls, stop);
}

/// Runs `drained` to its end, or until `grace` after `stop` was cancelled.
async fn within_grace(
    drained: impl Future<Output = anyhow::Result<()>>,
    stop: &CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = drained => result,
        () = deadline => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "shutdown grace period over; exiting with work in flight");
            Ok(())
        }
    }
}

/// How the database is brought up, and what runs once it is.
struct BringUp {
    storage: Arc<dyn Storage>,
    /// Started with the mail worker: the tables it prunes exist by then.
    housekeeping: Housekeeping,
    /// Started with it, for the same reason.
    media_cleanup: MediaCleanup,
    /// Marked once the database was reached (and migrated).
    readiness: Arc<Readiness>,
    /// Where the outbox gauges go.
    metrics: Arc<Metrics>,
    /// Apply pending migrations (MIGRATE_ON_START), or only check the schema.
    migrate: bool,
    /// How often the outbox gauges of /metrics are refreshed while the
    /// outbox changes, and while it does not.
    metrics_refresh: Duration,
    metrics_idle_refresh: Duration,
}

/// Reaches the database with backoff and migrates it (or checks its schema),
/// then serves: marks the service ready, turns health SERVING and runs the
/// mail worker, housekeeping and the metrics refresh until `stop`.
///
/// A database that cannot be reached is waited for; one whose schema does
/// not match this binary is a fatal error that stops the whole process,
/// since no amount of waiting fixes it.
async fn bring_up(
    worker: DeliveryWorker,
    mail_queued: Arc<Notify>,
    health: Health,
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
        health.set(ServingStatus::Serving).await;
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
        plan.metrics_idle_refresh,
        stop.clone(),
    ));
    let housekeeping = crate::housekeeping::spawn(plan.housekeeping, stop.clone());
    let media_cleanup = plan.media_cleanup.spawn(stop.clone());
    worker.run(mail_queued, stop).await;
    let _ = housekeeping.await;
    let _ = media_cleanup.await;
    let _ = listener.await;
    let _ = gauges.await;
    Ok(())
}

/// Profile images as the settings have them: uploads processed on
/// IMAGE_CONCURRENCY threads, with a queue that lets every admitted caller
/// wait its turn rather than be refused at the first burst.
fn profile_images(settings: &Settings, store: MediaStore) -> ProfileImages {
    let media = &settings.media;
    let limits = ImageLimits {
        max_bytes: media.profile_image_max_bytes,
        ..ImageLimits::default()
    };
    let queue = media.image_concurrency.saturating_mul(8).max(16);
    ProfileImages::new(
        ImageProcessor::new(media.image_concurrency, queue, limits),
        store,
        &settings.media_base_url(),
        // Those processed, and as many again waiting or being received.
        media.image_concurrency.saturating_add(queue),
    )
}
