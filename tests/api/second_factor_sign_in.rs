//! Signing in with a second factor over the real binary on both backends:
//! what a right and a wrong password answer, CompleteSignIn with a code or
//! a recovery code, codes used once within one step of skew, and the
//! challenge's end by time, use or a new password.

use std::time::Duration;

use account_service::proto::account::v1::ChangePasswordRequest;
use serde_json::json;
use tonic::{Code, Status};

use crate::attacks::reset_by_mail;
use crate::credentials_binary::check;
use crate::helpers::*;
use crate::on_both_backends;
use crate::second_factor::{
    challenge, challenge_of, complete, mail_titled, recovery, shop_with_two_step, sign_in_with,
    sign_in_with_code, totp, turn_on, unix_now, with_time_left,
};
use crate::sessions::{
    assert_refused, jwt_parts, live_ids, refresh, try_sign_in, verify, Client, Held, Shop, PASSWORD,
};

on_both_backends!(
    a_right_password_asks_for_the_code_and_a_wrong_one_answers_as_before,
    complete_sign_in_starts_a_two_step_session_for_its_challenge_only,
    recovery_codes_work_once_each_and_say_how_many_are_left,
    a_challenge_ends_with_its_time_its_use_and_its_password,
    concurrent_completions_of_one_challenge_use_up_one_code,
);

// Slow: waits for the time steps it needs, up to about a minute.
on_both_backends!(slow_codes_count_one_step_either_way_and_only_once);

/// A refusal, reduced to what a client can compare: the code, the message
/// and the encoded details.
fn answer(status: &Status) -> (Code, String, Vec<u8>) {
    (
        status.code(),
        status.message().to_owned(),
        status.details().to_vec(),
    )
}

async fn a_right_password_asks_for_the_code_and_a_wrong_one_answers_as_before(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (plain, _) = shop.account().await;
    let (guarded, id) = shop.account().await;
    let client = &mut shop.client;
    turn_on(client, &id).await;

    // A wrong password tells nothing of a second factor: the very answer a
    // password-only account gets, from SignIn and from CheckPassword.
    for wrong in ["wrong-pass1", "secret1234"] {
        let expected = answer(&try_sign_in(client, &plain, wrong, None).await.unwrap_err());
        assert_eq!(expected.0, Code::Unauthenticated);
        let signed = try_sign_in(client, &guarded, wrong, None)
            .await
            .unwrap_err();
        assert_eq!(answer(&signed), expected, "{signed:?}");
        let checked = check(client, &guarded, wrong).await.unwrap_err();
        assert_eq!(answer(&checked), expected, "{checked:?}");
        assert_eq!(reason(&checked).as_deref(), Some("INVALID_CREDENTIALS"));
    }

    // The right password earns a challenge and no session, from both.
    let from_sign_in = challenge_of(try_sign_in(client, &guarded, PASSWORD, None).await);
    let from_check = challenge_of(check(client, &guarded, PASSWORD).await);
    assert_ne!(from_sign_in, from_check);
    assert!(live_ids(client, &id).await.is_empty());
    // The password-only account signs in as before.
    try_sign_in(client, &plain, PASSWORD, None).await.unwrap();
}

