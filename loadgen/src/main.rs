//! account-loadgen: drives account-service over gRPC at a fixed concurrency or
//! rate and reports throughput, latency percentiles and status codes; also
//! measures the machine's own limits (argon2 hashes per second) and can act as
//! a counting SMTP sink for mail throughput runs.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use account_service::auth::{hash_blocking, ConfirmationTokens, Keyring};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    get_account_request, CheckPasswordRequest, ConfirmRegistrationRequest, GetAccountRequest,
    GetAccountResponse, RegisterRequest, ResendConfirmationRequest,
};
use anyhow::Context;
use bytes::Bytes;
use clap::{Args, Parser, Subcommand};
use hdrhistogram::Histogram;
use http::Uri;
use prost::Message;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

use tonic::{Code, Status};

mod h2grpc;
mod offline;
mod sessions;
mod upload;

#[derive(Parser)]
#[command(name = "account-loadgen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register new accounts (unique addresses).
    Register(Load),
    /// Sign in: register and confirm one account, then check its password
    /// repeatedly (each call is one argon2id check).
    CheckPassword {
        #[command(flatten)]
        load: Load,
        /// The service's SECRET_KEY, to confirm the account.
        #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
    /// Lock one address out with wrong passwords, then flood it: every call
    /// should be refused without hashing.
    LockedFlood {
        #[command(flatten)]
        load: Load,
        /// Wrong passwords it takes to lock the address (LOGIN_MAX_FAILURES).
        #[arg(long, default_value_t = 5)]
        failures: u32,
    },
    /// Ask for confirmation mails for unique addresses that have no account
    /// (each call takes from the rate limits and records a cooldown).
    Resend(Load),
    /// Confirm accounts with tokens minted for the ids in a file.
    Confirm {
        #[command(flatten)]
        load: Load,
        /// File with one account id per line.
        #[arg(long)]
        ids: String,
        /// The service's SECRET_KEY, to mint confirmation tokens.
        #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
    /// Look accounts up: by id, cycling through the ids in a file, or (without
    /// `--ids`) one freshly registered account by e-mail, repeatedly.
    Get {
        #[command(flatten)]
        load: Load,
        /// File with one account id per line.
        #[arg(long)]
        ids: Option<String>,
    },
    /// The standard health check, repeatedly: what a call costs the service
    /// and this client when it touches no database (the transport's floor).
    Health(Load),
    /// SignIn with the right password, cycling through verified accounts:
    /// one argon2id check and one new session per call.
    SignIn {
        #[command(flatten)]
        load: Load,
        /// File with one address per line, of verified accounts whose
        /// password is the load generator's (see `password-hash`).
        #[arg(long)]
        emails: String,
    },
    /// Sign in one session per call in flight, then RefreshSession each in
    /// a chain (every call presents the token the session's last answer gave).
    Refresh {
        #[command(flatten)]
        load: Load,
        /// File with one address per line, as for `sign-in`.
        #[arg(long)]
        emails: String,
    },
    /// VerifyAccessToken, cycling through the access tokens in a file.
    VerifyToken {
        #[command(flatten)]
        load: Load,
        /// File with one access token per line.
        #[arg(long)]
        tokens: String,
    },
    /// ListSessions, cycling through the account ids in a file.
    ListSessions {
        #[command(flatten)]
        load: Load,
        /// File with one account id per line.
        #[arg(long)]
        ids: String,
    },
    /// Upload one file as one account's profile image, again and again: each
    /// call a SetProfileImage stream of the account's id, then the file in
    /// 60000-byte chunks. The account is registered first.
    Upload {
        #[command(flatten)]
        load: Load,
        /// The image to upload.
        #[arg(long)]
        file: String,
    },
    /// Write a photo-like JPEG (gradients, a soft disc and fine noise) to
    /// upload; the same arguments always give the same file.
    MakeJpeg {
        #[arg(long)]
        width: u32,
        #[arg(long)]
        height: u32,
        #[arg(long)]
        out: String,
        /// JPEG quality, 1 to 100.
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
        quality: u8,
        /// Amplitude of the noise added to each channel of each pixel, 0 to
        /// 127: the more noise, the larger the file.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(0..=127))]
        noise: u8,
    },
    /// Verify an access token offline against a JWKS document (the sidecar's
    /// /.well-known/jwks.json), as a calling service does, again and again on
    /// one thread: tokens verified per second on one core.
    JwksVerify {
        /// File holding the JWKS document.
        #[arg(long)]
        jwks: String,
        /// File whose first line is the access token to verify.
        #[arg(long)]
        tokens: String,
        /// The service's ACCESS_TOKEN_ISSUER.
        #[arg(long)]
        issuer: String,
        /// The service's ACCESS_TOKEN_AUDIENCE.
        #[arg(long, default_value = "ecoms")]
        audience: String,
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        #[arg(long)]
        json: bool,
    },
    /// Print one argon2id hash of the load generator's password, to seed
    /// verified accounts that SignIn accepts.
    PasswordHash,
    /// Print an access token (valid for an hour) for each `account_id
    /// session_id` line of a file, signed as the service signs them.
    MintAccessTokens {
        #[arg(long)]
        sessions: String,
        /// The service's SECRET_KEY, from which its signing key is derived.
        #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        /// The service's ACCESS_TOKEN_ISSUER.
        #[arg(long)]
        issuer: String,
        /// The service's ACCESS_TOKEN_AUDIENCE.
        #[arg(long, default_value = "ecoms")]
        audience: String,
    },
    /// Register one account and time how long its welcome mail takes to reach
    /// an SMTP sink started here (the service must send to `--smtp`).
    MailLatency {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Where the SMTP sink listens.
        #[arg(long, default_value = "127.0.0.1:2525")]
        smtp: String,
        /// Register only once this file exists (the sink listens meanwhile),
        /// so that the service can be started, and left idle, in between.
        #[arg(long)]
        wait_for: Option<String>,
        /// Give up after this many seconds of waiting for the mail.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        #[arg(long)]
        json: bool,
    },
    /// Argon2id hashes per second with every core busy (the service's parameters).
    HashLimit {
        /// Seconds to measure.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Hashing threads (default: the number of cores).
        #[arg(long)]
        threads: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Write one call's framed request message (its 5-byte gRPC prefix and
    /// the protobuf) to stdout: the body file for h2load's `-d`.
    GrpcBody {
        #[command(subcommand)]
        call: BodyCall,
    },
    /// Print a confirmation token for each account id in a file (for wrk).
    MintTokens {
        #[arg(long)]
        ids: String,
        #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
        secret_key: String,
    },
    /// Median ResendConfirmation latency for unknown, verified and unverified
    /// addresses, side by side (each address asked once, interleaved). The
    /// service needs RATE_LIMITS=off (all calls come from one address).
    ResendTiming {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Addresses of each kind.
        #[arg(long, default_value_t = 300)]
        accounts: usize,
        /// The service's SECRET_KEY, to confirm the verified accounts.
        #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
        secret_key: String,
        #[arg(long)]
        json: bool,
    },
    /// ResendConfirmation flooded with huge invalid addresses, then with
    /// distinct valid ones; reports the service's resident memory before and
    /// after (from /proc, so on the same machine) and every answer's code.
    ResendFlood {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// The service's process id.
        #[arg(long)]
        pid: u32,
        /// Calls carrying an invalid address of `--invalid-kib` KiB.
        #[arg(long, default_value_t = 5000)]
        invalid: u64,
        #[arg(long, default_value_t = 60)]
        invalid_kib: usize,
        /// Calls with distinct valid addresses.
        #[arg(long, default_value_t = 20_000)]
        valid: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long)]
        json: bool,
    },
    /// The event stream: how soon a change reaches an idle watcher, how fast
    /// a live watcher keeps up with a burst of changes, and how fast a new
    /// one replays them.
    Events {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Changes made one at a time, each timed to its event.
        #[arg(long, default_value_t = 300)]
        latency_samples: usize,
        /// Changes in the burst.
        #[arg(long, default_value_t = 20_000)]
        burst: usize,
        /// Calls in flight during the burst.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Replays of the burst by new watchers, of which the median is
        /// reported.
        #[arg(long, default_value_t = 7)]
        replays: usize,
        #[arg(long)]
        json: bool,
    },
    /// Accept SMTP mail and report how fast it arrived.
    SmtpSink {
        #[arg(long, default_value = "127.0.0.1:2525")]
        addr: String,
        /// Stop after this many messages.
        #[arg(long)]
        expect: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
        #[arg(long)]
        json: bool,
    },
}

