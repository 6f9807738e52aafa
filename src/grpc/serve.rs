//! Serves the gRPC API, health and reflection on a listener the caller owns,
//! until a shutdown future completes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::{InterceptedService, Interceptor};
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use super::{AccountGrpc, AccountServiceServer, REQUEST_TIMEOUT};
use crate::access::Access;
use crate::net::PeerInfo;
use crate::proto;
use crate::tls::Tls;

/// Lets a reflection call through when no guard is set, or when the guard
/// recognises its caller (any valid key or certificate will do).
#[derive(Clone)]
struct ReflectionGuard(Option<Arc<Access>>);

impl Interceptor for ReflectionGuard {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(access) = &self.0 {
            let name = request
                .extensions()
                .get::<PeerInfo>()
                .and_then(|p| p.certificate_name.clone());
            access
                .identify(request.metadata(), name.as_ref())
                .map_err(|e| super::access_status(&e))?;
        }
        Ok(request)
    }
}

/// The health service's view of the process: NOT_SERVING until the database
/// is ready and again from the moment shutdown begins.
#[derive(Clone)]
pub struct Health(HealthReporter);

impl Health {
    /// Sets the overall status and the account service's own.
    pub async fn set(&self, status: ServingStatus) {
        self.0.set_service_status("", status).await;
        self.0
            .set_service_status(
                <AccountServiceServer<AccountGrpc> as tonic::server::NamedService>::NAME,
                status,
            )
            .await;
    }
}

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time to complete the HTTP/2 preface and the first request head.
    pub head_timeout: Duration,
    /// Age after which a connection is closed gracefully (GOAWAY).
    pub max_age: Duration,
}

/// Who may reach the server, and how.
#[derive(Clone, Default)]
pub struct GrpcSecurity {
    /// Serve over TLS (and require client certificates, if it says so).
    pub tls: Option<Arc<Tls>>,
    /// When set, reflection answers only callers this recognises
    /// (production); otherwise it is open, like health.
    pub reflection_guard: Option<Arc<Access>>,
}

/// A gRPC server ready to run: its health handle is returned first, so the
/// caller can report readiness while the server runs.
pub struct GrpcServer {
    pub health: Health,
    run: std::pin::Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>,
}

impl GrpcServer {
    pub async fn run(self) -> anyhow::Result<()> {
        self.run.await
    }
}

/// Builds the server for `service` on `listener`; it stops accepting when
/// `stop` is cancelled and lets calls in flight finish. Health starts
/// NOT_SERVING.
pub async fn serve(
    listener: TcpListener,
    service: AccountGrpc,
    limits: ConnectionLimits,
    security: GrpcSecurity,
    stop: CancellationToken,
) -> anyhow::Result<GrpcServer> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health(reporter);
    health.set(ServingStatus::NotServing).await;

    let sets = [
        proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut v1 = tonic_reflection::server::Builder::configure();
    let mut v1alpha = tonic_reflection::server::Builder::configure();
    for set in sets {
        v1 = v1.register_encoded_file_descriptor_set(set);
        v1alpha = v1alpha.register_encoded_file_descriptor_set(set);
    }

    let guard = ReflectionGuard(security.reflection_guard);
    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        // Detects peers that vanished without closing their connection.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .timeout(REQUEST_TIMEOUT)
        .max_connection_age(limits.max_age)
        // Header blocks are small in this API; the same bound as the sidecar's.
        .http2_max_header_list_size(u32::try_from(crate::http::MAX_HEAD_BYTES).unwrap_or(u32::MAX))
        .layer(tower::util::MapRequestLayer::new(super::call::prepare))
        .add_service(health_service)
        .add_service(InterceptedService::new(v1.build_v1()?, guard.clone()))
        .add_service(InterceptedService::new(v1alpha.build_v1alpha()?, guard))
        .add_service(service.into_server())
        .serve_with_incoming_shutdown(
            crate::net::grpc_connections(listener, limits.head_timeout, security.tls, stop.clone()),
            stop.cancelled_owned(),
        );
    Ok(GrpcServer {
        health,
        run: Box::pin(async move {
            server
                .await
                .map_err(|e| anyhow::Error::new(e).context("gRPC server failed"))
        }),
    })
}
