//! CheckPassword: the sign-in check, its lockout across instances, and hash
//! upgrades (other argon2 parameters, the Django app's hashes).

use std::time::Duration;

use account_service::proto::account::v1::{CheckPasswordRequest, CheckPasswordResponse};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::helpers::*;
use crate::on_both_backends;

const PASSWORD: &str = "secret123";

async fn check(
    app: &TestApp,
    email: &str,
    password: &str,
) -> Result<CheckPasswordResponse, Status> {
    app.client
        .clone()
        .check_password(CheckPasswordRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .map(|r| r.into_inner())
}

fn assert_invalid_credentials(result: Result<CheckPasswordResponse, Status>) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.message(),
        "Unable to log in with provided credentials."
    );
    assert_eq!(error_reason(&status), "INVALID_CREDENTIALS");
}

fn retry_delay(status: &Status) -> Duration {
    status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo")
}

async fn verified_account(app: &TestApp) -> String {
    let email = unique_email();
    app.register(registration(&email)).await.unwrap();
    app.db
        .execute(&format!(
            "UPDATE accounts SET verified = TRUE WHERE email = '{email}'"
        ))
        .await;
    email
}

on_both_backends!(
    the_right_password_answers_the_account,
    wrong_passwords_and_unknown_addresses_answer_alike,
    failures_lock_an_address_out_and_a_success_resets_it,
    django_and_weaker_hashes_are_upgraded_on_sign_in,
    a_locked_out_flood_costs_no_hashing,
);

async fn a_locked_out_flood_costs_no_hashing(backend: Backend) {
    let app = spawn_app(backend)
        .set("LOGIN_MAX_FAILURES", "2")
        .set("LOGIN_LOCKOUT", "600")
        .await;
    let email = verified_account(&app).await;
    let before = password_hashes_so_far(app.http_addr).await;
    for _ in 0..2 {
        assert_invalid_credentials(check(&app, &email, "wrong-pass1").await);
    }
    let locked = password_hashes_so_far(app.http_addr).await;
    assert_eq!(
        locked - before,
        2.0,
        "each failure before the lockout is one check"
    );
    for _ in 0..10 {
        let attempts = (0..20).map(|_| check(&app, &email, PASSWORD));
        for answer in futures::future::join_all(attempts).await {
            assert_eq!(answer.unwrap_err().code(), Code::ResourceExhausted);
        }
    }
    assert_eq!(
        password_hashes_so_far(app.http_addr).await,
        locked,
        "200 locked-out attempts hashed nothing"
    );
}

async fn the_right_password_answers_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = verified_account(&app).await;
    let account = check(&app, &email.to_uppercase(), PASSWORD)
        .await
        .unwrap()
        .account
        .unwrap();
    assert_eq!(account.email, email);
    assert!(account.verified);

    // Unverified: told apart only once the password matched.
    let unverified = unique_email();
    app.register(registration(&unverified)).await.unwrap();
    let status = check(&app, &unverified, PASSWORD).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(error_reason(&status), "EMAIL_NOT_VERIFIED");
    assert_invalid_credentials(check(&app, &unverified, "wrong-pass1").await);

    // Bad input: every violation at once, nothing counted.
    let status = check(&app, "not an address", "").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> = violations(&status).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["email", "password"]);
    let status = check(&app, &email, "secret\u{0}123").await.unwrap_err();
    assert_eq!(
        violations(&status),
        [(
            "password".to_owned(),
            "Null characters are not allowed.".to_owned()
        )]
    );
    assert_eq!(
        app.db.count("login_failures").await,
        1,
        "only the wrong password counted"
    );
}

async fn wrong_passwords_and_unknown_addresses_answer_alike(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = verified_account(&app).await;
    assert_invalid_credentials(check(&app, &email, "Secret123").await);
    assert_invalid_credentials(check(&app, &unique_email(), PASSWORD).await);
    // A long password and odd characters are compared, not refused.
    let long = "ä".repeat(30_000);
    assert_invalid_credentials(check(&app, &email, &long).await);
    // Failures are counted for unknown addresses too.
    assert_eq!(app.db.count("login_failures").await, 2);
}

