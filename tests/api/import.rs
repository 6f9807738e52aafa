//! `account-service import-django`: shoppers from the Django app, with the
//! hashes Django made, signing in with their old passwords.

use std::process::Command;

use account_service::proto::account::v1::{CheckPasswordRequest, DeleteAccountRequest};

use crate::helpers::*;
use crate::on_both_backends;

/// Django's Argon2PasswordHasher: `argon2` + the PHC string.
pub(crate) fn django_argon2(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let phc = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(2048, 2, 2, None).unwrap(),
    )
    .hash_password(
        password.as_bytes(),
        &SaltString::from_b64("ZGphbmdvc2FsdA").unwrap(),
    )
    .unwrap()
    .to_string();
    format!("argon2{phc}")
}

pub(crate) fn import(db_url: &str, file: &std::path::Path) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_account-service"))
        .env_clear()
        .env("DATABASE_URL", db_url)
        .args(["import-django", "--from"])
        .arg(file)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

on_both_backends!(django_shoppers_are_imported_once_and_sign_in_with_their_passwords);

async fn django_shoppers_are_imported_once_and_sign_in_with_their_passwords(backend: Backend) {
    let app = spawn_app(backend).await;
    let kept_id = uuid::Uuid::new_v4();
    let (ann, bob) = (unique_email(), unique_email());
    let pbkdf2 = django_pbkdf2("django-pass1", "Vd3cS7Xz", 1000);
    let argon2 = django_argon2("bobs-pass-22");
    let rows = [
        serde_json::json!({
            "id": kept_id.to_string(), "email": ann, "username": "ann", "password": pbkdf2,
            "first_name": "Ann", "last_name": "Lee", "phone_number": null, "address": "1 Main St",
            "verified": true, "term_and_condition": true, "created_from": "web",
            "date_joined": "2023-05-06T07:08:09.123456Z", "is_staff": false
        })
        .to_string(),
        serde_json::json!({
            "id": 42, "email": bob.to_uppercase(), "username": "bob", "password": argon2,
            "verified": true, "date_joined": "2023-05-06 07:08:09"
        })
        .to_string(),
        serde_json::json!({"id": 43, "email": "not an address", "password": pbkdf2}).to_string(),
        serde_json::json!({"id": 44, "email": unique_email(), "password": "!unusable"}).to_string(),
        "{ this is not json".to_owned(),
        String::new(),
        serde_json::json!({"id": 45, "email": ann.to_uppercase(), "password": pbkdf2}).to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.jsonl");
    std::fs::write(&file, rows.join("\n")).unwrap();

    let (code, out, err) = import(&app.db.url, &file);
    assert_eq!(code, Some(1), "rows failed: {out}{err}");
    assert!(
        out.contains("6 rows: 2 imported, 0 already present, 4 failed"),
        "{out}"
    );
    assert!(
        out.contains("line 3: skipped: email: Enter a valid email address."),
        "{out}"
    );
    assert!(
        out.contains("line 4: skipped: password: not a supported hash"),
        "{out}"
    );
    assert!(
        out.contains("line 5: skipped: not an account object"),
        "{out}"
    );
    // Ann's address again, in capitals: another Django shopper, reported
    // rather than taken for Ann.
    assert!(
        out.contains("line 7: skipped: email: another account already has this address"),
        "{out}"
    );
    assert!(!out.contains("line 7: id 45"), "{out}");
    let mapped = out
        .lines()
        .find_map(|l| l.strip_prefix("line 2: id 42 -> "))
        .expect("the new id of Django's 42")
        .to_owned();
    for secret in [&pbkdf2, &argon2] {
        assert!(!out.contains(secret.as_str()) && !err.contains(secret.as_str()));
    }
    // Kept ids, fields, and no mail at all.
    let imported = app.get_by_id(&kept_id.to_string()).await.unwrap();
    assert_eq!(imported.email, ann);
    assert_eq!(imported.first_name, "Ann");
    assert_eq!(imported.phone_number, "");
    assert!(imported.verified);
    assert_eq!(imported.created_at.unwrap().seconds, 1683356889);
    assert_eq!(app.get_by_email(&bob).await.unwrap().id, mapped);
    assert_eq!(app.db.count("email_outbox").await, 0);
    assert_eq!(app.db.count("accounts").await, 2);

    // Again: nothing new, the same mapping.
    let (code, out, _) = import(&app.db.url, &file);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("6 rows: 0 imported, 2 already present, 4 failed"),
        "{out}"
    );
    assert!(out.contains(&format!("line 2: id 42 -> {mapped}")), "{out}");
    assert_eq!(app.db.count("accounts").await, 2);

    // They sign in with the passwords they had, and their hashes become
    // this service's argon2id.
    for (email, password) in [(&ann, "django-pass1"), (&bob, "bobs-pass-22")] {
        let before = app.db.password_hash(email).await;
        assert!(!before.starts_with("$argon2id$v=19$m=19456"));
        app.client
            .clone()
            .check_password(CheckPasswordRequest {
                email: email.clone(),
                password: password.into(),
            })
            .await
            .unwrap();
        let after = app.db.password_hash(email).await;
        assert!(
            after.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{after}"
        );
    }

    // A clean export imports with success.
    let clean = dir.path().join("clean.jsonl");
    let carl = unique_email();
    std::fs::write(
        &clean,
        serde_json::json!({"id": 7, "email": carl, "password": django_pbkdf2("carl-pass-1", "c4rl", 1000)})
            .to_string(),
    )
    .unwrap();
    let (code, out, _) = import(&app.db.url, &clean);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("1 rows: 1 imported, 0 already present, 0 failed"),
        "{out}"
    );
    assert!(!app.get_by_email(&carl).await.unwrap().verified);

    // A shopper who left stays gone when the same export is imported again:
    // the mapped id is the same on every run, and the tombstone keeps it.
    app.client
        .clone()
        .delete_account(DeleteAccountRequest {
            id: mapped.clone(),
            current_password: String::new(),
            code: String::new(),
        })
        .await
        .unwrap();
    let (_, out, _) = import(&app.db.url, &file);
    assert!(out.contains("0 imported"), "{out}");
    assert_code(&app.get_by_email(&bob).await, tonic::Code::NotFound);
    assert_code(&app.get_by_id(&mapped).await, tonic::Code::NotFound);
    // Each import wrote one event, stamped when it was imported.
    assert_eq!(
        app.db
            .scalar("SELECT COUNT(*) FROM account_events WHERE type = 1")
            .await,
        3
    );
    let recent = chrono::Utc::now() - chrono::Duration::minutes(5);
    let old_events = if app.db.is_sqlite() {
        format!(
            "SELECT COUNT(*) FROM account_events WHERE occurred_at < {}",
            recent.timestamp_micros()
        )
    } else {
        format!(
            "SELECT COUNT(*) FROM account_events WHERE occurred_at < '{}'",
            recent.to_rfc3339()
        )
    };
    assert_eq!(app.db.scalar(&old_events).await, 0);
}
