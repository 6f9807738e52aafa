//! Log output: a tracing subscriber, human-readable or JSON, and the
//! distributed traces its spans continue and export.

mod traces;

pub use traces::{continue_trace, link_to, remote_context, span_context, traceparent, Exporter};

use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Coloured, one line per event, for a person at a terminal.
    Pretty,
    /// One JSON object per event with its fields and its span's fields
    /// (the request id among them), for log collectors.
    Json,
}

/// The production formatting layer, writing to `writer`: the one `init`
/// installs, and the one tests capture (so that what they search is what
/// the service writes).
pub fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Pretty => fmt::layer().with_writer(writer).boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(true)
            // Every enclosing span, so that the request's `trace_id` is on
            // the lines of the work nested inside it.
            .with_span_list(true)
            .with_writer(writer)
            .boxed(),
    }
}

/// The log filter from `filter` (EnvFilter syntax), `info` when it does not parse.
pub fn filter(filter: &str) -> EnvFilter {
    EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the production subscriber, writing to stderr, with spans
/// exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set: keep the
/// exporter, and shut it down at exit so that the last spans are sent.
pub fn init(filter_directives: &str, format: LogFormat) -> Option<Exporter> {
    let (otel, exporter) = match traces::exporter() {
        Some((layer, exporter)) => (Some(layer), Some(exporter)),
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(otel)
        .with(filter(filter_directives))
        .with(layer(format, std::io::stderr))
        .try_init();
    exporter
}

/// An error and all its sources, on one line.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
