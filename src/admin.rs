//! Operators' subcommands: outbox status, dead letters and their replay;
//! the Django import; new API keys.

use std::io::Write;

use chrono::Utc;
use uuid::Uuid;

use crate::access::{self, Scope};
use crate::cli::{ApiKeyCommand, OutboxCommand};
use crate::storage::Storage;

/// Runs one outbox subcommand, writing its report to `out`.
pub async fn run_outbox(
    storage: &dyn Storage,
    command: OutboxCommand,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match command {
        OutboxCommand::Status => {
            let now = Utc::now();
            let status = storage.outbox_status(now).await?;
            writeln!(
                out,
                "pending  {} ({} being sent)",
                status.pending, status.in_flight
            )?;
            writeln!(out, "sent     {}", status.sent)?;
            writeln!(out, "failed   {}", status.failed)?;
            match status.oldest_pending {
                Some(t) => {
                    let age = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
                    writeln!(out, "oldest pending: {} ({age:.1}s ago)", t.to_rfc3339())?
                }
                None => writeln!(out, "oldest pending: none")?,
            }
        }
        OutboxCommand::Failed { limit } => {
            let letters = storage.dead_letters(limit).await?;
            if letters.is_empty() {
                writeln!(out, "no dead letters")?;
            }
            for l in letters {
                writeln!(
                    out,
                    "{}\t{}\t{}\tattempts={}\t{}\t{}: {}",
                    l.id,
                    l.recipient,
                    one_line(&l.subject),
                    l.attempts,
                    l.failed_at.to_rfc3339(),
                    l.error_kind,
                    one_line(&l.error),
                )?;
            }
        }
        OutboxCommand::Retry { id, all } => {
            let id = match (id, all) {
                (_, true) => None,
                (Some(raw), false) => Some(
                    Uuid::parse_str(raw.trim())
                        .map_err(|_| anyhow::anyhow!("'{raw}' is not a dead letter id (a UUID)"))?,
                ),
                (None, false) => anyhow::bail!("give a dead letter id, or --all"),
            };
            let requeued = storage.retry_dead_letters(id, Utc::now()).await?;
            if let (Some(id), 0) = (id, requeued) {
                anyhow::bail!(
                    "nothing requeued: {id} is not a dead letter waiting for a retry \
                     (unknown id, or already requeued)"
                );
            }
            writeln!(out, "requeued {requeued}")?;
        }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Imports the Django export at `path`, one report line per skipped row or
/// mapped id and a one-line summary to `out`, with a progress bar on
/// standard error when it is a terminal. An error when a row failed.
pub async fn run_import(
    storage: &dyn Storage,
    path: &std::path::Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let open = || {
        std::fs::File::open(path)
            .map(std::io::BufReader::new)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
    };
    let total = open()?
        .split(b'\n')
        .map_while(Result::ok)
        .filter(|l| !l.trim_ascii().is_empty())
        .count();
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} rows, {per_sec}, {eta} left",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let result =
        crate::import::import_django(storage, open()?, out, &|done| bar.set_position(done)).await;
    bar.finish_and_clear();
    let report = result?;
    writeln!(out, "{report}")?;
    if report.failed > 0 {
        anyhow::bail!("{} row(s) were not imported (see above)", report.failed);
    }
    Ok(())
}

/// Runs one api-key subcommand, writing its output to `out`. Nothing it
/// needs comes from the settings: it works before any are configured.
pub fn run_api_key(command: ApiKeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let ApiKeyCommand::New {
        name,
        scopes,
        requests_per_minute,
        key_file,
    } = command;
    access::check_name(&name).map_err(|e| anyhow::anyhow!("caller name {name:?}: {e}"))?;
    let scopes = scopes
        .iter()
        .map(|raw| {
            Scope::parse(raw.trim()).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown scope {raw:?} (known: {})",
                    Scope::ALL.map(Scope::as_str).join(", ")
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let key = access::new_key();
    let entry = access::file_entry(&name, &scopes, &key, requests_per_minute);
    match key_file {
        Some(path) => {
            write_new_secret_file(&path, &key)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            write!(out, "{entry}")?;
        }
        None => {
            writeln!(
                out,
                "API key for {name} (shown only now; hand it to that service as a secret):\n{key}\n"
            )?;
            writeln!(out, "Entry for API_KEYS_FILE:\n{entry}")?;
        }
    }
    Ok(())
}

/// Creates `path` (never overwriting) readable by its owner only, holding `secret`.
fn write_new_secret_file(path: &std::path::Path, secret: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    writeln!(file, "{secret}")
}
