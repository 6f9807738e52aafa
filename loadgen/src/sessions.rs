//! The session calls under load (SignIn, chained RefreshSession,
//! VerifyAccessToken, ListSessions) and what they need prepared: a password
//! hash to seed verified accounts with, and access tokens for seeded sessions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_service::auth::{hash_blocking, AccessTokens, Keyring, SigningKeys};
use account_service::proto::account::v1::account_service_client::AccountServiceClient;
use account_service::proto::account::v1::{
    ClientInfo, ListSessionsRequest, ListSessionsResponse, RefreshSessionRequest,
    RefreshSessionResponse, SignInRequest, SignInResponse, VerifyAccessTokenRequest,
    VerifyAccessTokenResponse,
};
use anyhow::Context;
use bytes::Bytes;
use prost::Message;
use tonic::transport::Channel;
use tonic::Status;

use crate::{
    connect, drive, drive_expecting, drive_lean, finish, h2grpc, read_ids, Load, PASSWORD,
};

pub const REFRESH_SESSION: &str = "/account.v1.AccountService/RefreshSession";
pub const VERIFY_ACCESS_TOKEN: &str = "/account.v1.AccountService/VerifyAccessToken";
pub const LIST_SESSIONS: &str = "/account.v1.AccountService/ListSessions";

/// How long minted access tokens verify: longer than any run.
const MINTED_TTL: Duration = Duration::from_secs(3600);

/// Prints one argon2id hash of [`PASSWORD`] with the service's parameters,
/// so that a script can seed verified accounts that SignIn accepts without
/// paying for one hash per account.
pub fn password_hash() -> anyhow::Result<()> {
    println!("{}", hash_blocking(PASSWORD)?.expose());
    Ok(())
}

/// The non-empty lines of a file, trimmed; at least one.
pub fn read_lines(path: &str, what: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!lines.is_empty(), "{path} holds no {what}");
    Ok(lines)
}

/// `account_id session_id` (separated by white space): the session of one
/// line of a `mint-access-tokens` input.
fn parse_session_line(line: &str) -> anyhow::Result<(uuid::Uuid, uuid::Uuid)> {
    let mut fields = line.split_whitespace();
    let (Some(account), Some(session), None) = (fields.next(), fields.next(), fields.next()) else {
        anyhow::bail!("a line must hold an account id and a session id: {line:?}");
    };
    Ok((
        uuid::Uuid::parse_str(account).with_context(|| format!("account id {account:?}"))?,
        uuid::Uuid::parse_str(session).with_context(|| format!("session id {session:?}"))?,
    ))
}

/// The `sid` claim of an access token, read without checking its signature
/// or expiry (the service does that): what a VerifyAccessToken answer must
/// name.
fn session_of(token: &str) -> anyhow::Result<String> {
    let mut validation = jsonwebtoken::Validation::default();
    validation.insecure_disable_signature_validation();
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(&[]),
        &validation,
    )
    .context("not a JWT")?
    .claims;
    claims
        .get("sid")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("the token has no sid claim")
}

/// Prints an access token, valid for an hour, for each `account_id
/// session_id` line of `sessions`, signed with the key the service derives
/// from `secret_key` for `issuer` and `audience`.
pub fn mint_access_tokens(
    sessions: &str,
    secret_key: &str,
    issuer: &str,
    audience: &str,
) -> anyhow::Result<()> {
    let keys = SigningKeys::derive(&Keyring::new(secret_key.as_bytes(), None));
    let tokens = AccessTokens::new(keys, issuer.to_owned(), audience.to_owned(), MINTED_TTL);
    let now = chrono::Utc::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in read_lines(sessions, "sessions")? {
        let (account, session) = parse_session_line(&line)?;
        let token = tokens.issue(account, session, now, now)?.token;
        std::io::Write::write_all(&mut out, format!("{token}\n").as_bytes())?;
    }
    std::io::Write::flush(&mut out).context("cannot write the tokens")
}

/// The framed VerifyAccessToken request of the first token in a file: the
/// body h2load sends.
pub fn verify_body(tokens: &str) -> anyhow::Result<Bytes> {
    let token = read_lines(tokens, "access tokens")?.remove(0);
    Ok(h2grpc::message(&VerifyAccessTokenRequest {
        access_token: token,
    }))
}

fn client_info() -> Option<ClientInfo> {
    Some(ClientInfo {
        user_agent: "account-loadgen".into(),
        ip_address: "203.0.113.7".into(),
    })
}

async fn sign_in_once(channel: Channel, email: String) -> Result<SignInResponse, Status> {
    let answer = AccountServiceClient::new(channel)
        .sign_in(SignInRequest {
            email,
            password: PASSWORD.into(),
            client: client_info(),
        })
        .await?
        .into_inner();
    match &answer.tokens {
        Some(t) if !t.access_token.is_empty() && !t.refresh_token.is_empty() => Ok(answer),
        _ => Err(Status::internal("SignIn answered no tokens")),
    }
}