/// The calls `grpc-body` writes a request for.
#[derive(Subcommand)]
enum BodyCall {
    /// GetAccount by id (to POST to /account.v1.AccountService/GetAccount).
    Get {
        #[arg(long)]
        id: uuid::Uuid,
    },
    /// The standard health check of the whole server (to POST to
    /// /grpc.health.v1.Health/Check).
    Health,
    /// VerifyAccessToken of the first token in a file (to POST to
    /// /account.v1.AccountService/VerifyAccessToken).
    Verify {
        #[arg(long)]
        tokens: String,
    },
}

#[derive(Args, Clone)]
struct Load {
    /// gRPC endpoint of the service.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// HTTP/2 connections to spread requests over.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight at once (closed loop).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Requests per second (open loop) instead of a fixed concurrency.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Send the calls straight over the `h2` crate (a prebuilt request head
    /// and message per call, no tower stack), so that less of the machine
    /// goes to making the load. For `get --ids` and `health`; `refresh`,
    /// `verify-token` and `list-sessions` always send their calls this way.
    #[arg(long)]
    lean: bool,
    /// Exit with status 1 if any request failed with INTERNAL, UNKNOWN,
    /// UNAVAILABLE, DEADLINE_EXCEEDED or a transport error.
    #[arg(long)]
    fail_on_error: bool,
}

/// What the measured requests produced.
struct Report {
    scenario: String,
    elapsed: Duration,
    latency_us: Histogram<u64>,
    codes: BTreeMap<String, u64>,
}

