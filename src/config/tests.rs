use clap::Parser;

use super::*;
use crate::cli::Cli;

/// The settings of a command line, as the binary would check them.
pub(super) fn parse(args: &[&str]) -> Result<Settings, ConfigError> {
    let mut all = vec!["account-service"];
    all.extend_from_slice(args);
    match Cli::try_parse_from(all) {
        Ok(cli) => cli.settings.check(),
        Err(e) => {
            Err(ConfigError::from_clap(&e).unwrap_or_else(|| panic!("not a setting error: {e}")))
        }
    }
}

#[test]
fn bad_values_name_their_variable() {
    let cases: [(&[&str], &str); 10] = [
        (&["--email-backend", "smtp"], "SMTP_URL"),
        (
            &[
                "--email-backend",
                "smtp",
                "--smtp-url",
                "http://u:hunter2@h",
            ],
            "SMTP_URL",
        ),
        (&["--smtp-timeout", "soon"], "SMTP_TIMEOUT"),
        (&["--email-claim-lease", "5"], "EMAIL_CLAIM_LEASE"),
        (&["--email-backend", "pigeon"], "EMAIL_BACKEND"),
        (&["--email-from", "not an address"], "EMAIL_FROM"),
        (&["--public-base-url", "localhost"], "PUBLIC_BASE_URL"),
        (&["--grpc-addr", "nowhere"], "GRPC_ADDR"),
        (
            &["--confirmation-link-timeout=-5"],
            "CONFIRMATION_LINK_TIMEOUT",
        ),
        (
            &["--database-url", "mysql://u:hunter2@h/db"],
            "DATABASE_URL",
        ),
    ];
    for (args, variable) in cases {
        let err = parse(args).unwrap_err();
        assert_eq!(err.variable, variable);
        assert!(!err.to_string().contains('\n'));
        assert!(!err.to_string().contains("hunter2"));
    }
}

#[test]
fn production_demands_a_real_secret_key() {
    let err = parse(&["--app-env", "production"]).unwrap_err();
    assert_eq!(err.variable, "SECRET_KEY");
    let err = parse(&["--app-env", "production", "--secret-key", "short"]).unwrap_err();
    assert_eq!(err.variable, "SECRET_KEY");
    let err = parse(&[
        "--app-env",
        "production",
        "--secret-key",
        DEVELOPMENT_SECRET_KEY,
    ])
    .unwrap_err();
    assert_eq!(err.variable, "SECRET_KEY");
    let key = "k".repeat(32);
    let prod = ["--app-env", "production", "--secret-key", &key];
    let ok = parse(&[&prod[..], &["--api-keys-file", "callers.toml"]].concat()).unwrap();
    assert!(ok.security.production() && !ok.security.using_development_key());
    // Development starts without a key, on the development key.
    assert!(parse(&[]).unwrap().security.using_development_key());
    // Aliases and case are accepted.
    assert!(parse(&[
        "--app-env",
        "PROD",
        "--secret-key",
        &key,
        "--api-keys-file",
        "callers.toml"
    ])
    .unwrap()
    .security
    .production());
}

#[test]
fn production_demands_authenticated_callers() {
    let key = "k".repeat(32);
    let prod = ["--app-env", "production", "--secret-key", &key];
    let err = parse(&prod).unwrap_err();
    assert_eq!(err.variable, "API_KEYS_FILE");
    assert!(err.message.contains("GRPC_TLS_CLIENT_CA"), "{err}");
    // An empty value is no file.
    let err = parse(&[&prod[..], &["--api-keys-file", ""]].concat()).unwrap_err();
    assert_eq!(err.variable, "API_KEYS_FILE");
    // Client certificates authenticate callers too.
    let tls = [
        "--grpc-tls-cert",
        "c.pem",
        "--grpc-tls-key",
        "k.pem",
        "--grpc-tls-client-ca",
        "ca.pem",
    ];
    assert!(parse(&[&prod[..], &tls[..]].concat()).is_ok());
    // Development: open, with a warning at start-up.
    assert!(parse(&[]).is_ok());
}

