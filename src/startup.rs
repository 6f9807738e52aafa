//! Builds the application from settings: binds both listeners, wires the
//! parts, and runs them until the caller's shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::auth::{ConfirmationTokens, PasswordHasher};
use crate::config::{EmailBackend, Settings};
use crate::grpc::{AccountGrpc, AccountServiceServer};
use crate::http::{router, HttpState};
use crate::mail::{
    ConsoleDispatcher, DeliveryWorker, FileDispatcher, MailComposer, MailDispatcher, RetryPolicy,
    SmtpDispatcher,
};
use crate::proto;
use crate::service::Accounts;
use crate::storage::{self, Storage};

/// SMTP connections kept open; matches the worker's batch concurrency.
const SMTP_POOL_SIZE: u32 = 16;

pub struct Application {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    accounts: Arc<Accounts>,
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
        let storage = storage::connect(settings.database_url())
            .await
            .context("cannot open the database named by DATABASE_URL")?;
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
            None,
            settings.confirmation_link_timeout,
        );
        let hasher = PasswordHasher::new(settings.hash_concurrency, settings.hash_queue);
        let mail_queued = Arc::new(Notify::new());
        let accounts = Arc::new(
            Accounts::new(
                Arc::clone(&storage),
                hasher,
                tokens,
                Arc::clone(&composer),
                Arc::clone(&mail_queued),
            )
            .with_resend_cooldown(settings.email_resend_cooldown),
        );
        let worker = DeliveryWorker::new(
            storage,
            dispatcher,
            composer,
            RetryPolicy {
                max_retries: settings.email_max_retries,
                base_delay: settings.email_retry_delay,
            },
            settings.email_claim_lease,
        )
        .with_sent_retention(settings.email_sent_retention);
        Ok(Application {
            grpc_listener,
            http_listener,
            accounts,
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

    /// Serves gRPC and HTTP and runs the mail worker until `shutdown`
    /// completes, then lets calls in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        health
            .set_serving::<AccountServiceServer<AccountGrpc>>()
            .await;

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
        let grpc = tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .add_service(health_service)
            .add_service(v1.build_v1()?)
            .add_service(v1alpha.build_v1alpha()?)
            .add_service(
                AccountGrpc::new(Arc::clone(&self.accounts), Arc::clone(&admission)).into_server(),
            )
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(self.grpc_listener),
                stop.clone().cancelled_owned(),
            );

        let http = axum::serve(
            self.http_listener,
            router(HttpState {
                accounts: Arc::clone(&self.accounts),
                frontend_homepage: self.settings.frontend_homepage.to_string(),
                confirmation_mail_request_page: self
                    .settings
                    .confirmation_mail_request_page
                    .to_string(),
                admission,
            }),
        )
        .with_graceful_shutdown(stop.clone().cancelled_owned());

        let listener = {
            let storage = Arc::clone(self.accounts.storage());
            let (wake, stop) = (Arc::clone(&self.mail_queued), stop.clone());
            tokio::spawn(async move { storage.listen_for_mail(wake, stop).await })
        };
        let worker = tokio::spawn(self.worker.run(self.mail_queued, stop.clone()));

        let result = tokio::try_join!(async { grpc.await.context("gRPC server failed") }, async {
            http.await.context("HTTP server failed")
        },);
        // Whatever ended first, stop the rest too.
        stop.cancel();
        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        worker.await.context("mail worker failed")?;
        listener.await.context("mail listener failed")?;
        self.accounts.storage().close().await;
        result.map(|_| ())
    }
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