impl Report {
    fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_owned(),
            elapsed: Duration::ZERO,
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("valid histogram bounds"),
            codes: BTreeMap::new(),
        }
    }

    fn record(&mut self, latency: Duration, code: &str) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let _ = self.latency_us.record(us.min(600_000_000));
        *self.codes.entry(code.to_owned()).or_default() += 1;
    }

    fn merge(&mut self, other: &Report) {
        let _ = self.latency_us.add(&other.latency_us);
        for (code, n) in &other.codes {
            *self.codes.entry(code.clone()).or_default() += n;
        }
    }

    fn total(&self) -> u64 {
        self.codes.values().sum()
    }

    fn errors(&self) -> u64 {
        self.codes
            .iter()
            .filter(|(c, _)| {
                matches!(
                    c.as_str(),
                    "INTERNAL"
                        | "UNKNOWN"
                        | "UNAVAILABLE"
                        | "DEADLINE_EXCEEDED"
                        | "CANCELLED"
                        | "TRANSPORT_ERROR"
                )
            })
            .map(|(_, n)| n)
            .sum()
    }

    fn print(&self, json: bool) {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let ok = self.codes.get("OK").copied().unwrap_or(0);
        let ms = |q: f64| self.latency_us.value_at_quantile(q) as f64 / 1000.0;
        if json {
            let value = serde_json::json!({
                "scenario": self.scenario,
                "requests": self.total(),
                "duration_s": secs,
                "throughput": self.total() as f64 / secs,
                "ok_throughput": ok as f64 / secs,
                "latency_ms": {
                    "p50": ms(0.50), "p90": ms(0.90), "p99": ms(0.99),
                    "max": self.latency_us.max() as f64 / 1000.0,
                    "mean": self.latency_us.mean() / 1000.0,
                },
                "codes": self.codes,
            });
            println!("{value}");
        } else {
            println!(
                "{}: {} requests in {:.2} s = {:.1} req/s ({:.1} OK/s)",
                self.scenario,
                self.total(),
                secs,
                self.total() as f64 / secs,
                ok as f64 / secs
            );
            println!(
                "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                ms(0.50),
                ms(0.90),
                ms(0.99),
                self.latency_us.max() as f64 / 1000.0
            );
            let codes: Vec<String> = self.codes.iter().map(|(c, n)| format!("{c}={n}")).collect();
            println!("codes: {}", codes.join(" "));
        }
    }
}

fn code_name(result: &Result<(), Status>) -> String {
    match result {
        Ok(()) => "OK".to_owned(),
        Err(status) => {
            // A status built from a failed connection carries the transport error.
            if status.code() == Code::Unknown || status.code() == Code::Unavailable {
                if let Some(source) = std::error::Error::source(status) {
                    if source.is::<tonic::transport::Error>() {
                        return "TRANSPORT_ERROR".to_owned();
                    }
                }
            }
            upper_snake(&format!("{:?}", status.code()))
        }
    }
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

async fn connect(load: &Load) -> anyhow::Result<Vec<Channel>> {
    let mut channels = Vec::new();
    for _ in 0..load.connections.max(1) {
        let channel = Endpoint::from_shared(load.addr.clone())?
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}", load.addr))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Runs `call(i, channel)` for requests i = 0, 1, … at the configured
/// concurrency or rate, until the duration or request count is reached.
async fn drive<F, Fut>(scenario: &str, load: &Load, call: F) -> anyhow::Result<Report>
where
    F: Fn(u64, Channel) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    anyhow::ensure!(
        !load.lean,
        "--lean (calls sent over h2 directly) is only for get --ids and health"
    );
    drive_on(scenario, load, connect(load).await?, call).await
}

/// [`drive`] with [`h2grpc::Connection`]s instead of tonic channels, each
/// call to the method at `path`.
async fn drive_lean<F, Fut>(
    scenario: &str,
    load: &Load,
    path: &str,
    call: F,
) -> anyhow::Result<Report>
where
    F: Fn(u64, h2grpc::Connection, Uri) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let uri = h2grpc::method_uri(&load.addr, path)?;
    let mut connections = Vec::new();
    for _ in 0..load.connections.max(1) {
        connections.push(h2grpc::Connection::open(&uri).await?);
    }
    drive_on(scenario, load, connections, move |i, connection| {
        call(i, connection, uri.clone())
    })
    .await
}

/// [`drive_lean`] through prebuilt calls in turn, each a framed request and
/// what its answer must show: `check` gets both, the answer decoded as `A`,
/// and says what is wrong with an answer that does not show it.
async fn drive_expecting<A, C>(
    scenario: &str,
    load: &Load,
    path: &str,
    calls: Vec<(String, Bytes)>,
    check: C,
) -> anyhow::Result<Report>
where
    A: Message + Default + 'static,
    C: Fn(&str, A) -> Result<(), &'static str> + Send + Sync + 'static,
{
    anyhow::ensure!(!calls.is_empty(), "{scenario}: no calls to make");
    let (calls, check) = (Arc::new(calls), Arc::new(check));
    drive_lean(scenario, load, path, move |i, connection, uri| {
        let (calls, check) = (Arc::clone(&calls), Arc::clone(&check));
        async move {
            let (expected, request) = &calls[(i as usize) % calls.len()];
            let answer = connection.unary(&uri, request.clone()).await?;
            let answer = A::decode(answer)
                .map_err(|e| Status::internal(format!("undecodable answer: {e}")))?;
            check(expected, answer).map_err(Status::internal)
        }
    })
    .await
}

