//! The command line: subcommands, with every setting as a flag.

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "account-service",
    version,
    about = "gRPC account service: registration, confirmation e-mail, account lookup",
    long_about = "gRPC account service: registration, confirmation e-mail, account lookup.\n\n\
Every setting is read from a flag, else from the environment (a .env file in the \
working directory is loaded first), else from its default."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, the HTTP sidecar and the mail worker until SIGINT/SIGTERM (the default).
    Serve,
    /// Apply the database migrations, then exit.
    Migrate,
    /// Validate the configuration and print it, secrets redacted.
    CheckConfig,
    /// Inspect the mail outbox and replay dead letters.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Import shoppers exported from the Django app (JSON Lines), with their
    /// password hashes; no mail is sent. Rows already imported are skipped.
    ImportDjango {
        /// The export: one JSON object per line, with the Django model's field names.
        #[arg(long = "from", value_name = "FILE")]
        from: std::path::PathBuf,
    },
    /// Create API keys for the callers in API_KEYS_FILE.
    #[command(subcommand)]
    ApiKey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Print a new random key, once, and the API_KEYS_FILE entry that admits it
    /// (which holds only the key's SHA-256 digest).
    New {
        /// The caller's name: letters, digits, '-' and '_'. It names the
        /// caller in logs and metrics; a client certificate with this common
        /// name stands for the caller only if its entry adds `certificate = true`.
        name: String,
        /// Comma-separated scopes, e.g. accounts:register,accounts:read.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// The caller's quota across all RPCs.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        requests_per_minute: Option<u32>,
        /// Write the key to this new file (mode 0600) instead of printing
        /// it; standard output then holds only the entry, ready to append.
        #[arg(long)]
        key_file: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Counts of messages by state, and the age of the oldest pending one.
    Status,
    /// The dead letters, newest first, one line each.
    Failed {
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Send dead letters back to the queue, with their attempts reset.
    Retry {
        /// The dead letter's id, as `outbox failed` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every dead letter.
        #[arg(long)]
        all: bool,
    },
}
