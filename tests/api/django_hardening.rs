//! Imported Django shoppers over the real binary and the real import
//! command: hashes past Django's costs, lines that are not UTF-8, passwords
//! with spaces around, and addresses past SMTP's limits.

use std::time::{Duration, Instant};

use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    confirm_registration_request::Proof, get_account_request, ChangeEmailRequest,
    ConfirmRegistrationRequest, EmailCode, RequestPasswordResetRequest, ResendConfirmationRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::access_binary::Service;
use crate::helpers::*;
use crate::import::{django_argon2, import};
use crate::on_both_backends;

on_both_backends!(
    django_hashes_past_djangos_costs_are_refused_and_never_computed,
    addresses_past_smtp_limits_are_refused_by_every_call,
);

const INVALID_EMAIL: &str = "Enter a valid email address.";

/// Two billion argon2 passes: hours of a hashing thread per check.
const STALLING_ARGON2: &str =
    "argon2$argon2id$v=19$m=8,t=2000000000,p=1$c3RhbGxzYWx0$c3RhbGxpbmdoYXNoc3RhbGxpbmdoYXNo";
/// More iterations than any Django install writes.
const ENDLESS_PBKDF2: &str =
    "pbkdf2_sha256$4000000000$endlesssalt$ZW5kbGVzc2hhc2hlbmRsZXNzaGFzaA==";

async fn check(
    client: &AccountServiceClient<Channel>,
    email: &str,
    password: &str,
) -> Result<(), Status> {
    crate::credentials_binary::check(&mut client.clone(), email, password).await
}

fn assert_invalid_credentials(result: Result<(), Status>) {
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason(&status).as_deref(), Some("INVALID_CREDENTIALS"));
}