#[test]
fn tls_files_come_in_pairs() {
    let cases: [(&[&str], &str); 3] = [
        (&["--grpc-tls-cert", "c.pem"], "GRPC_TLS_KEY"),
        (&["--grpc-tls-key", "k.pem"], "GRPC_TLS_CERT"),
        (&["--grpc-tls-client-ca", "ca.pem"], "GRPC_TLS_CLIENT_CA"),
    ];
    for (args, variable) in cases {
        assert_eq!(parse(args).unwrap_err().variable, variable, "{args:?}");
    }
    let both = parse(&["--grpc-tls-cert", "c.pem", "--grpc-tls-key", "k.pem"]).unwrap();
    let files = both.access.tls().unwrap();
    assert!(files.client_ca.is_none());
    assert!(parse(&[]).unwrap().access.tls().is_none());
}

#[test]
fn the_rate_limit_store_follows_the_database_unless_set() {
    use super::{DatabaseKind, RateLimitStore};
    let sqlite = parse(&[]).unwrap();
    assert_eq!(
        sqlite
            .limits
            .rate_limit_store(sqlite.database.database_url.kind),
        RateLimitStore::Memory
    );
    let pg = parse(&["--database-url", "postgres://u@h/db"]).unwrap();
    assert_eq!(
        pg.limits.rate_limit_store(DatabaseKind::Postgres),
        RateLimitStore::Postgres
    );
    let memory = parse(&[
        "--database-url",
        "postgres://u@h/db",
        "--rate-limit-store",
        "memory",
    ]);
    assert_eq!(
        memory
            .unwrap()
            .limits
            .rate_limit_store(DatabaseKind::Postgres),
        RateLimitStore::Memory
    );
    let err = parse(&["--rate-limit-store", "postgres"]).unwrap_err();
    assert_eq!(err.variable, "RATE_LIMIT_STORE");
    let err = parse(&["--rate-limit-store", "redis"]).unwrap_err();
    assert_eq!(err.variable, "RATE_LIMIT_STORE");
}

#[test]
fn metrics_addr_must_be_a_port_of_its_own() {
    let err = parse(&["--metrics-addr", "0.0.0.0:8080"]).unwrap_err();
    assert_eq!(err.variable, "METRICS_ADDR");
    assert!(parse(&["--metrics-addr", "127.0.0.1:9090"]).is_ok());
}

#[test]
fn rate_limits_and_switches() {
    let s = parse(&[
        "--trusted-proxies",
        "10.0.0.1, ::1",
        "--rate-limit-per-client",
        "5",
    ])
    .unwrap();
    assert!(s.limits.rate_limits);
    assert_eq!(s.limits.rate_limit_per_client, 5);
    assert_eq!(s.limits.trusted_proxies.0.len(), 2);
    assert!(!parse(&["--rate-limits", "off"]).unwrap().limits.rate_limits);
    assert_eq!(
        parse(&["--rate-limits", "maybe"]).unwrap_err().variable,
        "RATE_LIMITS"
    );
    assert_eq!(
        parse(&["--trusted-proxies", "proxy.local"])
            .unwrap_err()
            .variable,
        "TRUSTED_PROXIES"
    );
    assert!(
        parse(&["--enumeration-protection", "on"])
            .unwrap()
            .security
            .enumeration_protection
    );
}

#[test]
fn numbers_and_durations_are_bounded() {
    for (args, variable) in [
        (
            ["--database-max-connections", "0"],
            "DATABASE_MAX_CONNECTIONS",
        ),
        (["--hash-queue", "18446744073709551616"], "HASH_QUEUE"),
        (["--email-retry-delay", "1e20"], "EMAIL_RETRY_DELAY"),
        (["--metrics-refresh", "0"], "METRICS_REFRESH"),
        (["--email-sent-retention", "3651"], "EMAIL_SENT_RETENTION"),
        (["--log-format", "xml"], "LOG_FORMAT"),
    ] {
        assert_eq!(parse(&args).unwrap_err().variable, variable);
    }
    let s = parse(&["--email-retry-delay", "0.25", "--email-sent-retention", "2"]).unwrap();
    assert_eq!(s.delivery.email_retry_delay, Duration::from_millis(250));
    assert_eq!(
        s.delivery.email_sent_retention,
        Duration::from_secs(2 * 86_400)
    );
}

