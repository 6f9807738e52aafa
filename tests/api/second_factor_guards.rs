//! What a second factor guards once it is on, over the real binary on both
//! backends: ChangeEmail and DeleteAccount need a code beside the password,
//! DisableTotp needs both, RegenerateRecoveryCodes replaces the codes, and
//! the mails of it all in the account's language.

use std::time::Duration;

use account_service::proto::account::v1::{
    confirm_registration_request::Proof, get_account_request, ChangeEmailRequest,
    ConfirmRegistrationRequest, DeleteAccountRequest, DisableTotpRequest, EmailCode,
    GetAccountRequest, RegenerateRecoveryCodesRequest, RegisterRequest,
};
use serde_json::json;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use crate::attacks::{link_to, mails_to};
use crate::helpers::*;
use crate::on_both_backends;
use crate::second_factor::{
    account_of, assert_recovery_codes, challenge, challenge_of, changes_seen, complete,
    mail_titled, recovery, start_enrollment, turn_on, watch_changes, TwoStep,
};
use crate::sessions::{assert_refused, jwt_parts, sign_in, try_sign_in, Client, Shop, PASSWORD};

on_both_backends!(
    change_email_and_delete_account_need_a_code_once_it_is_on,
    turning_it_off_needs_the_password_and_a_code,
    new_recovery_codes_replace_the_old_ones,
    the_mails_speak_the_account_language,
);

fn change_email(id: &str, new_email: &str, code: &str) -> ChangeEmailRequest {
    ChangeEmailRequest {
        id: id.into(),
        new_email: new_email.into(),
        current_password: PASSWORD.into(),
        code: code.into(),
    }
}

fn delete(id: &str, password: &str, code: &str) -> DeleteAccountRequest {
    DeleteAccountRequest {
        id: id.into(),
        current_password: password.into(),
        code: code.into(),
    }
}

fn disable(id: &str, password: &str, code: &str) -> DisableTotpRequest {
    DisableTotpRequest {
        account_id: id.into(),
        current_password: password.into(),
        code: code.into(),
    }
}

async fn regenerate(client: &mut Client, id: &str, code: &str) -> Result<Vec<String>, Status> {
    client
        .regenerate_recovery_codes(RegenerateRecoveryCodesRequest {
            account_id: id.into(),
            code: code.into(),
        })
        .await
        .map(|r| r.into_inner().recovery_codes)
}

/// SECOND_FACTOR_REQUIRED without a challenge: a change is no sign-in.
#[track_caller]
fn assert_code_required<T: std::fmt::Debug>(answer: Result<T, Status>) {
    let metadata = answer
        .as_ref()
        .err()
        .and_then(|s| s.get_details_error_info())
        .map(|info| info.metadata);
    assert_refused(answer, Code::FailedPrecondition, "SECOND_FACTOR_REQUIRED");
    assert_eq!(metadata, Some(Default::default()));
}

#[track_caller]
fn assert_wrong_code<T: std::fmt::Debug>(answer: Result<T, Status>) {
    assert_refused(answer, Code::Unauthenticated, "SECOND_FACTOR_INVALID");
}

