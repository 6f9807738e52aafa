//! Hostile input and bad days, second round: NUL characters, case mappings
//! that change length, database errors that mean "try again", overload on
//! the sidecar, cheap metrics scrapes, forwarded-for chains, cancelled calls,
//! and what the command line says and refuses.

use std::time::Duration;

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    get_account_request, ConfirmRegistrationRequest, GetAccountRequest, RegisterRequest,
    ResendConfirmationRequest,
};
use sqlx::Connection;
use tonic::metadata::MetadataValue;
use tonic::{Code, Request};

use crate::helpers::*;
use crate::on_both_backends;

const NUL: &str = "Null characters are not allowed.";

on_both_backends!(
    nul_is_refused_on_every_field_of_every_rpc,
    lookups_validate_the_address,
    addresses_whose_case_mapping_changes_length,
    a_busy_sidecar_refuses_links_without_touching_the_database,
);

fn with_nul(field: &str) -> RegisterRequest {
    let mut r = registration(&unique_email());
    let slot = match field {
        "email" => &mut r.email,
        "username" => &mut r.username,
        "password" => &mut r.password,
        "confirm_password" => &mut r.confirm_password,
        "address" => &mut r.address,
        "first_name" => &mut r.first_name,
        "last_name" => &mut r.last_name,
        "phone_number" => &mut r.phone_number,
        "created_from" => &mut r.created_from,
        "locale" => &mut r.locale,
        other => panic!("no field {other}"),
    };
    slot.push_str("x\0y");
    r
}