async fn django_hashes_past_djangos_costs_are_refused_and_never_computed(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let service = Service::start(&[
        ("DATABASE_URL", db.url.clone()),
        ("HASH_CONCURRENCY", "2".into()),
    ])
    .await;
    let client = AccountServiceClient::new(service.plaintext().await);

    let (ann, bob, carl, dora) = (
        unique_email(),
        unique_email(),
        unique_email(),
        unique_email(),
    );
    let spaced = django_pbkdf2(" pass word1 ", "Sp4ced", 1000);
    let row = |email: &str, hash: &str| {
        serde_json::json!({"email": email, "password": hash, "verified": true})
            .to_string()
            .into_bytes()
    };
    let mut file = Vec::new();
    for line in [
        row(&ann, &spaced),
        row(&bob, STALLING_ARGON2),
        row(&carl, ENDLESS_PBKDF2),
        b"{\"email\": \"caf\xe9@example.com\", \"password\": \"x\"}".to_vec(),
        row(&dora, &django_argon2("bobs-pass-22")),
        row(&format!("{}@example.com", "e".repeat(65)), &spaced),
    ] {
        file.extend(line);
        file.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("accounts.jsonl");
    std::fs::write(&path, &file).unwrap();

    let (code, out, err) = import(&db.url, &path);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains("6 rows: 2 imported, 0 already present, 4 failed"),
        "{out}"
    );
    for number in [2, 3] {
        assert!(
            out.contains(&format!(
                "line {number}: skipped: password: the hash's cost is outside what Django produces"
            )),
            "{out}"
        );
    }
    assert!(
        out.contains("line 4: skipped: not UTF-8 text (invalid byte at position 15)"),
        "{out}"
    );
    assert!(
        out.contains(&format!("line 6: skipped: email: {INVALID_EMAIL}")),
        "{out}"
    );
    for secret in [STALLING_ARGON2, ENDLESS_PBKDF2, spaced.as_str()] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    assert_eq!(db.count("accounts").await, 2);

    // The password as the shopper typed it in the Django app, spaces and
    // all; upgraded, it is compared trimmed like every password here.
    check(&client, &ann, " pass word1 ").await.unwrap();
    assert!(db
        .password_hash(&ann)
        .await
        .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    check(&client, &ann, "pass word1").await.unwrap();
    check(&client, &ann, " pass word1 ").await.unwrap();

    // The same hashes written straight into the database: a wrong password,
    // in the time of one, and every hashing thread stays free.
    for (email, hash) in [(&bob, STALLING_ARGON2), (&carl, ENDLESS_PBKDF2)] {
        client.clone().register(registration(email)).await.unwrap();
        db.execute(&format!(
            "UPDATE accounts SET verified = TRUE, password_hash = '{hash}' WHERE email = '{email}'"
        ))
        .await;
    }
    let started = Instant::now();
    assert_invalid_credentials(check(&client, &dora, "not-the-pass1").await);
    let wrong_password = started.elapsed();
    let started = Instant::now();
    let checks = async {
        tokio::join!(
            check(&client, &bob, "secret123"),
            check(&client, &bob, "secret123"),
            check(&client, &carl, "secret123"),
        )
    };
    let (first, second, third) = tokio::time::timeout(Duration::from_secs(30), checks)
        .await
        .expect("the checks of costly hashes answer");
    let refused = started.elapsed();
    for result in [first, second, third] {
        assert_invalid_credentials(result);
    }
    assert!(
        refused < wrong_password + Duration::from_secs(1),
        "{refused:?} against {wrong_password:?} for a wrong password"
    );
    let started = Instant::now();
    check(&client, &dora, "bobs-pass-22").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));

    let log = service.log_text();
    assert!(
        log.contains("stored password hash asks for a cost outside the bounds"),
        "{log}"
    );
    for secret in [
        STALLING_ARGON2,
        ENDLESS_PBKDF2,
        "c3RhbGxzYWx0",
        "c3RhbGxpbmdoYXNoc3RhbGxpbmdoYXNo",
        "t=2000000000",
        "4000000000",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

async fn addresses_past_smtp_limits_are_refused_by_every_call(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let service = Service::start(&[("DATABASE_URL", db.url.clone())]).await;
    let client = AccountServiceClient::new(service.plaintext().await);
    let address = |local: usize| format!("{}@example.com", "a".repeat(local));
    let long = address(65);

    let status = client
        .clone()
        .register(registration(&long))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![("email".to_owned(), INVALID_EMAIL.to_owned())]
    );
    assert_eq!(db.count("accounts").await, 0);
    assert_eq!(db.count("email_outbox").await, 0);

    let at_limit = client
        .clone()
        .register(registration(&address(64)))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();

    let mut c = client.clone();
    let answers = [
        c.get_account(get_account_request_by(&long)).await.map(drop),
        check(&client, &long, "secret123").await,
        c.resend_confirmation(ResendConfirmationRequest {
            email: long.clone(),
        })
        .await
        .map(drop),
        c.request_password_reset(RequestPasswordResetRequest {
            email: long.clone(),
        })
        .await
        .map(drop),
        c.change_email(ChangeEmailRequest {
            id: at_limit.id.clone(),
            new_email: long.clone(),
            current_password: "secret123".into(),
            code: String::new(),
        })
        .await
        .map(drop),
        c.confirm_registration(ConfirmRegistrationRequest {
            proof: Some(Proof::EmailCode(EmailCode {
                email: long.clone(),
                code: "123456".into(),
            })),
        })
        .await
        .map(drop),
    ];
    for (call, answer) in answers.into_iter().enumerate() {
        let status = answer.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "call {call}: {status:?}"
        );
        let found = violations(&status);
        assert_eq!(found.len(), 1, "call {call}: {found:?}");
        assert_eq!(found[0].1, INVALID_EMAIL, "call {call}");
    }
    assert_eq!(db.count("accounts").await, 1);
}

fn get_account_request_by(email: &str) -> account_service::proto::account::v1::GetAccountRequest {
    account_service::proto::account::v1::GetAccountRequest {
        lookup: Some(get_account_request::Lookup::Email(email.into())),
    }
}