async fn complete_sign_in_starts_a_two_step_session_for_its_challenge_only(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let (other, other_id) = shop.account().await;
    let client = &mut shop.client;
    let mut two_step = turn_on(client, &id).await;
    let mut stranger = turn_on(client, &other_id).await;

    // CheckPassword's challenge completes a sign-in as SignIn's does.
    let from_check = challenge_of(check(client, &email, PASSWORD).await);
    let code = two_step.app.fresh_code().await;
    let answer = complete(client, &from_check, totp(&code)).await.unwrap();
    assert_eq!(answer.account.as_ref().unwrap().id, id);
    let held = Held::from(answer);
    assert_eq!(held.session.account_id, id);
    assert_eq!(held.session.user_agent, "Mozilla/5.0");
    let (_, claims) = jwt_parts(held.access());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(
        verify(client, held.access()).await.unwrap().session_id,
        held.id()
    );
    // A refresh keeps how the shopper signed in.
    let refreshed = refresh(client, held.refresh()).await.unwrap();
    assert_eq!(
        jwt_parts(refreshed.access()).1["amr"],
        json!(["pwd", "otp"])
    );
    assert_eq!(live_ids(client, &id).await, [held.id().to_owned()]);

    // The challenge worked once.
    let next = two_step.app.fresh_code().await;
    assert_refused(
        complete(client, &from_check, totp(&next)).await,
        Code::Unauthenticated,
        "CHALLENGE_INVALID",
    );
    // Nothing else is a challenge: a guess, a refresh token, a challenge
    // cut short or lengthened.
    let fresh = challenge(client, &email).await;
    for guess in [
        format!("acc_{}", "Q".repeat(43)),
        "not-a-challenge".to_owned(),
        held.refresh().to_owned(),
        fresh[..fresh.len() - 1].to_owned(),
        format!("{fresh}A"),
    ] {
        assert_refused(
            complete(client, &guess, totp(&next)).await,
            Code::Unauthenticated,
            "CHALLENGE_INVALID",
        );
    }
    // Another account's code is no code for this challenge, and neither is
    // one of its recovery codes.
    let theirs = stranger.app.fresh_code().await;
    for factor in [totp(&theirs), recovery(&stranger.recovery[0])] {
        assert_refused(
            complete(client, &fresh, factor).await,
            Code::Unauthenticated,
            "SECOND_FACTOR_INVALID",
        );
    }
    // A call without a factor is a bad request.
    let status = complete(client, &fresh, None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(live_ids(client, &id).await.len(), 1);
    assert!(live_ids(client, &other_id).await.is_empty());
    // The challenge still completes with the account's own code.
    let answer = complete(client, &fresh, totp(&next)).await.unwrap();
    assert_eq!(answer.account.unwrap().id, id);
    assert_eq!(live_ids(client, &id).await.len(), 2);
    // The stranger's recovery code was not used up by the attempt.
    let theirs = challenge(client, &other).await;
    complete(client, &theirs, recovery(&stranger.recovery[0]))
        .await
        .unwrap();
}

async fn recovery_codes_work_once_each_and_say_how_many_are_left(backend: Backend) {
    let (mut shop, email, id, two_step) = shop_with_two_step(backend, &[]).await;
    let client = &mut shop.client;
    let [first, second] = [&two_step.recovery[0], &two_step.recovery[1]];

    let answer = sign_in_with(client, &email, recovery(first)).await.unwrap();
    let held = Held::from(answer);
    assert_eq!(held.session.account_id, id);
    let mail = mail_titled(&shop.service, &email, "Ecoms Recovery Code Used").await;
    assert!(
        mail.text.contains("You have 9 recovery codes left."),
        "{}",
        mail.text
    );
    assert!(
        !mail.text.contains(first.as_str()),
        "the code is not mailed"
    );

    // Used up: refused with a new challenge too.
    let again = challenge(client, &email).await;
    assert_refused(
        complete(client, &again, recovery(first)).await,
        Code::Unauthenticated,
        "SECOND_FACTOR_INVALID",
    );
    // The next one works, and leaves eight.
    complete(client, &again, recovery(second)).await.unwrap();
    let left = eventually(Duration::from_secs(10), || async {
        crate::attacks::mails_to(&shop.service, &email)
            .into_iter()
            .find(|m| m.text.contains("You have 8 recovery codes left."))
    })
    .await;
    assert!(left.is_some(), "a second notice, with eight left");
    assert_eq!(live_ids(client, &id).await.len(), 2);
}

/// Ages every challenge past its five minutes, straight in the database.
async fn expire_challenges(db: &TestDatabase) {
    db.execute(if db.is_sqlite() {
        "UPDATE sign_in_challenges SET expires_at = 0"
    } else {
        "UPDATE sign_in_challenges SET expires_at = now() - interval '1 second'"
    })
    .await;
}

async fn new_password(client: &mut Client, id: &str, current: &str, new: &str) {
    client
        .change_password(ChangePasswordRequest {
            id: id.into(),
            current_password: current.into(),
            password: new.into(),
            confirm_password: new.into(),
            keep_session_id: String::new(),
        })
        .await
        .unwrap();
}

async fn a_challenge_ends_with_its_time_its_use_and_its_password(backend: Backend) {
    let (mut shop, email, id, mut two_step) = shop_with_two_step(backend, &[]).await;
    let client = &mut shop.client;

    // Five minutes, then CHALLENGE_EXPIRED, whatever the code.
    let late = challenge(client, &email).await;
    expire_challenges(&shop.db).await;
    let code = two_step.app.fresh_code().await;
    assert_refused(
        complete(client, &late, totp(&code)).await,
        Code::Unauthenticated,
        "CHALLENGE_EXPIRED",
    );
    // The code was not spent on it.
    let held = sign_in_with(client, &email, totp(&code)).await.unwrap();

    // A password change ends the challenges issued before it, and the new
    // password still needs the code.
    let before_change = challenge(client, &email).await;
    new_password(client, &id, PASSWORD, "changed-pass-42").await;
    assert_refused(
        complete(client, &before_change, recovery(&two_step.recovery[0])).await,
        Code::Unauthenticated,
        "CHALLENGE_INVALID",
    );
    let after_change = challenge_of(try_sign_in(client, &email, "changed-pass-42", None).await);

    // So does a reset, mailed to the address: whoever holds the mailbox
    // still needs the second factor to sign in.
    reset_by_mail(&shop.service, client, &email, "reset-pass-42").await;
    assert_refused(
        complete(client, &after_change, recovery(&two_step.recovery[0])).await,
        Code::Unauthenticated,
        "CHALLENGE_INVALID",
    );
    assert!(
        live_ids(client, &id).await.is_empty(),
        "the reset ended {held:?}"
    );
    let after_reset = challenge_of(try_sign_in(client, &email, "reset-pass-42", None).await);
    assert!(live_ids(client, &id).await.is_empty());
    // The recovery code refused with the dead challenges is still good.
    complete(client, &after_reset, recovery(&two_step.recovery[0]))
        .await
        .unwrap();
    assert_eq!(live_ids(client, &id).await.len(), 1);
}

async fn slow_codes_count_one_step_either_way_and_only_once(backend: Backend) {
    // Refused codes count towards the lockout; they are not the point here.
    let (mut shop, email, id, two_step) =
        shop_with_two_step(backend, &[("LOGIN_MAX_FAILURES", "20")]).await;
    let client = &mut shop.client;
    let mut app = two_step.app;

    // The enrolment used the step before the one it was confirmed in; two
    // steps later, the code of two steps ago is newer than any used, and
    // still refused for its age alone.
    let enrolled_in = unix_now() / 30;
    while unix_now() / 30 < enrolled_in + 2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    with_time_left(15).await;
    let refused = |answer: Result<_, Status>| {
        assert_refused(answer, Code::Unauthenticated, "SECOND_FACTOR_INVALID")
    };
    let codes = [-60, -30, 30, 60, 0].map(|offset| app.code_from_now(offset));
    let [two_ago, one_ago, one_ahead, two_ahead, current] = &codes;
    refused(sign_in_with(client, &email, totp(two_ago)).await);
    refused(sign_in_with(client, &email, totp(two_ahead)).await);
    // A step behind is accepted, once: the same code again, in its window,
    // with a new challenge, is refused.
    sign_in_with(client, &email, totp(one_ago)).await.unwrap();
    refused(sign_in_with(client, &email, totp(one_ago)).await);
    // A step ahead is accepted; after it, the current step's code is older
    // than one used, and refused: steps only move forward.
    sign_in_with(client, &email, totp(one_ahead)).await.unwrap();
    refused(sign_in_with(client, &email, totp(current)).await);
    refused(sign_in_with(client, &email, totp(one_ahead)).await);
    assert_eq!(live_ids(client, &id).await.len(), 2);

    // Any later code works again.
    app.used_until(unix_now() + 30);
    let held = sign_in_with_code(client, &email, &mut app).await;
    assert_eq!(held.session.account_id, id);
}

/// Two completions of one challenge at once, each with a right recovery
/// code: one signs in, the other is refused before its code is checked, so
/// its code still works afterwards.
async fn concurrent_completions_of_one_challenge_use_up_one_code(backend: Backend) {
    let (shop, email, id, two_step) = shop_with_two_step(backend, &[]).await;
    let mut client = shop.client.clone();
    let shared = challenge(&mut client, &email).await;
    let calls = two_step.recovery[..6].iter().map(|code| {
        let (mut client, shared, code) = (shop.client.clone(), shared.clone(), code.clone());
        tokio::spawn(async move {
            (
                code.clone(),
                complete(&mut client, &shared, recovery(&code)).await,
            )
        })
    });
    let answers: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let (won, lost): (Vec<_>, Vec<_>) = answers.into_iter().partition(|(_, r)| r.is_ok());
    assert_eq!(won.len(), 1, "one completion signs in");
    for (_, refused) in &lost {
        assert_refused(refused.clone(), Code::Unauthenticated, "CHALLENGE_INVALID");
    }
    assert_eq!(live_ids(&mut client, &id).await.len(), 1);
    // The losers' codes were never checked, so never used up.
    for (code, _) in lost {
        let again = challenge(&mut client, &email).await;
        complete(&mut client, &again, recovery(&code))
            .await
            .unwrap();
    }
}
