//! Memory a client cannot pin: a flood of huge invalid addresses and of
//! distinct valid ones, against the real binary, measured from /proc.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::ResendConfirmationRequest;
use tokio::sync::Semaphore;
use tonic::transport::Channel;
use tonic::Code;

use crate::helpers::*;
use crate::smtp_server::reserve_addr;

/// Resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends every address in `emails` through ResendConfirmation, 32 at a
/// time; returns how many answers had each code.
async fn flood(
    channel: &Channel,
    emails: impl IntoIterator<Item = String>,
) -> std::collections::BTreeMap<String, u64> {
    let slots = Arc::new(Semaphore::new(32));
    let mut calls = tokio::task::JoinSet::new();
    for email in emails {
        let permit = Arc::clone(&slots).acquire_owned().await.unwrap();
        let mut client = AccountServiceClient::new(channel.clone());
        calls.spawn(async move {
            let _permit = permit;
            match client
                .resend_confirmation(ResendConfirmationRequest { email })
                .await
            {
                Ok(_) => Code::Ok,
                Err(status) => status.code(),
            }
        });
    }
    let mut codes = std::collections::BTreeMap::new();
    while let Some(code) = calls.join_next().await {
        *codes.entry(format!("{:?}", code.unwrap())).or_default() += 1;
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_addresses_do_not_pin_memory() {
    // PostgreSQL when the suite has one (a SQLite file syncs every commit
    // to disk, which makes 20000 calls slow without changing what is measured).
    let backend = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Backend::Postgres { admin_url: url },
        _ => Backend::Sqlite,
    };
    let db = TestDatabase::create(&backend).await;
    let (grpc, http) = (reserve_addr(), reserve_addr());
    let mail = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_account-service"))
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("GRPC_ADDR", grpc.to_string())
        .env("HTTP_ADDR", http.to_string())
        .env("SECRET_KEY", TEST_SECRET_KEY)
        .env("EMAIL_BACKEND", "file")
        .env("EMAIL_FILE_PATH", mail.path())
        // The per-address limiter is the one under attack; every call comes
        // from one client address, so that limit is off.
        .env("RATE_LIMIT_PER_CLIENT", "0")
        .env("DATABASE_MAX_CONNECTIONS", "4")
        .env("RUST_LOG", "warn")
        .current_dir(mail.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _service = Service(child);
    let client = reqwest::Client::new();
    let ready = eventually(Duration::from_secs(20), || async {
        let r = client
            .get(format!("http://{http}/readyz"))
            .send()
            .await
            .ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    assert!(ready.is_some(), "the service did not become ready");
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();

    // Warm up every code path once, so that what is measured is growth.
    flood(
        &channel,
        (0..200).map(|i| format!("warm-{i}@flood.example")),
    )
    .await;
    let before = rss_kib(pid);

    let huge = format!("{}@", "x".repeat(60 * 1024));
    let codes = flood(&channel, (0..5000).map(|i| format!("{huge}{i}"))).await;
    assert_eq!(
        codes.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["InvalidArgument"],
        "{codes:?}"
    );
    let codes = flood(
        &channel,
        (0..20_000).map(|i| format!("user-{i}@flood.example")),
    )
    .await;
    for code in codes.keys() {
        assert!(
            ["Ok", "InvalidArgument", "ResourceExhausted"].contains(&code.as_str()),
            "{codes:?}"
        );
    }
    let after = rss_kib(pid);

    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    eprintln!("resident memory: {before} KiB before, {after} KiB after (+{grown_mib:.1} MiB)");
    assert!(
        grown_mib < 40.0,
        "resident memory grew by {grown_mib:.1} MiB"
    );
}
