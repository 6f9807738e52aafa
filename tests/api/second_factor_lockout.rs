//! Wrong second factors and the sign-in lockout, over the real binary on
//! both backends: a wrong code counts as a wrong password does, a right
//! password that still owes its code clears nothing, and only a completed
//! sign-in starts the count again.

use account_service::proto::account::v1::{ChangeEmailRequest, DisableTotpRequest};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::credentials_binary::check;
use crate::helpers::*;
use crate::on_both_backends;
use crate::second_factor::{challenge, challenge_of, complete, recovery, shop_with_two_step, totp};
use crate::sessions::{assert_refused, live_ids, try_sign_in, Client, PASSWORD};

on_both_backends!(
    wrong_codes_lock_the_address_out_and_a_completed_sign_in_clears_them,
    a_right_password_that_still_owes_its_code_clears_no_failure,
    codes_guessed_through_a_guarded_call_count_as_well,
    a_right_password_to_a_guarded_call_clears_no_failed_code,
);

/// LOGIN_MAX_FAILURES=3, and a lockout that outlasts the scenario.
const STRICT: [(&str, &str); 2] = [("LOGIN_MAX_FAILURES", "3"), ("LOGIN_LOCKOUT", "600")];

#[track_caller]
fn assert_wrong_code<T: std::fmt::Debug>(answer: Result<T, Status>) {
    assert_refused(answer, Code::Unauthenticated, "SECOND_FACTOR_INVALID");
}

#[track_caller]
fn assert_locked<T: std::fmt::Debug>(answer: Result<T, Status>) {
    let retry = answer
        .as_ref()
        .err()
        .and_then(|s| s.get_details_retry_info());
    assert_refused(answer, Code::ResourceExhausted, "LOGIN_LOCKED");
    assert!(retry.is_some(), "LOGIN_LOCKED says when to retry");
}

/// Every way in is locked for `email`, the right code included.
async fn assert_locked_out(client: &mut Client, email: &str, challenge: &str, code: &str) {
    assert_locked(complete(client, challenge, totp(code)).await);
    assert_locked(try_sign_in(client, email, PASSWORD, None).await);
    assert_locked(check(client, email, PASSWORD).await);
}

async fn wrong_codes_lock_the_address_out_and_a_completed_sign_in_clears_them(backend: Backend) {
    let (mut shop, email, id, mut two_step) = shop_with_two_step(backend, &STRICT).await;
    let client = &mut shop.client;
    let wrong = two_step.app.wrong_code();

    // Two wrong codes, then a completed sign-in: the count starts again.
    for used in 0..2 {
        for _ in 0..2 {
            let challenge = challenge(client, &email).await;
            assert_wrong_code(complete(client, &challenge, totp(&wrong)).await);
        }
        let challenge = challenge(client, &email).await;
        let code = &two_step.recovery[used];
        complete(client, &challenge, recovery(code)).await.unwrap();
    }
    // Three in a row lock the address out: the next CompleteSignIn, even
    // with the right code, and SignIn and CheckPassword with the right
    // password.
    let mut last = String::new();
    for _ in 0..3 {
        last = challenge(client, &email).await;
        assert_wrong_code(complete(client, &last, totp(&wrong)).await);
    }
    let right = two_step.app.fresh_code().await;
    assert_locked_out(client, &email, &last, &right).await;
    assert_eq!(live_ids(client, &id).await.len(), 2);
}

async fn a_right_password_that_still_owes_its_code_clears_no_failure(backend: Backend) {
    let (mut shop, email, id, mut two_step) = shop_with_two_step(backend, &STRICT).await;
    let client = &mut shop.client;

    // Two wrong passwords, the right one, one wrong code: three failures.
    for _ in 0..2 {
        assert_refused(
            try_sign_in(client, &email, "wrong-pass1", None).await,
            Code::Unauthenticated,
            "INVALID_CREDENTIALS",
        );
    }
    let challenge = challenge_of(try_sign_in(client, &email, PASSWORD, None).await);
    let wrong = two_step.app.wrong_code();
    assert_wrong_code(complete(client, &challenge, totp(&wrong)).await);
    let right = two_step.app.fresh_code().await;
    assert_locked_out(client, &email, &challenge, &right).await;
    assert!(live_ids(client, &id).await.is_empty());
}

fn change_email(id: &str, code: &str) -> ChangeEmailRequest {
    ChangeEmailRequest {
        id: id.into(),
        new_email: unique_email(),
        current_password: PASSWORD.into(),
        code: code.into(),
    }
}

fn disable(id: &str, code: &str) -> DisableTotpRequest {
    DisableTotpRequest {
        account_id: id.into(),
        current_password: PASSWORD.into(),
        code: code.into(),
    }
}

async fn codes_guessed_through_a_guarded_call_count_as_well(backend: Backend) {
    let (mut shop, _, id, two_step) = shop_with_two_step(backend, &STRICT).await;
    let client = &mut shop.client;

    // Whoever has the password and guesses codes through a call that checks
    // the password first (DisableTotp here; ChangeEmail and DeleteAccount
    // alike) is locked out after LOGIN_MAX_FAILURES wrong codes, as at
    // sign-in: the right password on the way clears no failed code.
    let wrong = two_step.app.wrong_code();
    for _ in 0..3 {
        assert_wrong_code(client.disable_totp(disable(&id, &wrong)).await);
    }
    assert_locked(client.disable_totp(disable(&id, &wrong)).await);
    assert_locked(
        client
            .change_email(change_email(&id, &two_step.recovery[0]))
            .await,
    );
}

async fn a_right_password_to_a_guarded_call_clears_no_failed_code(backend: Backend) {
    let (mut shop, email, id, mut two_step) = shop_with_two_step(backend, &STRICT).await;
    let client = &mut shop.client;

    // Two wrong codes at sign-in, the right password to ChangeEmail without
    // a code, one more wrong code: three failures.
    let wrong = two_step.app.wrong_code();
    for _ in 0..2 {
        let challenge = challenge(client, &email).await;
        assert_wrong_code(complete(client, &challenge, totp(&wrong)).await);
    }
    assert_refused(
        client.change_email(change_email(&id, "")).await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_REQUIRED",
    );
    let last = challenge(client, &email).await;
    assert_wrong_code(complete(client, &last, totp(&wrong)).await);
    let right = two_step.app.fresh_code().await;
    assert_locked_out(client, &email, &last, &right).await;
}