async fn change_email_and_delete_account_need_a_code_once_it_is_on(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (leaving, leaving_id) = shop.account().await;
    let client = &mut shop.client;
    let mut two_step = turn_on(client, &id).await;
    let mut other = turn_on(client, &leaving_id).await;
    let wrong = two_step.app.wrong_code();

    // Without a code the right password is not enough, and nothing moves.
    let parked = unique_email();
    assert_code_required(client.change_email(change_email(&id, &parked, "")).await);
    assert_wrong_code(
        client
            .change_email(change_email(&id, &parked, &wrong))
            .await,
    );
    // Another account's code is a wrong code too.
    let theirs = other.recovery.pop().unwrap();
    assert_wrong_code(
        client
            .change_email(change_email(&id, &parked, &theirs))
            .await,
    );
    // A wrong password is still just that, code or not.
    let mut wrong_password = change_email(&id, &parked, &two_step.recovery[0]);
    wrong_password.current_password = "wrong-pass1".into();
    assert_refused(
        client.change_email(wrong_password).await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(mails_to(&shop.service, &parked).is_empty());

    // An authenticator code, or a recovery code, and the link is mailed.
    let moving = unique_email();
    let code = two_step.app.fresh_code().await;
    client
        .change_email(change_email(&id, &moving, &code))
        .await
        .unwrap();
    link_to(&shop.service, &moving, "/account/confirm-email/").await;
    let again = unique_email();
    let code = two_step.recovery.remove(0);
    client
        .change_email(change_email(&id, &again, &code))
        .await
        .unwrap();
    link_to(&shop.service, &again, "/account/confirm-email/").await;
    // The recovery code is used up.
    assert_wrong_code(client.change_email(change_email(&id, &parked, &code)).await);
    assert_eq!(account_of(client, &id).await.email, email);

    // DeleteAccount: the same refusals, and the account stays.
    assert_code_required(
        client
            .delete_account(delete(&leaving_id, PASSWORD, ""))
            .await,
    );
    let wrong = other.app.wrong_code();
    assert_wrong_code(
        client
            .delete_account(delete(&leaving_id, PASSWORD, &wrong))
            .await,
    );
    assert_refused(
        client
            .delete_account(delete(&leaving_id, "wrong-pass1", &other.recovery[0]))
            .await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert_eq!(account_of(client, &leaving_id).await.email, leaving);
    let code = other.recovery.remove(0);
    client
        .delete_account(delete(&leaving_id, PASSWORD, &code))
        .await
        .unwrap();
    let gone = client
        .get_account(GetAccountRequest {
            lookup: Some(get_account_request::Lookup::Id(leaving_id.clone())),
        })
        .await;
    assert_code(&gone, Code::NotFound);

    // The first account goes with an authenticator code.
    let code = two_step.app.fresh_code().await;
    client
        .delete_account(delete(&id, PASSWORD, &code))
        .await
        .unwrap();
    assert_code(
        &try_sign_in(client, &email, PASSWORD, None).await,
        Code::Unauthenticated,
    );
}

async fn turning_it_off_needs_the_password_and_a_code(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let watcher = watch_changes(&shop).await;
    let client = &mut shop.client;

    // Not on: nothing to turn off.
    assert_refused(
        client.disable_totp(disable(&id, PASSWORD, "123456")).await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_NOT_ENABLED",
    );
    let mut two_step = turn_on(client, &id).await;
    let wrong = two_step.app.wrong_code();
    assert_wrong_code(client.disable_totp(disable(&id, PASSWORD, &wrong)).await);
    let code = two_step.app.fresh_code().await;
    assert_refused(
        client
            .disable_totp(disable(&id, "wrong-pass1", &code))
            .await,
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    assert!(account_of(client, &id).await.totp_enabled);
    let pending = challenge(client, &email).await;

    let answer = client
        .disable_totp(disable(&id, PASSWORD, &code))
        .await
        .unwrap()
        .into_inner();
    assert!(!answer.account.unwrap().totp_enabled);
    assert!(!account_of(client, &id).await.totp_enabled);
    mail_titled(&shop.service, &email, "Ecoms Two-Step Sign-In Turned Off").await;
    assert_eq!(changes_seen(&watcher, 2).await, [id.clone(), id.clone()]);
    // A challenge of before completes nothing now.
    assert_refused(
        complete(client, &pending, recovery(&two_step.recovery[0])).await,
        Code::Unauthenticated,
        "CHALLENGE_INVALID",
    );

    // The password alone signs in again, as a password sign-in.
    let held = sign_in(client, &email).await;
    assert_eq!(jwt_parts(held.access()).1["amr"], json!(["pwd"]));
    assert_refused(
        client
            .disable_totp(disable(&id, PASSWORD, &two_step.recovery[0]))
            .await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_NOT_ENABLED",
    );
    // It can be turned on again, with a new secret and new codes; the
    // recovery codes of before are gone.
    let again: TwoStep = turn_on(client, &id).await;
    assert!(again
        .recovery
        .iter()
        .all(|c| !two_step.recovery.contains(c)));
    let challenge = challenge(client, &email).await;
    assert_wrong_code(complete(client, &challenge, recovery(&two_step.recovery[1])).await);
    complete(client, &challenge, recovery(&again.recovery[0]))
        .await
        .unwrap();
}

async fn new_recovery_codes_replace_the_old_ones(backend: Backend) {
    // Every old code is tried: more wrong codes than the default lockout.
    let mut shop = Shop::start(backend, &[("LOGIN_MAX_FAILURES", "20")]).await;
    let (email, id) = shop.account().await;
    let (plain, plain_id) = shop.account().await;
    let client = &mut shop.client;

    assert_refused(
        regenerate(client, &plain_id, "123456").await,
        Code::FailedPrecondition,
        "SECOND_FACTOR_NOT_ENABLED",
    );
    let mut two_step = turn_on(client, &id).await;
    assert_wrong_code(regenerate(client, &id, &two_step.app.wrong_code()).await);
    assert_wrong_code(regenerate(client, &id, "aaaaa-aaaaa").await);

    // With an authenticator code: ten new codes, none of the old ones.
    let code = two_step.app.fresh_code().await;
    let renewed = regenerate(client, &id, &code).await.unwrap();
    assert_recovery_codes(&renewed);
    assert!(renewed.iter().all(|c| !two_step.recovery.contains(c)));
    let challenge = challenge(client, &email).await;
    for old in &two_step.recovery {
        assert_wrong_code(complete(client, &challenge, recovery(old)).await);
    }
    complete(client, &challenge, recovery(&renewed[0]))
        .await
        .unwrap();

    // With a recovery code, which is used up by it.
    let newest = regenerate(client, &id, &renewed[1]).await.unwrap();
    assert_recovery_codes(&newest);
    let challenge = crate::second_factor::challenge(client, &email).await;
    assert_wrong_code(complete(client, &challenge, recovery(&renewed[2])).await);
    complete(client, &challenge, recovery(&newest[9]))
        .await
        .unwrap();
    // The password-only account is untouched.
    sign_in(client, &plain).await;
}

/// Registers `email` in `locale` and confirms it with its mail's code.
async fn registered_in(shop: &mut Shop, email: &str, locale: &str) -> String {
    let request = RegisterRequest {
        locale: locale.into(),
        ..registration(email)
    };
    let account = shop.client.register(request).await.unwrap().into_inner();
    let id = account.account.unwrap().id;
    let code = eventually(Duration::from_secs(10), || async {
        mails_to(&shop.service, email).first().map(Mail::code)
    })
    .await
    .expect("the welcome mail");
    let proof = Proof::EmailCode(EmailCode {
        email: email.into(),
        code,
    });
    shop.client
        .confirm_registration(ConfirmRegistrationRequest { proof: Some(proof) })
        .await
        .unwrap();
    id
}

async fn the_mails_speak_the_account_language(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let email = unique_email();
    let id = registered_in(&mut shop, &email, "fr").await;
    let mut two_step = turn_on(&mut shop.client, &id).await;
    let client = &mut shop.client;
    let challenge = challenge_of(try_sign_in(client, &email, PASSWORD, None).await);
    complete(client, &challenge, recovery(&two_step.recovery[0]))
        .await
        .unwrap();
    let code = two_step.app.fresh_code().await;
    client
        .disable_totp(disable(&id, PASSWORD, &code))
        .await
        .unwrap();

    // French sets a narrow no-break space before a colon.
    let on = mail_titled(
        &shop.service,
        &email,
        "Ecoms\u{202f}: Connexion en deux étapes activée",
    )
    .await;
    assert_eq!(on.content_language, "fr");
    let used = mail_titled(
        &shop.service,
        &email,
        "Ecoms\u{202f}: Code de récupération utilisé",
    )
    .await;
    assert!(
        used.text.contains("Il vous reste 9 codes de récupération."),
        "{}",
        used.text
    );
    mail_titled(
        &shop.service,
        &email,
        "Ecoms\u{202f}: Connexion en deux étapes désactivée",
    )
    .await;
    // Nothing of it came in English.
    let subjects: Vec<String> = mails_to(&shop.service, &email)
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert!(
        subjects
            .iter()
            .all(|s| !s.contains("Two-Step") && !s.contains("Recovery")),
        "{subjects:?}"
    );
    // Starting again after turning off works in any language.
    start_enrollment(client, &id, PASSWORD).await.unwrap();
}
