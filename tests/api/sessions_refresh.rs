//! RefreshSession over the real binary on both backends: rotation,
//! concurrent refreshes that converge, reuse of a rotated-out token as
//! theft, tokens that were never issued, and the idle and maximum lifetimes.

use std::collections::HashSet;
use std::time::Duration;

use tonic::Code;

use crate::helpers::*;
use crate::on_both_backends;
use crate::sessions::{
    assert_live, assert_refused, assert_same_session, assert_same_time, jwt_parts, live_ids,
    refresh, sign_in, sign_out, time, verify, Held, Shop,
};

on_both_backends!(
    a_refresh_rotates_the_token_and_moves_the_session_on,
    twenty_concurrent_refreshes_converge_on_one_new_token,
    a_token_older_than_the_last_rotated_is_reuse_even_within_the_interval,
    reuse_after_the_interval_ends_the_whole_session,
    without_a_reuse_interval_a_second_use_is_reuse_at_once,
    tokens_never_issued_are_refused_and_harm_no_session,
    an_idle_session_expires_and_a_used_one_lives_on,
    a_session_ends_at_its_maximum_lifetime_however_used,
);

/// Long enough for a second-granular clock to move.
const TICK: Duration = Duration::from_millis(1100);

async fn a_refresh_rotates_the_token_and_moves_the_session_on(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let first = sign_in(client, &email).await;
    tokio::time::sleep(TICK).await;

    let second = refresh(client, first.refresh()).await.unwrap();
    assert_ne!(second.refresh(), first.refresh());
    assert!(second.refresh().starts_with("acr_"));
    assert_eq!(second.id(), first.id());
    assert_eq!(second.session.account_id, id);
    assert_same_time(
        &second.session.created_at,
        &first.session.created_at,
        "created_at",
    );
    assert!(
        time(&second.session.last_used_at) > time(&first.session.last_used_at),
        "last_used_at moves on: {:?}",
        second.session
    );
    assert!(time(&second.session.expires_at) > time(&first.session.expires_at));
    assert_same_time(
        &second.tokens.refresh_token_expires_at,
        &second.session.expires_at,
        "the refresh token's end",
    );
    // The user agent and address of the sign-in stay with the session.
    assert_eq!(second.session.user_agent, first.session.user_agent);
    assert_eq!(second.session.ip_address, first.session.ip_address);

    assert_ne!(second.access(), first.access());
    let (_, before) = jwt_parts(first.access());
    let (_, after) = jwt_parts(second.access());
    assert_eq!(after["sub"], before["sub"]);
    assert_eq!(after["sid"], before["sid"]);
    assert_ne!(after["jti"], before["jti"]);
    assert!(after["iat"].as_i64() > before["iat"].as_i64());
    // The shopper authenticated once, at sign-in.
    assert_eq!(after["auth_time"], before["auth_time"]);
    verify(client, second.access()).await.unwrap();
    // An access token of a live session stays good until it expires.
    verify(client, first.access()).await.unwrap();

    let third = refresh(client, second.refresh()).await.unwrap();
    assert!(![first.refresh(), second.refresh()].contains(&third.refresh()));
    let listed = crate::sessions::sessions_of(client, &id).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_same_session(&listed[0], &third.session);
}

async fn twenty_concurrent_refreshes_converge_on_one_new_token(backend: Backend) {
    let mut shop = Shop::start(backend, &[("MAX_CONCURRENT_REQUESTS", "1000")]).await;
    let (email, id) = shop.account().await;
    let held = sign_in(&mut shop.client, &email).await;

    // Each on a connection of its own, as twenty browser tabs would be.
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(crate::sessions::Client::new(shop.service.plaintext().await));
    }
    let calls = clients.into_iter().map(|mut client| {
        let token = held.refresh().to_owned();
        async move { refresh(&mut client, &token).await }
    });
    let answers: Vec<Held> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.unwrap_or_else(|status| panic!("a refresh refused: {status:?}")))
        .collect();
    let tokens: HashSet<&str> = answers.iter().map(Held::refresh).collect();
    assert_eq!(tokens.len(), 1, "one rotation, one new token: {tokens:?}");
    let new = answers[0].clone();
    assert_ne!(new.refresh(), held.refresh());
    assert!(answers.iter().all(|a| a.id() == held.id()));

    // A retry after a lost answer, within the interval: the same again.
    let client = &mut shop.client;
    let again = refresh(client, held.refresh()).await.unwrap();
    assert_eq!(again.refresh(), new.refresh());
    for answer in &answers {
        verify(client, answer.access()).await.unwrap();
    }
    assert_eq!(live_ids(client, &id).await, vec![held.id().to_owned()]);
    // The shared token carries the session on.
    let next = assert_live(client, &new, "after the burst").await;
    assert_ne!(next.refresh(), new.refresh());
}

