//! Log output: a tracing subscriber built from a filter.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs a subscriber that writes to stderr with `filter` (EnvFilter syntax).
/// Falls back to `info` when the filter does not parse.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