async fn failures_lock_an_address_out_and_a_success_resets_it(backend: Backend) {
    let app = spawn_app(backend)
        .set("LOGIN_MAX_FAILURES", "3")
        .set("LOGIN_LOCKOUT", "2")
        .await;
    let email = verified_account(&app).await;
    let unknown = unique_email();
    let mut answers = Vec::new();
    for address in [&email, &unknown] {
        for _ in 0..3 {
            assert_invalid_credentials(check(&app, address, "wrong-pass1").await);
        }
        // Locked: even the right password is refused, without a hash.
        let status = check(&app, address, PASSWORD).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(error_reason(&status), "LOGIN_LOCKED");
        let wait = retry_delay(&status);
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        answers.push(status.message().replace(char::is_numeric, "N"));
    }
    // Known and unknown addresses are locked out alike.
    assert_eq!(answers[0], answers[1]);

    // The lockout ends; a further one lasts twice as long.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..3 {
        assert_invalid_credentials(check(&app, &email, "wrong-pass1").await);
    }
    let status = check(&app, &email, PASSWORD).await.unwrap_err();
    let wait = retry_delay(&status);
    assert!(
        wait > Duration::from_secs(2) && wait <= Duration::from_secs(4),
        "{wait:?}"
    );

    // After it, the right password works and resets everything.
    tokio::time::sleep(Duration::from_millis(4100)).await;
    check(&app, &email, PASSWORD).await.unwrap();
    assert_eq!(
        app.db
            .scalar(&format!(
                "SELECT COUNT(*) FROM login_failures WHERE email = '{email}'"
            ))
            .await,
        0
    );
    for _ in 0..3 {
        assert_invalid_credentials(check(&app, &email, "wrong-pass1").await);
    }
    let status = check(&app, &email, PASSWORD).await.unwrap_err();
    assert!(
        retry_delay(&status) <= Duration::from_secs(2),
        "back to the first lockout"
    );
}

async fn django_and_weaker_hashes_are_upgraded_on_sign_in(backend: Backend) {
    use argon2::password_hash::{PasswordHasher as _, SaltString};

    let app = spawn_app(backend).await;
    let weak = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(1024, 1, 1, None).unwrap(),
    )
    .hash_password(
        b"weak-pass1",
        &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap(),
    )
    .unwrap()
    .to_string();
    // Django's argon2 format is `argon2` + the PHC string.
    let cases = [
        (
            "django-pass1",
            django_pbkdf2("django-pass1", "QmFzZXNhbHQ", 1000),
        ),
        ("weak-pass1", format!("argon2{weak}")),
        ("weak-pass1", weak),
    ];
    for (password, stored) in cases {
        let email = verified_account(&app).await;
        app.db
            .execute(&format!(
                "UPDATE accounts SET password_hash = '{stored}' WHERE email = '{email}'"
            ))
            .await;
        assert_invalid_credentials(check(&app, &email, "not-it-123").await);
        assert_eq!(
            app.db.password_hash(&email).await,
            stored,
            "no upgrade on a failure"
        );
        let account = check(&app, &email, password)
            .await
            .unwrap()
            .account
            .unwrap();
        assert_eq!(account.email, email);
        let upgraded = app.db.password_hash(&email).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored} became {upgraded}"
        );
        // The new hash checks, and is kept as it is.
        check(&app, &email, password).await.unwrap();
        assert_eq!(app.db.password_hash(&email).await, upgraded);
    }
}

/// Two instances on one PostgreSQL count failures together.
#[cfg_attr(not(postgres_tests), ignore = "PostgreSQL only: set TEST_DATABASE_URL")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lockout_holds_across_instances() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let db = TestDatabase::create(&backend).await;
    let settings = [("LOGIN_MAX_FAILURES", "4"), ("LOGIN_LOCKOUT", "60")];
    let a = spawn_app(db.shared()).set_all(settings).await;
    let b = spawn_app(db.shared()).set_all(settings).await;
    let email = verified_account(&a).await;
    for i in 0..4 {
        let app = if i % 2 == 0 { &a } else { &b };
        assert_invalid_credentials(check(app, &email, "wrong-pass1").await);
    }
    for app in [&a, &b] {
        let status = check(app, &email, PASSWORD).await.unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(retry_delay(&status) > Duration::from_secs(50));
    }
}