async fn nul_is_refused_on_every_field_of_every_rpc(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut client = app.client.clone();
    for field in [
        "email",
        "username",
        "password",
        "confirm_password",
        "address",
        "first_name",
        "last_name",
        "phone_number",
        "created_from",
        "locale",
    ] {
        let status = app.register(with_nul(field)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert_eq!(
            violations(&status),
            vec![(field.to_owned(), NUL.to_owned())],
            "{field}"
        );
    }
    let status = client
        .confirm_registration(ConfirmRegistrationRequest::with_token("abc\0def"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status), vec![("token".into(), NUL.into())]);
    let status = client
        .resend_confirmation(ResendConfirmationRequest {
            email: "a\0@example.com".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violations(&status), vec![("email".into(), NUL.into())]);
    for (lookup, field) in [
        (
            get_account_request::Lookup::Email("a\0@example.com".into()),
            "email",
        ),
        (
            get_account_request::Lookup::Id("0190a0a0-0000-7000-8000-00000000000\0".into()),
            "id",
        ),
    ] {
        let status = app.get(lookup).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violations(&status), vec![(field.into(), NUL.into())]);
    }
    // A NUL in the link's token is an invalid link, not an error page.
    let url = app.http_url("/account/confirm-registration/?token=a%00b");
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    assert_eq!(response.headers()["location"], REQUEST_PAGE);
    // Nothing was stored.
    assert_eq!(app.db.count("accounts").await, 0);
    assert_eq!(app.db.count("resend_cooldowns").await, 0);
}

async fn lookups_validate_the_address(backend: Backend) {
    let app = spawn_app(backend).await;
    for (raw, message) in [
        ("not-an-address", "Enter a valid email address."),
        ("   ", "This field is required."),
    ] {
        let status = app.get_by_email(raw).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{raw:?}: {status:?}");
        assert_eq!(violations(&status), vec![("email".into(), message.into())]);
    }
    let long = format!("{}@example.com", "a".repeat(60 * 1024));
    let status = app.get_by_email(&long).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

async fn addresses_whose_case_mapping_changes_length(backend: Backend) {
    let app = spawn_app(backend).await;
    // `İ` lower-cases to `i` and a combining dot: refused, not stored in a
    // form that lookups could not match.
    let status = app
        .register(registration("İnci@example.com"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![("email".into(), "Enter a valid email address.".into())]
    );
    // Non-ASCII letters whose case mapping is simple: stored lower-cased and
    // matched by every path, in any case.
    let account = app
        .register(registration("ÆSIR.ΣΟΦΊΑ@Example.com"))
        .await
        .unwrap();
    assert_eq!(account.email, "æsir.σοφία@example.com");
    for form in ["ÆSIR.ΣΟΦΊΑ@EXAMPLE.COM", "æsir.σοφία@example.com"] {
        assert_eq!(app.get_by_email(form).await.unwrap().id, account.id);
    }
    let again = app
        .register(registration("æsir.ΣΟΦΊΑ@example.com"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists);
    app.client
        .clone()
        .resend_confirmation(ResendConfirmationRequest {
            email: "ÆSIR.σοφία@example.com".into(),
        })
        .await
        .unwrap();
    let mails = app.wait_for_mails(2).await;
    assert!(mails.iter().all(|m| m.to == account.email), "{mails:?}");
}

async fn a_busy_sidecar_refuses_links_without_touching_the_database(backend: Backend) {
    let app = spawn_app(backend).set("MAX_CONCURRENT_REQUESTS", "1").await;
    let (held, held_link) = app.register_and_get_link(&unique_email()).await;
    let (other, other_link) = app.register_and_get_link(&unique_email()).await;

    // Hold a write lock on the first account, so that its confirmation
    // stays in flight (and holds the only admission slot).
    let lock = LockedAccount::take(&app.db, &held.id).await;
    let in_flight = {
        let (http, link) = (app.http.clone(), held_link.clone());
        tokio::spawn(async move { http.get(link).send().await.map(|r| r.status()) })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!in_flight.is_finished(), "the first link was not held");

    let started = std::time::Instant::now();
    let busy = app.http.get(&other_link).send().await.unwrap();
    assert_eq!(busy.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused at once"
    );

    lock.release().await;
    assert_eq!(
        in_flight.await.unwrap().unwrap(),
        reqwest::StatusCode::FOUND
    );
    // The refused link changed nothing; it works once the service is free.
    assert!(!app.get_by_id(&other.id).await.unwrap().verified);
    let again = app.http.get(&other_link).send().await.unwrap();
    assert_eq!(again.status(), reqwest::StatusCode::FOUND);
    assert!(app.get_by_id(&other.id).await.unwrap().verified);
}

/// A transaction holding a write lock on one account row (PostgreSQL) or on
/// the whole database (SQLite), until released.
enum LockedAccount {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl LockedAccount {
    async fn take(db: &TestDatabase, id: &str) -> LockedAccount {
        if db.is_sqlite() {
            let mut c = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .await
                .unwrap();
            LockedAccount::Sqlite(c)
        } else {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query("BEGIN").execute(&mut c).await.unwrap();
            sqlx::query("SELECT id FROM accounts WHERE id = $1::uuid FOR UPDATE")
                .bind(id)
                .execute(&mut c)
                .await
                .unwrap();
            LockedAccount::Postgres(c)
        }
    }

    async fn release(self) {
        match self {
            LockedAccount::Sqlite(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
            LockedAccount::Postgres(mut c) => {
                sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
            }
        }
    }
}

/// Transactions committed in one PostgreSQL database so far.
async fn commits(admin_url: &str, db_url: &str) -> i64 {
    let name = url::Url::parse(db_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut c = sqlx::PgConnection::connect(admin_url).await.unwrap();
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut c)
        .await
        .unwrap()
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraping_metrics_costs_no_database_work() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!()
    };
    let app = spawn_app(backend.clone())
        .set("METRICS_REFRESH", "10")
        .await;
    app.register(registration(&unique_email())).await.unwrap();
    app.wait_for_mails(1).await;
    // The mail worker, the metrics refresh and housekeeping keep committing
    // in the background at a pace that depends on the machine's load, so the
    // scrapes' window is compared with a quiet window of the same length
    // right after it. 200 scrapes that each queried the database would put
    // 200 more transactions in the first.
    // The statistics collector reports with a delay of up to a second.
    let settle = Duration::from_millis(1500);
    tokio::time::sleep(settle).await;
    let before = commits(admin_url, &app.db.url).await;
    let started = std::time::Instant::now();
    for _ in 0..200 {
        let r = app.http.get(app.http_url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
    }
    tokio::time::sleep(settle).await;
    let scraping = commits(admin_url, &app.db.url).await - before;
    let window = started.elapsed();
    let quiet_start = commits(admin_url, &app.db.url).await;
    tokio::time::sleep(window).await;
    let quiet = commits(admin_url, &app.db.url).await - quiet_start;
    assert!(
        scraping <= quiet + 30,
        "{scraping} transactions while 200 scrapes ran, {quiet} in as long without ({window:?})"
    );
    let text = app
        .http
        .get(app.http_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("account_outbox_messages"), "{text}");
}

#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_database_session_is_unavailable_not_internal() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let Backend::Postgres { admin_url } = &backend else {
        unreachable!()
    };
    let app = spawn_app(backend.clone()).await;
    let (account, link) = app.register_and_get_link(&unique_email()).await;
    let token = token_of(&link);
    let lock = LockedAccount::take(&app.db, &account.id).await;
    let confirm = {
        let mut client = app.client.clone();
        let token = token.clone();
        tokio::spawn(async move {
            client
                .confirm_registration(ConfirmRegistrationRequest::with_token(token))
                .await
        })
    };
    // The service's session waits on the lock; an operator terminates it
    // (SQLSTATE 57P01, as at a server shutdown).
    let name = url::Url::parse(&app.db.url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut admin = sqlx::PgConnection::connect(admin_url).await.unwrap();
    let mut terminated = None;
    for _ in 0..100 {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND wait_event_type = 'Lock'",
        )
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if n > 0 {
            terminated = Some(n);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        terminated.is_some(),
        "the confirmation never waited on the lock"
    );
    let status = confirm.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    lock.release().await;
    // The service recovers by itself.
    let ok = eventually(Duration::from_secs(10), || async {
        app.client
            .clone()
            .confirm_registration(ConfirmRegistrationRequest::with_token(token.clone()))
            .await
            .ok()
    })
    .await;
    assert!(ok.is_some());
}

#[tokio::test]
async fn the_rightmost_untrusted_forwarded_hop_is_the_client() {
    let app = spawn_app(Backend::Sqlite)
        .set("RATE_LIMITS", "on")
        .set("RATE_LIMIT_PER_CLIENT", "1")
        .set("RATE_LIMIT_PER_EMAIL", "0")
        .set("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.2")
        .await;
    let mut client = app.client.clone();
    let call = |hops: &'static [&'static str]| {
        let mut request = Request::new(ResendConfirmationRequest {
            email: unique_email(),
        });
        for hop in hops {
            request
                .metadata_mut()
                .append("x-forwarded-for", MetadataValue::from_static(hop));
        }
        let mut client = client.clone();
        async move { client.resend_confirmation(request).await.map(|_| ()) }
    };
    call(&["198.51.100.1, 203.0.113.7"]).await.unwrap();
    // A different leftmost hop (written by the client) is the same client.
    let status = call(&["192.0.2.99, 203.0.113.7:4711, 10.0.0.2"])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // IPv6 clients are limited per /64.
    call(&["[2001:db8:1:2::1]:443"]).await.unwrap();
    let status = call(&["2001:db8:1:2:aaaa::5"]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    call(&["2001:db8:1:3::1"]).await.unwrap();
    client
        .resend_confirmation(ResendConfirmationRequest {
            email: unique_email(),
        })
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_and_timed_out_calls_are_counted() {
    let app = spawn_app(Backend::Sqlite)
        .set("HASH_CONCURRENCY", "1")
        .await;
    // Keep the single hashing thread busy, so that the next calls wait.
    let busy: Vec<_> = (0..8)
        .map(|_| {
            let mut client = app.client.clone();
            tokio::spawn(async move { client.register(registration(&unique_email())).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;

    let mut timed = Request::new(registration(&unique_email()));
    timed.set_timeout(Duration::from_millis(30));
    let status = app.client.clone().register(timed).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    let cancelled = {
        let mut client = app.client.clone();
        tokio::spawn(async move { client.register(registration(&unique_email())).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    cancelled.abort();
    for call in busy {
        let _ = call.await;
    }

    let text = eventually(Duration::from_secs(10), || async {
        let text = app
            .http
            .get(app.http_url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let deadline = "account_rpc_requests_total{method=\"Register\",caller=\"anonymous\",code=\"DeadlineExceeded\"}";
        let cancelled = "account_rpc_requests_total{method=\"Register\",caller=\"anonymous\",code=\"Cancelled\"}";
        (metric_sample(&text, deadline) >= 1.0 && metric_sample(&text, cancelled) >= 1.0).then_some(text)
    })
    .await;
    assert!(
        text.is_some(),
        "cancelled or timed-out calls were not counted"
    );
}

#[test]
fn check_config_redacts_every_credential() {
    let output = service_binary!()
        .args(["check-config"])
        .env(
            "DATABASE_URL",
            "postgres://app:hunter2@db.internal/accounts?sslmode=require&password=pw-in-query&sslpassword=ssl-secret",
        )
        .env("EMAIL_BACKEND", "smtp")
        .env(
            "SMTP_URL",
            "smtp://mailer:smtp-hunter3@relay.internal:587?tls=required&token=smtp-token",
        )
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let shown = String::from_utf8(output.stdout).unwrap();
    assert!(
        shown.contains("sslmode=require") && shown.contains("relay.internal"),
        "{shown}"
    );
    for secret in [
        "hunter2",
        "pw-in-query",
        "ssl-secret",
        "smtp-hunter3",
        "smtp-token",
        "mailer",
    ] {
        assert!(
            !shown.contains(secret),
            "check-config printed {secret}: {shown}"
        );
    }
}

#[test]
fn a_malformed_env_file_is_named_by_line_without_its_content() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "RUST_LOG=info\nSECRET_KEY=fine\nthis line holds hunter2 and no equals sign\n",
    )
    .unwrap();
    let output = service_binary!()
        .current_dir(dir.path())
        .args(["check-config"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(".env") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[test]
fn absurd_settings_are_one_line_errors_never_panics() {
    let cases: &[(&str, &str)] = &[
        ("CONFIRMATION_LINK_TIMEOUT", "59"),
        ("CONFIRMATION_LINK_TIMEOUT", "0"),
        ("CONFIRMATION_LINK_TIMEOUT", "-1"),
        ("CONFIRMATION_LINK_TIMEOUT", "99999999999999999999999"),
        ("EMAIL_RETRY_DELAY", "1e300"),
        ("EMAIL_RETRY_DELAY", "604801"),
        ("EMAIL_RETRY_DELAY", "NaN"),
        ("EMAIL_CLAIM_LEASE", "inf"),
        ("EMAIL_RESEND_COOLDOWN", "-5"),
        ("EMAIL_SENT_RETENTION", "18446744073709551615"),
        ("EMAIL_MAX_RETRIES", "4000000000"),
        ("SMTP_TIMEOUT", "0"),
        ("SHUTDOWN_GRACE", "5"),
        ("SHUTDOWN_GRACE", "99999999"),
        ("GRPC_MAX_CONNECTION_AGE", "1e20"),
        ("REQUEST_HEAD_TIMEOUT", "0"),
        ("DATABASE_ACQUIRE_TIMEOUT", "1e12"),
        ("METRICS_REFRESH", "0"),
        ("MAX_CONCURRENT_REQUESTS", "18446744073709551615"),
        ("HASH_QUEUE", "18446744073709551615"),
        ("HASH_CONCURRENCY", "100000"),
        ("DATABASE_MAX_CONNECTIONS", "0"),
        ("RATE_LIMIT_MAX_KEYS", "0"),
        ("RATE_LIMIT_PER_CLIENT", "-1"),
        ("MIGRATE_ON_START", "sometimes"),
    ];
    for (variable, value) in cases {
        let output = service_binary!()
            .args(["check-config"])
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{variable}={value}: {stderr}"
        );
    }
}

#[test]
fn the_previous_key_obeys_the_production_policy() {
    let key = "k".repeat(32);
    for previous in ["short", account_service::config::DEVELOPMENT_SECRET_KEY] {
        let output = service_binary!()
            .args(["check-config"])
            .env("APP_ENV", "production")
            .env("SECRET_KEY", &key)
            .env("SECRET_KEY_PREVIOUS", previous)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("SECRET_KEY_PREVIOUS"), "{stderr}");
        assert!(!stderr.contains(previous), "{stderr}");
    }
}

#[tokio::test]
async fn operators_commands_never_migrate() {
    let db = TestDatabase::create(&Backend::Sqlite).await;
    for args in [
        &["outbox", "status"][..],
        &["outbox", "failed"],
        &["outbox", "retry", "--all"],
    ] {
        let output = service_binary!()
            .env("DATABASE_URL", &db.url)
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("account-service migrate"), "{stderr}");
    }
    // Still no schema: nothing was migrated behind the operator's back.
    let tables = db
        .scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'accounts'")
        .await;
    assert_eq!(tables, 0);
    let migrated = service_binary!()
        .env("DATABASE_URL", &db.url)
        .arg("migrate")
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let retry = service_binary!()
        .env("DATABASE_URL", &db.url)
        .args(["outbox", "retry", "0190a0a0-0000-7000-8000-000000000000"])
        .output()
        .unwrap();
    assert!(!retry.status.success());
    let stdout = String::from_utf8(retry.stdout).unwrap();
    assert!(!stdout.contains("requeued"), "{stdout}");
    let stderr = String::from_utf8(retry.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    // With migrations taken out of `serve`, an unmigrated database stops it.
    let fresh = TestDatabase::create(&Backend::Sqlite).await;
    let output = service_binary!()
        .env("DATABASE_URL", &fresh.url)
        .env("MIGRATE_ON_START", "false")
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("account-service migrate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_resource_exhausted() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut client =
        AccountServiceClient::new(app.channel.clone()).max_encoding_message_size(usize::MAX);
    let status = client
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Email("a".repeat(70 * 1024))),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(!status.message().is_empty());
}
