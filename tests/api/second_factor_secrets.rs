//! The secrets of two-step sign-in over the real binary on both backends:
//! stored sealed, opened under `SECRET_KEY_PREVIOUS` and sealed again under
//! the new key, and never written to the log.

use std::time::Duration;

use account_service::proto::account::v1::{
    ChangeEmailRequest, DisableTotpRequest, RegenerateRecoveryCodesRequest,
};

use crate::attacks::{start, verified};
use crate::helpers::*;
use crate::on_both_backends;
use crate::second_factor::{
    challenge, complete, confirm, recovery, sign_in_with_code, start_enrollment, totp, turn_on,
    with_time_left, Authenticator,
};
use crate::sessions::{Shop, PASSWORD};

on_both_backends!(
    a_secret_sealed_under_the_previous_key_opens_and_is_sealed_again,
    the_log_holds_no_secret_code_or_challenge,
);

const FIRST_KEY: &str = "first-secret-key-of-the-rotation-0123456789abcdef";
const SECOND_KEY: &str = "second-secret-key-of-the-rotation-0123456789abcdef";

const SEALED: &str = "SELECT sealed_secret FROM second_factors";

async fn a_secret_sealed_under_the_previous_key_opens_and_is_sealed_again(backend: Backend) {
    let db = TestDatabase::create(&backend).await;
    let (before, mut client) = start(&db, &[("SECRET_KEY", FIRST_KEY)]).await;
    let email = unique_email();
    let id = verified(&before, &mut client, &email).await;
    let mut two_step = turn_on(&mut client, &id).await;
    let sealed = db.text(SEALED).await;
    let pending = challenge(&mut client, &email).await;
    drop(before);

    // The new key, the old one as the previous: a code still signs in,
    // and the secret is sealed again under the new key.
    let (rotating, mut client) = start(
        &db,
        &[
            ("SECRET_KEY", SECOND_KEY),
            ("SECRET_KEY_PREVIOUS", FIRST_KEY),
        ],
    )
    .await;
    let held = sign_in_with_code(&mut client, &email, &mut two_step.app).await;
    assert_eq!(held.session.account_id, id);
    // A challenge issued, and recovery codes hashed, under the old key
    // work as well.
    let answer = complete(&mut client, &pending, recovery(&two_step.recovery[0])).await;
    assert_eq!(answer.unwrap().account.unwrap().id, id);
    let resealed = eventually(Duration::from_secs(10), || async {
        let now = db.text(SEALED).await;
        (now != sealed).then_some(now)
    })
    .await
    .expect("the secret sealed again under the new key");
    drop(rotating);

    // The rotation done: the new key alone opens it.
    let (rotated, mut client) = start(&db, &[("SECRET_KEY", SECOND_KEY)]).await;
    let held = sign_in_with_code(&mut client, &email, &mut two_step.app).await;
    assert_eq!(held.session.account_id, id);
    // Nothing more to seal again.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(db.text(SEALED).await, resealed);
    drop(rotated);
}

/// Whether `code` stands alone in `log`: not inside a longer word or
/// number, where six digits turn up by chance.
fn holds_code(log: &str, code: &str) -> bool {
    log.match_indices(code).any(|(i, _)| {
        let before = log[..i].chars().next_back();
        let after = log[i + code.len()..].chars().next();
        ![before, after]
            .into_iter()
            .flatten()
            .any(|c| c.is_ascii_alphanumeric())
    })
}

async fn the_log_holds_no_secret_code_or_challenge(backend: Backend) {
    let settings = [
        ("RUST_LOG", "info,account_service=debug"),
        ("LOGIN_MAX_FAILURES", "20"),
    ];
    let mut shop = Shop::start(backend, &settings).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];
    let mut codes: Vec<String> = Vec::new();

    // An enrolment started twice, a wrong code, then the right one.
    with_time_left(5).await;
    let replaced = start_enrollment(client, &id, PASSWORD).await.unwrap();
    let started = start_enrollment(client, &id, PASSWORD).await.unwrap();
    let mut app = Authenticator::scan(&started.otpauth_uri);
    for s in [&replaced, &started] {
        secrets.extend([
            s.secret.clone(),
            s.secret.to_lowercase(),
            s.otpauth_uri.clone(),
        ]);
    }
    let wrong = app.wrong_code();
    confirm(client, &id, &wrong).await.unwrap_err();
    let first = app.previous_code();
    let confirmed = confirm(client, &id, &first).await.unwrap();
    let mut recovery_codes = confirmed.recovery_codes;
    codes.extend([wrong.clone(), first]);
    // Stored sealed, and the recovery codes as keyed hashes only.
    let sealed = shop.db.text(SEALED).await;
    assert!(!sealed.contains(&started.secret), "{sealed}");
    assert!(!sealed
        .to_lowercase()
        .contains(&started.secret.to_lowercase()));
    for code in &recovery_codes {
        let plain = code.replace('-', "");
        let found = format!(
            "SELECT COUNT(*) FROM recovery_codes WHERE code_hash LIKE '%{plain}%' OR code_hash LIKE '%{code}%'"
        );
        assert_eq!(shop.db.scalar(&found).await, 0, "{code} stored as it is");
    }
    assert_eq!(shop.db.count("recovery_codes").await, 10);

    // A sign-in with a wrong code, then a right one; one with a recovery
    // code; a replayed code; a challenge that is no more.
    let first_challenge = challenge(client, &email).await;
    complete(client, &first_challenge, totp(&wrong))
        .await
        .unwrap_err();
    let code = app.fresh_code().await;
    complete(client, &first_challenge, totp(&code))
        .await
        .unwrap();
    let second_challenge = challenge(client, &email).await;
    complete(client, &second_challenge, totp(&code))
        .await
        .unwrap_err();
    complete(client, &second_challenge, recovery(&recovery_codes[0]))
        .await
        .unwrap();
    complete(client, &first_challenge, recovery(&recovery_codes[1]))
        .await
        .unwrap_err();
    codes.push(code);
    secrets.extend([first_challenge, second_challenge]);

    // New recovery codes; an address change and turning it off, with codes.
    let code = app.fresh_code().await;
    let renewed = client
        .regenerate_recovery_codes(RegenerateRecoveryCodesRequest {
            account_id: id.clone(),
            code: code.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .recovery_codes;
    codes.push(code);
    recovery_codes.extend(renewed);
    client
        .change_email(ChangeEmailRequest {
            id: id.clone(),
            new_email: unique_email(),
            current_password: PASSWORD.into(),
            code: recovery_codes[10].clone(),
        })
        .await
        .unwrap();
    let disable = |code: &str| DisableTotpRequest {
        account_id: id.clone(),
        current_password: PASSWORD.into(),
        code: code.into(),
    };
    client.disable_totp(disable(&wrong)).await.unwrap_err();
    client
        .disable_totp(disable(&recovery_codes[11]))
        .await
        .unwrap();

    // Turned off, the secret is gone.
    assert_eq!(shop.db.count("second_factors").await, 0);
    let log = shop.service.log_text();
    assert!(
        log.contains("CompleteSignIn"),
        "the calls were logged: {log}"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "{secret:?} is in the log");
    }
    for code in &recovery_codes {
        assert!(
            !log.contains(code.as_str()),
            "a recovery code is in the log"
        );
        assert!(
            !log.contains(&code.replace('-', "")),
            "a recovery code is in the log"
        );
    }
    for code in &codes {
        assert!(!holds_code(&log, code), "the code {code} is in the log");
    }
}