async fn a_token_older_than_the_last_rotated_is_reuse_even_within_the_interval(backend: Backend) {
    let mut shop = Shop::start(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "60")]).await;
    let (email, _) = shop.account().await;
    let client = &mut shop.client;
    let first = sign_in(client, &email).await;
    let second = refresh(client, first.refresh()).await.unwrap();
    let third = refresh(client, second.refresh()).await.unwrap();

    // The token rotated last still answers its successor within the
    // interval; the one before it was rotated out twice: only a copy of it
    // can present it now, so it is reuse at once.
    let again = refresh(client, second.refresh()).await.unwrap();
    assert_eq!(again.refresh(), third.refresh());
    assert_refused(
        refresh(client, first.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        refresh(client, third.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    assert_refused(
        verify(client, third.access()).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
}

async fn reuse_after_the_interval_ends_the_whole_session(backend: Backend) {
    let mut shop = Shop::start(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "1")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let bystander = sign_in(client, &email).await;
    let stolen = sign_in(client, &email).await;
    let rotated = refresh(client, stolen.refresh()).await.unwrap();
    // Within the interval the old token still answers the same new one.
    let retried = refresh(client, stolen.refresh()).await.unwrap();
    assert_eq!(retried.refresh(), rotated.refresh());

    tokio::time::sleep(TICK * 2).await;
    assert_refused(
        refresh(client, stolen.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    // The whole session ended, its current token included.
    assert_refused(
        refresh(client, rotated.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    for access in [rotated.access(), stolen.access()] {
        assert_refused(
            verify(client, access).await,
            Code::Unauthenticated,
            "SESSION_REVOKED",
        );
    }
    assert_eq!(live_ids(client, &id).await, vec![bystander.id().to_owned()]);
    // The account's other session is not the thief's.
    assert_live(client, &bystander, "the other session").await;
}

async fn without_a_reuse_interval_a_second_use_is_reuse_at_once(backend: Backend) {
    let mut shop = Shop::start(backend, &[("REFRESH_TOKEN_REUSE_INTERVAL", "0")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let first = sign_in(client, &email).await;
    let second = refresh(client, first.refresh()).await.unwrap();
    assert_refused(
        refresh(client, first.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_REUSED",
    );
    assert_refused(
        refresh(client, second.refresh()).await,
        Code::Unauthenticated,
        "REFRESH_TOKEN_INVALID",
    );
    assert_refused(
        verify(client, second.access()).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    assert!(live_ids(client, &id).await.is_empty());
}

/// `token` with the character at `at` replaced by another of the same
/// alphabet.
fn altered(token: &str, at: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

async fn tokens_never_issued_are_refused_and_harm_no_session(backend: Backend) {
    let mut shop = Shop::start(backend, &[]).await;
    let (email, _) = shop.account().await;
    let client = &mut shop.client;
    let held = sign_in(client, &email).await;
    let genuine = held.refresh();
    let middle = genuine.len() / 2;
    let guesses = [
        String::new(),
        "acr_".to_owned(),
        "garbage".to_owned(),
        format!("acr_{}", "A".repeat(43)),
        format!("acr_{}", "A".repeat(10_000)),
        altered(genuine, middle),
        altered(genuine, genuine.len() - 1),
        format!("{genuine}A"),
        genuine[..genuine.len() - 1].to_owned(),
        genuine.replacen("acr_", "ACR_", 1),
        genuine.replacen("acr_", "", 1),
        format!("acr_{}", "ü".repeat(43)),
        held.access().to_owned(),
    ];
    for guess in &guesses {
        let answer = refresh(client, guess).await;
        assert!(answer.is_err(), "{guess:?} was taken");
        assert_refused(answer, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
        // Signing out with what was never issued is no error either.
        sign_out(client, guess).await.unwrap();
    }
    // No guess touched the session.
    assert_live(client, &held, "after the guesses").await;
}

async fn an_idle_session_expires_and_a_used_one_lives_on(backend: Backend) {
    let mut shop = Shop::start(backend, &[("SESSION_IDLE_TIMEOUT", "2")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let mut used = sign_in(client, &email).await;
    let idle = sign_in(client, &email).await;
    assert!(
        (time(&idle.session.expires_at) - time(&idle.session.last_used_at))
            .num_milliseconds()
            .abs()
            <= 2000 + 1000,
        "{:?}",
        idle.session
    );

    // Refreshed every second, a session outlives its idle timeout.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        used = refresh(client, used.refresh()).await.unwrap();
    }
    assert_refused(
        refresh(client, idle.refresh()).await,
        Code::Unauthenticated,
        "SESSION_EXPIRED",
    );
    assert_refused(
        verify(client, idle.access()).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    assert_eq!(live_ids(client, &id).await, vec![used.id().to_owned()]);
    assert_live(client, &used, "refreshed every second").await;
}

async fn a_session_ends_at_its_maximum_lifetime_however_used(backend: Backend) {
    let mut shop = Shop::start(backend, &[("SESSION_MAX_LIFETIME", "3")]).await;
    let (email, id) = shop.account().await;
    let client = &mut shop.client;
    let mut held = sign_in(client, &email).await;
    let created = time(&held.session.created_at);
    let ends = created + chrono::Duration::seconds(3);
    assert!(
        (time(&held.session.expires_at) - ends)
            .num_milliseconds()
            .abs()
            <= 1000,
        "{:?}",
        held.session
    );

    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        held = refresh(client, held.refresh()).await.unwrap();
        // However recently used, it ends at the latest three seconds in.
        assert!(time(&held.session.expires_at) <= ends + chrono::Duration::seconds(1));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_refused(
        refresh(client, held.refresh()).await,
        Code::Unauthenticated,
        "SESSION_EXPIRED",
    );
    assert_refused(
        verify(client, held.access()).await,
        Code::Unauthenticated,
        "SESSION_REVOKED",
    );
    assert!(live_ids(client, &id).await.is_empty());
}
