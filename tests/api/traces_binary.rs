//! Distributed traces over the real binary: a caller's `traceparent` is
//! continued by the service's spans, which reach an OTLP receiver run by
//! the test, and its trace id is on the service's log lines; mail delivery
//! is a span linked to the call that queued the mail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{GetAccountRequest, WatchAccountEventsRequest};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::metadata::MetadataValue;

use crate::access_binary::Service;
use crate::helpers::*;

/// Every span the receiver was sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on a port of its own; its address.
    async fn start(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream_of(listener)),
        );
        addr
    }

    fn named(&self, name: &str) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }
}

/// The listener's connections as the stream tonic serves.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_trace_is_continued_exported_and_logged() {
    let receiver = Receiver::default();
    let otlp = receiver.start().await;
    let service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
        // Batches leave at once rather than every five seconds.
        ("OTEL_BSP_SCHEDULE_DELAY", "50".into()),
    ])
    .await;
    let mut client = AccountServiceClient::new(service.plaintext().await);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");

    let mut events = client
        .watch_account_events(WatchAccountEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut register = tonic::Request::new(registration(&unique_email()));
    register.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(traceparent.as_str()).unwrap(),
    );
    let id = client
        .register(register)
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap()
        .id;
    // A call without a trace of its own starts a new one.
    client
        .get_account(GetAccountRequest {
            lookup: Some(account_service::proto::account::v1::get_account_request::Lookup::Id(id)),
        })
        .await
        .unwrap();

    let rpc = eventually(Duration::from_secs(15), || async {
        let spans = receiver.named("rpc");
        (spans.len() >= 2).then_some(spans)
    })
    .await
    .unwrap_or_else(|| panic!("no rpc spans exported: {}", service.log_text()));
    let continued: Vec<_> = rpc
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .collect();
    assert_eq!(continued.len(), 1, "one call carried the trace");
    assert_eq!(hex(&continued[0].parent_span_id), caller_span);
    assert!(
        rpc.iter().any(|s| hex(&s.trace_id) != trace_id),
        "the other call is a trace of its own"
    );

    // The mail Register queued is delivered in a span linked to that call.
    let delivery = eventually(Duration::from_secs(15), || async {
        receiver.named("deliver_mail").into_iter().next()
    })
    .await
    .expect("no delivery span exported");
    let traced: Vec<String> = receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| hex(&s.trace_id) == trace_id)
        .map(|s| hex(&s.span_id))
        .collect();
    assert!(
        delivery
            .links
            .iter()
            .any(|l| hex(&l.trace_id) == trace_id && traced.contains(&hex(&l.span_id))),
        "the delivery links to a span of the call that queued it: {:?}",
        delivery.links
    );

    // So is the sending of the event it wrote to a watcher.
    let event = tokio::time::timeout(Duration::from_secs(10), events.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!event.account_id.is_empty());
    let sent = eventually(Duration::from_secs(15), || async {
        receiver.named("send_event").into_iter().next()
    })
    .await
    .expect("no event span exported");
    assert!(
        sent.links
            .iter()
            .any(|l| hex(&l.trace_id) == trace_id && traced.contains(&hex(&l.span_id))),
        "the event's sending links to the call that wrote it: {:?}",
        sent.links
    );

    // The service's log lines of that call carry the caller's trace id.
    let log = service.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"method\":\"Register\""))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    assert!(lines.iter().all(|l| l.contains(trace_id)), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_log_lines_still_carry_the_callers_trace_id() {
    let service = Service::start(&[]).await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = service
        .http_client()
        .get(format!("http://{}/healthz", service.http))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut client = AccountServiceClient::new(service.plaintext().await);
    let mut request = tonic::Request::new(GetAccountRequest {
        lookup: Some(
            account_service::proto::account::v1::get_account_request::Lookup::Email(unique_email()),
        ),
    });
    request.metadata_mut().insert(
        "traceparent",
        MetadataValue::try_from(format!("00-{trace_id}-b7ad6b7169203331-01").as_str()).unwrap(),
    );
    let _ = client.get_account(request).await;
    let found = eventually(Duration::from_secs(5), || async {
        let log = service.log_text();
        log.lines()
            .any(|l| l.contains("\"method\":\"GetAccount\"") && l.contains(trace_id))
            .then_some(())
    })
    .await;
    assert!(found.is_some(), "{}", service.log_text());
}