async fn drive_on<C, F, Fut>(
    scenario: &str,
    load: &Load,
    channels: Vec<C>,
    call: F,
) -> anyhow::Result<Report>
where
    C: Clone + Send + Sync + 'static,
    F: Fn(u64, C) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Status>> + Send + 'static,
{
    let channels = Arc::new(channels);
    let call = Arc::new(call);
    let deadline = Instant::now() + Duration::from_secs_f64(load.duration);
    let limit = load.requests.unwrap_or(u64::MAX);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut total = Report::new(scenario);

    match load.rate {
        None => {
            let mut workers = tokio::task::JoinSet::new();
            for _ in 0..load.concurrency.max(1) {
                let (channels, call, next) =
                    (Arc::clone(&channels), Arc::clone(&call), Arc::clone(&next));
                let scenario = scenario.to_owned();
                workers.spawn(async move {
                    let mut report = Report::new(&scenario);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= limit || Instant::now() >= deadline {
                            break;
                        }
                        let channel = channels[(i as usize) % channels.len()].clone();
                        let t0 = Instant::now();
                        let result = call(i, channel).await;
                        report.record(t0.elapsed(), &code_name(&result));
                    }
                    report
                });
            }
            while let Some(report) = workers.join_next().await {
                total.merge(&report?);
            }
        }
        Some(rate) => {
            // Open loop: latency counts from when a request was due, so a
            // slow service cannot hide its queueing (no coordinated omission).
            let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let results = Arc::new(Mutex::new(Report::new(scenario)));
            let mut tasks = tokio::task::JoinSet::new();
            let mut i = 0u64;
            while i < limit {
                let due = started + interval.mul_f64(i as f64);
                if due >= deadline {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let (channels, call, results) = (
                    Arc::clone(&channels),
                    Arc::clone(&call),
                    Arc::clone(&results),
                );
                tasks.spawn(async move {
                    let channel = channels[(i as usize) % channels.len()].clone();
                    let result = call(i, channel).await;
                    let latency = due.elapsed();
                    if let Ok(mut r) = results.lock() {
                        r.record(latency, &code_name(&result));
                    }
                });
                i += 1;
            }
            while tasks.join_next().await.is_some() {}
            let guard = results.lock();
            if let Ok(r) = &guard {
                total.merge(r);
            }
            drop(guard);
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// The password of every account the load generator registers.
const PASSWORD: &str = "secret123";

fn registration(email: String) -> RegisterRequest {
    RegisterRequest {
        email,
        username: "loadgen".into(),
        password: PASSWORD.into(),
        confirm_password: PASSWORD.into(),
        term_and_condition: true,
        created_from: "loadgen".into(),
        ..Default::default()
    }
}

fn read_ids(path: &str) -> anyhow::Result<Vec<uuid::Uuid>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let ids: Vec<uuid::Uuid> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(uuid::Uuid::parse_str)
        .collect::<Result<_, _>>()
        .context("every line must be an account id")?;
    anyhow::ensure!(!ids.is_empty(), "{path} holds no account ids");
    Ok(ids)
}

fn mint(ids: &[uuid::Uuid], secret_key: &str) -> anyhow::Result<Vec<String>> {
    let tokens = ConfirmationTokens::new(&Keyring::new(secret_key.as_bytes(), None), 86_400);
    let now = chrono::Utc::now();
    ids.iter().map(|id| tokens.issue(*id, now)).collect()
}

fn finish(report: &Report, load: &Load) -> anyhow::Result<()> {
    report.print(load.json);
    if load.fail_on_error && report.errors() > 0 {
        anyhow::bail!(
            "{} request(s) failed with a server or transport error",
            report.errors()
        );
    }
    Ok(())
}

fn hash_limit(duration: f64, threads: Option<usize>, json: bool) -> anyhow::Result<()> {
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    // One hash on one otherwise idle core: the unit of the latency target.
    let single = {
        let t0 = Instant::now();
        let mut n = 0u32;
        while t0.elapsed() < Duration::from_secs(1) || n < 3 {
            hash_blocking("secret123")?;
            n += 1;
        }
        t0.elapsed().as_secs_f64() / f64::from(n)
    };
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if hash_blocking("secret123").is_ok() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let per_second = total as f64 / elapsed;
    let value = serde_json::json!({
        "scenario": "hash-limit",
        "threads": threads,
        "hashes": total,
        "duration_s": elapsed,
        "hashes_per_second": per_second,
        "single_hash_ms": single * 1000.0,
    });
    print_result(json, &value, || {
        format!(
            "hash-limit: {total} argon2id hashes on {threads} threads in {elapsed:.2} s = {per_second:.1}/s; one hash alone {:.2} ms",
            single * 1000.0
        )
    });
    Ok(())
}

/// Prints a measurement: its JSON object with `--json`, else a line of text.
fn print_result(json: bool, value: &serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

/// One message the sink accepted: when, and for whom.
struct Arrival {
    at: Instant,
    recipients: Vec<String>,
}

#[derive(Clone)]
struct Sink {
    received: Arc<Mutex<Vec<Arrival>>>,
    /// Recipients of the message in progress; each SMTP session has its own
    /// clone of the handler, so this is per connection.
    recipients: Vec<String>,
}

impl mailin_embedded::Handler for Sink {
    fn mail(
        &mut self,
        _ip: std::net::IpAddr,
        _domain: &str,
        _from: &str,
    ) -> mailin_embedded::Response {
        self.recipients.clear();
        mailin_embedded::response::OK
    }

    fn rcpt(&mut self, to: &str) -> mailin_embedded::Response {
        self.recipients.push(to.to_ascii_lowercase());
        mailin_embedded::response::OK
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let arrival = Arrival {
            at: Instant::now(),
            recipients: std::mem::take(&mut self.recipients),
        };
        if let Ok(mut r) = self.received.lock() {
            r.push(arrival);
        }
        mailin_embedded::response::OK
    }
}

/// Starts an SMTP server on `addr` in the background; returns what it receives.
fn start_sink(addr: &str) -> anyhow::Result<Arc<Mutex<Vec<Arrival>>>> {
    let received = Arc::new(Mutex::new(Vec::new()));
    let mut server = mailin_embedded::Server::new(Sink {
        received: Arc::clone(&received),
        recipients: Vec::new(),
    });
    server
        .with_name("sink.local")
        .with_num_threads(64)
        .with_addr(addr)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    server
        .with_ssl(mailin_embedded::SslConfig::None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    std::thread::spawn(move || server.serve().map_err(|e| e.to_string()));
    Ok(received)
}

fn smtp_sink(addr: &str, expect: u64, timeout: f64, json: bool) -> anyhow::Result<()> {
    let received = start_sink(addr)?;
    eprintln!("smtp-sink listening on {addr}, waiting for {expect} message(s)");
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    loop {
        let count = received.lock().map(|r| r.len() as u64).unwrap_or(0);
        if count >= expect || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let times: Vec<Instant> = received
        .lock()
        .map(|r| r.iter().map(|a| a.at).collect())
        .unwrap_or_default();
    let count = times.len() as u64;
    let span = match (times.first(), times.last()) {
        (Some(a), Some(b)) if count > 1 => b.duration_since(*a).as_secs_f64(),
        _ => 0.0,
    };
    let rate = if span > 0.0 {
        (count - 1) as f64 / span
    } else {
        0.0
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"scenario": "smtp-sink", "messages": count, "span_s": span, "messages_per_second": rate})
        );
    } else {
        println!("smtp-sink: {count} messages over {span:.2} s = {rate:.1}/s");
    }
    anyhow::ensure!(
        count >= expect,
        "only {count} of {expect} messages arrived in {timeout} s"
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Register(load) => {
            let run = uuid::Uuid::new_v4().simple().to_string();
            let report = drive("register", &load, move |i, channel| {
                let email = format!("lg-{}-{i}@loadgen.example", &run[..12]);
                async move {
                    AccountServiceClient::new(channel)
                        .register(registration(email))
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::CheckPassword { load, secret_key } => {
            let email = format!(
                "lg-signin-{}@loadgen.example",
                uuid::Uuid::new_v4().simple()
            );
            let channel = connect(&Load {
                connections: 1,
                ..load.clone()
            })
            .await?
            .remove(0);
            let mut client = AccountServiceClient::new(channel);
            let account = client
                .register(registration(email.clone()))
                .await
                .context("cannot register the account to sign in with")?
                .into_inner()
                .account
                .context("Register answered no account")?;
            let id = uuid::Uuid::parse_str(&account.id)?;
            let token = mint(&[id], &secret_key)?.remove(0);
            client
                .confirm_registration(ConfirmRegistrationRequest::with_token(token))
                .await
                .context("cannot confirm the account (is --secret-key the service's?)")?;
            let report = drive("check_password", &load, move |_, channel| {
                let email = email.clone();
                async move {
                    AccountServiceClient::new(channel)
                        .check_password(CheckPasswordRequest {
                            email,
                            password: PASSWORD.into(),
                        })
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::LockedFlood { load, failures } => {
            let email = format!(
                "lg-locked-{}@loadgen.example",
                uuid::Uuid::new_v4().simple()
            );
            let channel = connect(&Load {
                connections: 1,
                ..load.clone()
            })
            .await?
            .remove(0);
            let mut client = AccountServiceClient::new(channel);
            for _ in 0..failures {
                let answer = client
                    .check_password(CheckPasswordRequest {
                        email: email.clone(),
                        password: "not-the-password1".into(),
                    })
                    .await;
                if !matches!(&answer, Err(s) if s.code() == Code::Unauthenticated) {
                    anyhow::bail!("a wrong password did not answer UNAUTHENTICATED: {answer:?}");
                }
            }
            let report = drive("locked_flood", &load, move |_, channel| {
                let email = email.clone();
                async move {
                    AccountServiceClient::new(channel)
                        .check_password(CheckPasswordRequest {
                            email,
                            password: PASSWORD.into(),
                        })
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::Resend(load) => {
            let run = uuid::Uuid::new_v4().simple().to_string();
            let report = drive("resend", &load, move |i, channel| {
                let email = format!("lg-resend-{}-{i}@loadgen.example", &run[..12]);
                async move { resend(&channel, email).await }
            })
            .await?;
            finish(&report, &load)
        }
        Command::Confirm {
            load,
            ids,
            secret_key,
        } => {
            let tokens = Arc::new(mint(&read_ids(&ids)?, &secret_key)?);
            let report = drive("confirm", &load, move |i, channel| {
                let token = tokens[(i as usize) % tokens.len()].clone();
                async move {
                    AccountServiceClient::new(channel)
                        .confirm_registration(ConfirmRegistrationRequest::with_token(token))
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::Get {
            load,
            ids: Some(ids),
        } if load.lean => {
            // Every request is built before the clock starts.
            let calls = read_ids(&ids)?
                .into_iter()
                .map(|id| {
                    let id = id.to_string();
                    let request = h2grpc::message(&GetAccountRequest {
                        lookup: Some(get_account_request::Lookup::Id(id.clone())),
                    });
                    (id, request)
                })
                .collect();
            let report = drive_expecting(
                "get",
                &load,
                h2grpc::GET_ACCOUNT,
                calls,
                // The right account came back, not just any OK.
                |id, answer: GetAccountResponse| match answer.account {
                    Some(a) if a.id == id => Ok(()),
                    _ => Err("the answer is not the account asked for"),
                },
            )
            .await?;
            finish(&report, &load)
        }
        Command::Get {
            load,
            ids: Some(ids),
        } => {
            let ids = Arc::new(read_ids(&ids)?);
            let report = drive("get", &load, move |i, channel| {
                let id = ids[(i as usize) % ids.len()].to_string();
                async move {
                    AccountServiceClient::new(channel)
                        .get_account(GetAccountRequest {
                            lookup: Some(get_account_request::Lookup::Id(id)),
                        })
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::Health(load) if load.lean => {
            let request = h2grpc::message(&HealthCheckRequest {
                service: String::new(),
            });
            let report = drive_lean(
                "health",
                &load,
                h2grpc::HEALTH_CHECK,
                move |_, connection, uri| {
                    let request = request.clone();
                    async move { connection.unary(&uri, request).await.map(|_| ()) }
                },
            )
            .await?;
            finish(&report, &load)
        }
        Command::Health(load) => {
            let report = drive("health", &load, move |_, channel| async move {
                HealthClient::new(channel)
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .map(|_| ())
            })
            .await?;
            finish(&report, &load)
        }
        Command::Get { load, ids: None } => {
            let email = format!("lg-get-{}@loadgen.example", uuid::Uuid::new_v4().simple());
            let channel = connect(&Load {
                connections: 1,
                ..load.clone()
            })
            .await?
            .remove(0);
            AccountServiceClient::new(channel)
                .register(registration(email.clone()))
                .await
                .context("cannot register the account to look up")?;
            let report = drive("get", &load, move |_, channel| {
                let email = email.clone();
                async move {
                    AccountServiceClient::new(channel)
                        .get_account(GetAccountRequest {
                            lookup: Some(get_account_request::Lookup::Email(email)),
                        })
                        .await
                        .map(|_| ())
                }
            })
            .await?;
            finish(&report, &load)
        }
        Command::SignIn { load, emails } => sessions::sign_in(&load, &emails).await,
        Command::Refresh { load, emails } => sessions::refresh(&load, &emails).await,
        Command::VerifyToken { load, tokens } => sessions::verify(&load, &tokens).await,
        Command::ListSessions { load, ids } => sessions::list(&load, &ids).await,
        Command::PasswordHash => sessions::password_hash(),
        Command::Upload { load, file } => upload::upload(&load, &file).await,
        Command::MakeJpeg {
            width,
            height,
            out,
            quality,
            noise,
        } => upload::make_jpeg(width, height, quality, noise, &out).map(drop),
        Command::JwksVerify {
            jwks,
            tokens,
            issuer,
            audience,
            duration,
            json,
        } => offline::jwks_verify(&jwks, &tokens, (&issuer, &audience), duration, json),
        Command::MintAccessTokens {
            sessions: path,
            secret_key,
            issuer,
            audience,
        } => sessions::mint_access_tokens(&path, &secret_key, &issuer, &audience),
        Command::MailLatency {
            addr,
            smtp,
            wait_for,
            timeout,
            json,
        } => mail_latency(&addr, &smtp, wait_for.as_deref(), timeout, json).await,
        Command::HashLimit {
            duration,
            threads,
            json,
        } => hash_limit(duration, threads, json),
        Command::GrpcBody { call } => {
            let body = match call {
                BodyCall::Get { id } => h2grpc::message(&GetAccountRequest {
                    lookup: Some(get_account_request::Lookup::Id(id.to_string())),
                }),
                BodyCall::Health => h2grpc::message(&HealthCheckRequest {
                    service: String::new(),
                }),
                BodyCall::Verify { tokens } => sessions::verify_body(&tokens)?,
            };
            let mut stdout = std::io::stdout().lock();
            std::io::Write::write_all(&mut stdout, &body)?;
            std::io::Write::flush(&mut stdout).context("cannot write the body")
        }
        Command::MintTokens { ids, secret_key } => {
            for token in mint(&read_ids(&ids)?, &secret_key)? {
                println!("{token}");
            }
            Ok(())
        }
        Command::SmtpSink {
            addr,
            expect,
            timeout,
            json,
        } => smtp_sink(&addr, expect, timeout, json),
        Command::Events {
            addr,
            latency_samples,
            burst,
            concurrency,
            replays,
            json,
        } => {
            events(
                &addr,
                latency_samples,
                burst,
                concurrency,
                replays.max(1),
                json,
            )
            .await
        }
        Command::ResendTiming {
            addr,
            accounts,
            secret_key,
            json,
        } => resend_timing(&addr, accounts, &secret_key, json).await,
        Command::ResendFlood {
            addr,
            pid,
            invalid,
            invalid_kib,
            valid,
            concurrency,
            json,
        } => resend_flood(&addr, pid, (invalid, invalid_kib), valid, concurrency, json).await,
    }
}

/// A watcher's arrivals: each event's account id and when it came.
type Arrivals = Arc<Mutex<Vec<(String, String, Instant)>>>;

/// Starts a watcher after `cursor`, recording every real event.
/// A watcher from `cursor` whose events are recorded as they arrive; it
/// leaves after `leave_after` events, if given.
async fn watch(
    channel: &Channel,
    cursor: &str,
    leave_after: Option<usize>,
) -> anyhow::Result<Arrivals> {
    use account_service::proto::account::v1::WatchAccountEventsRequest;
    let mut stream = AccountServiceClient::new(channel.clone())
        .watch_account_events(WatchAccountEventsRequest {
            after_cursor: cursor.to_owned(),
            types: Vec::new(),
        })
        .await?
        .into_inner();
    let arrivals: Arrivals = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&arrivals);
    tokio::spawn(async move {
        while let Ok(Some(event)) = stream.message().await {
            if event.r#type != 0 {
                let mut seen = sink.lock().unwrap_or_else(|p| p.into_inner());
                seen.push((event.account_id, event.cursor, Instant::now()));
                if leave_after.is_some_and(|n| seen.len() >= n) {
                    break;
                }
            }
        }
    });
    Ok(arrivals)
}

fn arrived(arrivals: &Arrivals) -> usize {
    arrivals.lock().unwrap_or_else(|p| p.into_inner()).len()
}

/// Waits until `arrivals` holds `n` events; false after `timeout`.
async fn until_arrived(arrivals: &Arrivals, n: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while arrived(arrivals) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    true
}

async fn events(
    addr: &str,
    latency_samples: usize,
    burst: usize,
    concurrency: usize,
    replays_wanted: usize,
    json: bool,
) -> anyhow::Result<()> {
    use account_service::proto::account::v1::UpdateProfileRequest;
    let channel = Endpoint::from_shared(addr.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let mut client = AccountServiceClient::new(channel.clone());
    let mut ids = Vec::new();
    for _ in 0..concurrency.clamp(1, 64) {
        let email = format!("events-{}@bench.example", uuid::Uuid::new_v4().simple());
        let account = client
            .register(registration(email))
            .await?
            .into_inner()
            .account
            .context("Register answered no account")?;
        ids.push(account.id);
    }
    let update = |client: &mut AccountServiceClient<Channel>, id: &str, n: usize| {
        let request = UpdateProfileRequest {
            id: id.to_owned(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["first_name".into()],
            }),
            first_name: format!("n{n}"),
            ..Default::default()
        };
        let mut client = client.clone();
        async move { client.update_profile(request).await.map(drop) }
    };

    // Catch up with what is there (the log may be long): once the event of a
    // marker change arrives, everything before it has.
    let live = watch(&channel, "", None).await?;
    let marker = &ids[0];
    update(&mut client, marker, usize::MAX).await?;
    let caught_up = Instant::now() + Duration::from_secs(600);
    loop {
        let markers = live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(id, _, _)| id == marker)
            .count();
        // Its registration, then the marker.
        if markers >= 2 {
            break;
        }
        if Instant::now() > caught_up {
            anyhow::bail!("the watcher did not catch up with the log within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Time lone changes on an otherwise idle service.
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    for n in 0..latency_samples {
        let before = arrived(&live);
        let sent = Instant::now();
        update(&mut client, &ids[0], n).await?;
        if !until_arrived(&live, before + 1, Duration::from_secs(10)).await {
            anyhow::bail!("the event of change {n} did not arrive within 10 s");
        }
        let at = live.lock().unwrap_or_else(|p| p.into_inner())[before].2;
        let _ = latency_us.record(
            u64::try_from((at - sent).as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cursor_before_burst = live
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last()
        .map(|(_, cursor, _)| cursor.clone())
        .unwrap_or_default();

    // A burst of changes from many callers while the watcher follows.
    let before = arrived(&live);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..concurrency.max(1) {
        let (mut client, next, id) = (
            client.clone(),
            Arc::clone(&next),
            ids[w % ids.len()].clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= burst {
                    return Ok::<_, Status>(());
                }
                update(&mut client, &id, latency_samples + n).await?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let produced = started.elapsed();
    if !until_arrived(&live, before + burst, Duration::from_secs(120)).await {
        anyhow::bail!(
            "the live watcher got {} of {burst} events",
            arrived(&live) - before
        );
    }
    let consumed = live.lock().unwrap_or_else(|p| p.into_inner())[before + burst - 1].2 - started;

    // New watchers replay the burst from the cursor before it, one after
    // another. A replay takes milliseconds, so one is at the mercy of
    // whatever else the machine does in them: the median of several is
    // reported.
    let mut replays = Vec::with_capacity(replays_wanted);
    let mut replay_first = Vec::with_capacity(replays_wanted);
    for _ in 0..replays_wanted {
        let replay_started = Instant::now();
        let replay = watch(&channel, &cursor_before_burst, Some(burst)).await?;
        if !until_arrived(&replay, burst, Duration::from_secs(120)).await {
            anyhow::bail!(
                "the replaying watcher got {} of {burst} events",
                arrived(&replay)
            );
        }
        let replay = replay.lock().unwrap_or_else(|p| p.into_inner());
        replay_first.push((replay[0].2 - replay_started).as_secs_f64() * 1000.0);
        replays.push(burst as f64 / (replay[burst - 1].2 - replay_started).as_secs_f64());
    }
    let median = |mut samples: Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };

    let ms = |q: f64| latency_us.value_at_quantile(q) as f64 / 1000.0;
    let value = serde_json::json!({
        "latency_ms": {"samples": latency_samples, "p50": ms(0.5), "p99": ms(0.99), "max": latency_us.max() as f64 / 1000.0},
        "burst": burst,
        "produced_per_s": burst as f64 / produced.as_secs_f64(),
        "live_per_s": burst as f64 / consumed.as_secs_f64(),
        "live_lag_ms": (consumed.saturating_sub(produced)).as_secs_f64() * 1000.0,
        "replay_per_s": median(replays.clone()),
        "replay_samples_per_s": replays,
        "replay_first_ms": median(replay_first),
    });
    if json {
        println!("{value}");
    } else {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

async fn mail_latency(
    addr: &str,
    smtp: &str,
    wait_for: Option<&str>,
    timeout: f64,
    json: bool,
) -> anyhow::Result<()> {
    let received = start_sink(smtp)?;
    if let Some(path) = wait_for {
        while !std::path::Path::new(path).exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let earlier = received.lock().map(|r| r.len()).unwrap_or(0);
    let channel = Endpoint::from_shared(addr.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let email = format!("ml-{}@loadgen.example", uuid::Uuid::new_v4().simple());
    let sent = Instant::now();
    AccountServiceClient::new(channel)
        .register(registration(email.clone()))
        .await
        .context("Register failed")?;
    let answered = Instant::now();
    let deadline = answered + Duration::from_secs_f64(timeout);
    let arrived = loop {
        let found = received.lock().ok().and_then(|r| {
            r.iter()
                .find(|a| a.recipients.iter().any(|to| to.contains(&email)))
                .map(|a| a.at)
        });
        if let Some(at) = found {
            break at;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the mail to {email} did not arrive within {timeout} s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    // Signed: a mail may reach the sink before the answer reaches the caller.
    let ms = |from: Instant| {
        if arrived >= from {
            arrived.duration_since(from).as_secs_f64() * 1000.0
        } else {
            -(from.duration_since(arrived).as_secs_f64() * 1000.0)
        }
    };
    let (after_answer, after_call) = (ms(answered), ms(sent));
    let register_ms = answered.duration_since(sent).as_secs_f64() * 1000.0;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "scenario": "mail-latency",
                "register_ms": register_ms,
                "latency_ms": after_answer,
                "latency_from_call_ms": after_call,
                "earlier_messages": earlier,
            })
        );
    } else {
        println!(
            "mail-latency: Register answered in {register_ms:.2} ms; the mail arrived {after_answer:.2} ms after the answer ({after_call:.2} ms after the call); {earlier} other message(s) arrived before"
        );
    }
    Ok(())
}

async fn resend(channel: &Channel, email: String) -> Result<(), Status> {
    AccountServiceClient::new(channel.clone())
        .resend_confirmation(ResendConfirmationRequest { email })
        .await
        .map(|_| ())
}

async fn resend_timing(
    addr: &str,
    accounts: usize,
    secret_key: &str,
    json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(accounts > 0, "--accounts must be at least 1");
    let channel = Endpoint::from_shared(addr.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let address = |kind: &str, i: usize| format!("rt-{}-{kind}-{i}@loadgen.example", &run[..8]);
    let mut client = AccountServiceClient::new(channel.clone());
    let mut verified_ids = Vec::new();
    for i in 0..accounts {
        client
            .register(registration(address("unverified", i)))
            .await
            .context("cannot register an unverified account")?;
        let account = client
            .register(registration(address("verified", i)))
            .await
            .context("cannot register an account to verify")?
            .into_inner()
            .account
            .context("Register answered no account")?;
        verified_ids.push(uuid::Uuid::parse_str(&account.id)?);
    }
    for token in mint(&verified_ids, secret_key)? {
        client
            .confirm_registration(ConfirmRegistrationRequest::with_token(token))
            .await
            .context("cannot confirm an account")?;
    }
    let kinds = ["unknown", "verified", "unverified"];
    let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    // Interleaved in a shuffled order, so that drift over the run and the
    // delivery work a queued mail sets off land on every kind alike; a
    // pause after each call lets that work finish, as it would between one
    // prober's requests.
    let mut seed = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or([7; 8]),
    ) | 1;
    for i in 0..accounts {
        let mut order = [0usize, 1, 2];
        for j in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(j, (seed % (j as u64 + 1)) as usize);
        }
        for k in order {
            let kind = kinds[k];
            let t0 = Instant::now();
            resend(&channel, address(kind, i))
                .await
                .with_context(|| format!("ResendConfirmation failed for a {kind} address"))?;
            latencies[k].push(t0.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let medians: Vec<f64> = latencies
        .iter_mut()
        .map(|l| {
            l.sort();
            l[l.len() / 2].as_secs_f64() * 1000.0
        })
        .collect();
    let (lo, hi) = medians
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    let spread = (hi / lo - 1.0) * 100.0;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "accounts": accounts,
                "median_ms": { "unknown": medians[0], "verified": medians[1], "unverified": medians[2] },
                "spread_percent": spread,
            })
        );
    } else {
        println!(
            "ResendConfirmation median ms over {accounts} addresses each: unknown {:.3}  verified {:.3}  unverified {:.3}  (largest/smallest: +{spread:.1}%)",
            medians[0], medians[1], medians[2]
        );
    }
    Ok(())
}

/// Resident memory of a process on this machine, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

async fn resend_flood(
    addr: &str,
    pid: u32,
    (invalid, invalid_kib): (u64, usize),
    valid: u64,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<()> {
    let load = |requests| Load {
        addr: addr.to_owned(),
        connections: 4,
        concurrency,
        rate: None,
        duration: 3600.0,
        requests: Some(requests),
        json,
        lean: false,
        fail_on_error: true,
    };
    let before = rss_kib(pid)?;
    let huge = Arc::new(format!("{}@", "x".repeat(invalid_kib * 1024)));
    let load_invalid = load(invalid);
    let invalid_report = drive("resend_invalid_huge", &load_invalid, move |i, channel| {
        let email = format!("{huge}{i}");
        async move { resend(&channel, email).await }
    })
    .await?;
    let middle = rss_kib(pid)?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let load_valid = load(valid);
    let valid_report = drive("resend_valid_distinct", &load_valid, move |i, channel| {
        let email = format!("flood-{}-{i}@loadgen.example", &run[..8]);
        async move { resend(&channel, email).await }
    })
    .await?;
    let after = rss_kib(pid)?;
    let grown = after.saturating_sub(before) as f64 / 1024.0;
    for report in [&invalid_report, &valid_report] {
        anyhow::ensure!(
            report.errors() == 0,
            "{}: {} request(s) failed with a server or transport error",
            report.scenario,
            report.errors()
        );
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "rss_before_kib": before,
                "rss_after_invalid_kib": middle,
                "rss_after_kib": after,
                "grown_mib": grown,
                "invalid": { "requests": invalid_report.total(), "codes": invalid_report.codes, "seconds": invalid_report.elapsed.as_secs_f64() },
                "valid": { "requests": valid_report.total(), "codes": valid_report.codes, "seconds": valid_report.elapsed.as_secs_f64() },
            })
        );
    } else {
        invalid_report.print(false);
        valid_report.print(false);
        println!(
            "resident memory: {before} KiB before, {middle} KiB after the invalid flood, {after} KiB after the valid flood (+{grown:.1} MiB)"
        );
    }
    Ok(())
}
