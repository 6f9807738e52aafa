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