#[test]
fn the_database_kind_is_decided_once() {
    let s = parse(&["--database-url", "postgresql://app:pw@db/accounts"]).unwrap();
    assert_eq!(s.database.database_url.kind, DatabaseKind::Postgres);
    assert_eq!(
        parse(&[]).unwrap().database.database_url.kind,
        DatabaseKind::Sqlite
    );
}

#[test]
fn debug_redacts_secrets() {
    let s = parse(&[
        "--secret-key",
        "super-secret-value",
        "--database-url",
        "postgres://app:hunter2@db/accounts",
        "--email-backend",
        "smtp",
        "--smtp-url",
        "smtp://mailer:hunter2@relay.example:587?tls=required",
    ])
    .unwrap();
    let shown = format!("{s:?}");
    assert!(!shown.contains("super-secret-value"));
    assert!(!shown.contains("hunter2"));
    assert!(shown.contains("relay.example") && shown.contains("db/accounts"));
    assert!(!s.security.using_development_key());
}

#[test]
fn event_retention_takes_days_or_a_unit_and_refuses_nonsense() {
    let days = |raw: &str| {
        let arg = format!("--account-event-retention={raw}");
        parse(&[&arg]).map(|s| s.events.account_event_retention)
    };
    assert_eq!(
        parse(&[]).unwrap().events.account_event_retention,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(days("2").unwrap(), Duration::from_secs(2 * 86_400));
    assert_eq!(days("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(days("12h").unwrap(), Duration::from_secs(12 * 3600));
    for bad in [
        "0",
        "1.5",
        "7w",
        "",
        "99999999999999999999",
        "3651d",
        "s",
        "-1",
        "-1d",
    ] {
        assert!(days(bad).is_err(), "{bad}");
    }
    assert!(parse(&["--account-event-keepalive", "0"]).is_err());
}

#[test]
fn streams_per_caller_are_at_least_one_and_at_most_the_instance_limit() {
    let per_caller = |raw: &str| {
        let arg = format!("--event-streams-per-caller={raw}");
        parse(&[&arg]).map(|s| s.events.event_streams_per_caller)
    };
    assert_eq!(parse(&[]).unwrap().events.event_streams_per_caller, 32);
    assert_eq!(per_caller("1").unwrap(), 1);
    let max = usize::try_from(MAX_STREAMS_PER_CALLER).unwrap();
    assert_eq!(per_caller(&max.to_string()).unwrap(), max);
    for bad in ["0", &(max + 1).to_string(), "-1", "many", ""] {
        let err = per_caller(bad).unwrap_err();
        assert_eq!(err.variable, "EVENT_STREAMS_PER_CALLER", "{bad}");
    }
    let err = per_caller("0").unwrap_err();
    assert!(
        err.message.contains(&format!("between 1 and {max}")),
        "{err}"
    );
}

#[test]
fn sign_in_lockouts_start_at_a_minute_and_double_up_to_an_hour() {
    let settings = parse(&[]).unwrap();
    let policy = settings.security.sign_in();
    assert_eq!(policy.max_failures, 5);
    let minutes = |n: i64| policy.lockout_after(n).as_secs() / 60;
    assert_eq!(
        [0, 1, 2, 5, 6, 40, i64::MAX, -3].map(minutes),
        [1, 2, 4, 32, 60, 60, 60, 1]
    );
}

#[test]
fn reset_pages_must_be_web_addresses() {
    for (flag, variable) in [
        ("--password-reset-page", "PASSWORD_RESET_PAGE"),
        (
            "--password-reset-request-page",
            "PASSWORD_RESET_REQUEST_PAGE",
        ),
    ] {
        for bad in ["shop.example/reset", "ftp://shop.example/reset", ""] {
            let err = parse(&[&format!("{flag}={bad}")]).unwrap_err().to_string();
            assert!(err.contains(variable), "{bad:?}: {err}");
        }
    }
}

#[test]
fn sessions_default_to_two_weeks_idle_and_ninety_days_at_most() {
    let s = parse(&[]).unwrap();
    assert_eq!(s.sessions.policy(), SessionPolicy::default());
    let policy = s.sessions.policy();
    assert_eq!(policy.idle_timeout, Duration::from_secs(1_209_600));
    assert_eq!(policy.max_lifetime, Duration::from_secs(7_776_000));
    assert_eq!(policy.reuse_interval, Duration::from_secs(10));
    assert_eq!(policy.per_account, 100);
    assert_eq!(s.sessions.access_token_ttl, Duration::from_secs(300));
    assert_eq!(s.sessions.access_token_audience, "ecoms");
    assert_eq!(s.access_token_issuer(), "http://localhost:8080");
    assert!(s.sessions.signing_key_file().is_none());
}

#[test]
fn session_settings_are_bounded() {
    let refused = [
        ("SESSION_IDLE_TIMEOUT", "0"),
        ("SESSION_IDLE_TIMEOUT", "31536001"),
        ("SESSION_IDLE_TIMEOUT", "1.5"),
        ("SESSION_MAX_LIFETIME", "0"),
        ("SESSION_MAX_LIFETIME", "31536001"),
        ("REFRESH_TOKEN_REUSE_INTERVAL", "61"),
        ("REFRESH_TOKEN_REUSE_INTERVAL", "-1"),
        ("SESSIONS_PER_ACCOUNT", "0"),
        ("SESSIONS_PER_ACCOUNT", "10001"),
        ("ACCESS_TOKEN_TTL", "59"),
        ("ACCESS_TOKEN_TTL", "3601"),
        ("ACCESS_TOKEN_AUDIENCE", ""),
        ("ACCESS_TOKEN_AUDIENCE", "  "),
    ];
    let flag = |variable: &str, value: &str| {
        format!("--{}={value}", variable.to_lowercase().replace('_', "-"))
    };
    for (variable, value) in refused {
        let err = parse(&[&flag(variable, value)]).unwrap_err();
        assert_eq!(err.variable, variable, "{value:?}");
    }
    let edges = [
        flag("SESSION_IDLE_TIMEOUT", "1"),
        flag("SESSION_MAX_LIFETIME", "31536000"),
        flag("REFRESH_TOKEN_REUSE_INTERVAL", "0"),
        flag("SESSIONS_PER_ACCOUNT", "10000"),
        flag("ACCESS_TOKEN_TTL", "60"),
    ];
    let s = parse(&edges.iter().map(String::as_str).collect::<Vec<_>>()).unwrap();
    let policy = s.sessions.policy();
    assert_eq!(policy.idle_timeout, Duration::from_secs(1));
    assert_eq!(policy.max_lifetime, Duration::from_secs(MAX_SESSION_SECS));
    assert_eq!(policy.reuse_interval, Duration::ZERO);
    assert_eq!(policy.per_account, 10_000);
    assert_eq!(s.sessions.access_token_ttl, Duration::from_secs(60));
}

#[test]
fn the_access_token_issuer_defaults_to_the_public_base_url() {
    let base = ["--public-base-url", "https://accounts.example.com"];
    assert_eq!(
        parse(&base).unwrap().access_token_issuer(),
        "https://accounts.example.com"
    );
    let empty = [&base[..], &["--access-token-issuer", " "]].concat();
    assert_eq!(
        parse(&empty).unwrap().access_token_issuer(),
        "https://accounts.example.com"
    );
    // A base URL with a path keeps it as written.
    let pathed = ["--public-base-url", "https://shop.example/accounts/"];
    assert_eq!(
        parse(&pathed).unwrap().access_token_issuer(),
        "https://shop.example/accounts/"
    );
    let named = [&base[..], &["--access-token-issuer", "https://id.example"]].concat();
    assert_eq!(
        parse(&named).unwrap().access_token_issuer(),
        "https://id.example"
    );
    let s = parse(&["--access-token-signing-key-file", "key.pem"]).unwrap();
    assert_eq!(
        s.sessions.signing_key_file(),
        Some(std::path::Path::new("key.pem"))
    );
}