/// SignIn with the right password, cycling through the verified accounts
/// whose addresses are in `emails`: one argon2id check and one new session
/// per call.
pub async fn sign_in(load: &Load, emails: &str) -> anyhow::Result<()> {
    let emails = Arc::new(read_lines(emails, "addresses")?);
    let report = drive("sign_in", load, move |i, channel| {
        let email = emails[(i as usize) % emails.len()].clone();
        async move { sign_in_once(channel, email).await.map(drop) }
    })
    .await?;
    finish(&report, load)
}

/// One session per call in flight, signed in before the clock starts (from
/// the addresses in `emails`, in turn), then RefreshSession again and again:
/// each call takes a session nobody is refreshing, presents the refresh
/// token its previous answer gave, and puts the session back with the new
/// one. So every session is a chain of rotations, as one browser's.
pub async fn refresh(load: &Load, emails: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        load.rate.is_none(),
        "refresh runs at a fixed concurrency: each call in flight holds a session"
    );
    let emails = read_lines(emails, "addresses")?;
    let channel = connect(&Load {
        connections: 1,
        ..load.clone()
    })
    .await?
    .remove(0);
    let mut tokens = Vec::with_capacity(load.concurrency.max(1));
    for n in 0..load.concurrency.max(1) {
        let email = emails[n % emails.len()].clone();
        let answer = sign_in_once(channel.clone(), email)
            .await
            .context("cannot sign in the sessions to refresh")?;
        tokens.extend(answer.tokens.map(|t| t.refresh_token));
    }
    let free = Arc::new(Mutex::new(tokens));
    let report = drive_lean(
        "refresh",
        load,
        REFRESH_SESSION,
        move |_, connection, uri| {
            let free = Arc::clone(&free);
            async move {
                let taken = free.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(token) = taken else {
                    return Err(Status::internal("no session is free"));
                };
                let request = h2grpc::message(&RefreshSessionRequest {
                    refresh_token: token.clone(),
                });
                let answer = match connection.unary(&uri, request).await {
                    Ok(body) => successor(body, &token)
                        .ok_or_else(|| Status::internal("RefreshSession answered no new token")),
                    Err(status) => Err(status),
                };
                // After a failure the old token goes back: presented again
                // within the reuse interval it answers the same successor.
                let (next, result) = match answer {
                    Ok(next) => (next, Ok(())),
                    Err(status) => (token, Err(status)),
                };
                free.lock().unwrap_or_else(|p| p.into_inner()).push(next);
                result
            }
        },
    )
    .await?;
    finish(&report, load)
}

/// The new refresh token of a RefreshSession answer, unless it holds none
/// or the one presented.
fn successor(answer: Bytes, presented: &str) -> Option<String> {
    let token = RefreshSessionResponse::decode(answer)
        .ok()?
        .tokens?
        .refresh_token;
    (!token.is_empty() && token != presented).then_some(token)
}

/// VerifyAccessToken, cycling through the tokens in `tokens`; each answer
/// must name the session of the token asked about.
pub async fn verify(load: &Load, tokens: &str) -> anyhow::Result<()> {
    // Every request is built before the clock starts.
    let calls: Vec<(String, Bytes)> = read_lines(tokens, "access tokens")?
        .into_iter()
        .map(|token| {
            let sid = session_of(&token)?;
            let request = h2grpc::message(&VerifyAccessTokenRequest {
                access_token: token,
            });
            Ok((sid, request))
        })
        .collect::<anyhow::Result<_>>()?;
    let report = drive_expecting(
        "verify_token",
        load,
        VERIFY_ACCESS_TOKEN,
        calls,
        |sid, answer: VerifyAccessTokenResponse| {
            (answer.session_id == sid)
                .then_some(())
                .ok_or("the answer is not the token's session")
        },
    )
    .await?;
    finish(&report, load)
}

/// ListSessions, cycling through the account ids in `ids`; every session
/// listed must be the account's.
pub async fn list(load: &Load, ids: &str) -> anyhow::Result<()> {
    let calls: Vec<(String, Bytes)> = read_ids(ids)?
        .into_iter()
        .map(|id| {
            let id = id.to_string();
            let request = h2grpc::message(&ListSessionsRequest {
                account_id: id.clone(),
            });
            (id, request)
        })
        .collect();
    let report = drive_expecting(
        "list_sessions",
        load,
        LIST_SESSIONS,
        calls,
        |id, answer: ListSessionsResponse| {
            (answer.sessions.iter().all(|s| s.account_id == id))
                .then_some(())
                .ok_or("a listed session is another account's")
        },
    )
    .await?;
    finish(&report, load)
}

#[cfg(test)]
mod tests;
