//! Distributed traces: the W3C trace context a request carries, continued
//! in the request's span, and spans exported over OTLP when
//! OTEL_EXPORTER_OTLP_ENDPOINT is set.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TraceId, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{span_processor_with_async_runtime, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The span context a caller's `traceparent` (and `tracestate`) names;
/// invalid when there is none or it does not parse.
pub fn remote_context(headers: &http::HeaderMap) -> SpanContext {
    TraceContextPropagator::new()
        .extract(&Headers(headers))
        .span()
        .span_context()
        .clone()
}

/// Makes `span` continue the caller's trace, when `headers` carry one, and
/// answers the trace id its log lines show: the caller's, the exported
/// span's, or else a new one, so that a request's lines can always be found
/// together.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) -> String {
    // Most calls carry no trace and export no span: each step below is
    // skipped when it has nothing to read, since every call pays for it.
    let remote = if headers.contains_key("traceparent") {
        remote_context(headers)
    } else {
        SpanContext::empty_context()
    };
    if remote.is_valid() {
        span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote.clone()));
    }
    let exported = if span.is_disabled() {
        TraceId::INVALID
    } else {
        span.context().span().span_context().trace_id()
    };
    let id = if exported != TraceId::INVALID {
        exported
    } else if remote.is_valid() {
        remote.trace_id()
    } else {
        TraceId::from_bytes(rand::random())
    };
    id.to_string()
}

/// The span context of `span` as exported (invalid without an exporter):
/// what work done later on behalf of the request links back to.
pub fn span_context(span: &tracing::Span) -> SpanContext {
    span.context().span().span_context().clone()
}

/// Links `span` to the context a `traceparent` value names.
pub fn link_to(span: &tracing::Span, traceparent: &str) {
    let Ok(value) = http::HeaderValue::from_str(traceparent) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", value);
    span.add_link(remote_context(&headers));
}

/// The `traceparent` value of `context`; `None` when it is invalid.
pub fn traceparent(context: &SpanContext) -> Option<String> {
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// Exports spans while it lives; [`Exporter::shutdown`] sends what is left.
pub struct Exporter {
    provider: SdkTracerProvider,
}

impl Exporter {
    /// Sends the spans still batched, then stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("exporting the last spans failed: {e}");
        }
    }
}

/// The layer that exports spans over OTLP/gRPC, when
/// OTEL_EXPORTER_OTLP_ENDPOINT is set (read with the other standard
/// OTEL_* variables by the exporter itself); `None` without it, so that
/// nothing is recorded for export. Call from within the Tokio runtime: the
/// batches are sent by a task on it.
pub fn exporter<S>() -> Option<(Box<dyn Layer<S> + Send + Sync>, Exporter)>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    let traces = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").unwrap_or_default();
    if endpoint.trim().is_empty() && traces.trim().is_empty() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot export spans: {e}");
            return None;
        }
    };
    let processor = span_processor_with_async_runtime::BatchSpanProcessor::builder(
        exporter,
        opentelemetry_sdk::runtime::Tokio,
    )
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name("account-service")
                .build(),
        )
        .build();
    let tracer = provider.tracer("account-service");
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Some((layer, Exporter { provider }))
}
