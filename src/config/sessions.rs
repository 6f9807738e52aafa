//! Session settings: how long a sign-in lasts, how refreshes converge, and
//! how access tokens are signed, addressed and published.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::parse::{bounded, bounded_seconds, not_empty};
use super::Settings;

/// The longest a session duration may be: one year.
pub const MAX_SESSION_SECS: u64 = 365 * 86_400;

#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sessions")]
pub struct SessionSettings {
    /// Seconds a session lives without a refresh; every refresh starts them again.
    #[arg(long, env, default_value = "1209600",
        value_parser = bounded_seconds(1, MAX_SESSION_SECS))]
    pub session_idle_timeout: Duration,
    /// Seconds a session lives at most after sign-in, however often it is refreshed.
    #[arg(long, env, default_value = "7776000",
        value_parser = bounded_seconds(1, MAX_SESSION_SECS))]
    pub session_max_lifetime: Duration,
    /// Seconds after a rotation during which the rotated-out refresh token
    /// still answers the same new one (tabs refreshing at once, a retry
    /// after a lost answer); after it, its use revokes the session.
    #[arg(long, env, default_value = "10", value_parser = bounded_seconds(0, 60))]
    pub refresh_token_reuse_interval: Duration,
    /// Live sessions one account may hold; a sign-in beyond it ends the
    /// least recently used one.
    #[arg(long, env, default_value = "100", value_parser = bounded::<u32>(1, 10_000))]
    pub sessions_per_account: u32,
    /// Seconds an access token is valid. Services that verify offline see a
    /// sign-out only when it runs out.
    #[arg(long, env, default_value = "300", value_parser = bounded_seconds(60, 3600))]
    pub access_token_ttl: Duration,
    /// `iss` of access tokens. Unset or empty: PUBLIC_BASE_URL as written
    /// (a bare origin with no `/` after the host).
    #[arg(long, env, default_value = "")]
    pub access_token_issuer: String,
    /// `aud` of access tokens: what verifying services expect.
    #[arg(long, env, default_value = "ecoms", value_parser = not_empty)]
    pub access_token_audience: String,
    /// PEM file of the Ed25519 key (PKCS#8) that signs access tokens, alone.
    /// Unset: keys derived from SECRET_KEY and SECRET_KEY_PREVIOUS, which
    /// rotate with them.
    #[arg(long, env)]
    pub access_token_signing_key_file: Option<PathBuf>,
}

/// How long sessions live, how refreshes converge, and how many an account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// A session ends this long after its last refresh.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, however it is used.
    pub max_lifetime: Duration,
    /// How long a rotated-out refresh token still answers its successor.
    pub reuse_interval: Duration,
    /// Live sessions an account may hold.
    pub per_account: u32,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: Duration::from_secs(14 * 86_400),
            max_lifetime: Duration::from_secs(90 * 86_400),
            reuse_interval: Duration::from_secs(10),
            per_account: 100,
        }
    }
}

impl SessionSettings {
    /// The session policy these settings ask for.
    pub fn policy(&self) -> SessionPolicy {
        SessionPolicy {
            idle_timeout: self.session_idle_timeout,
            max_lifetime: self.session_max_lifetime,
            reuse_interval: self.refresh_token_reuse_interval,
            per_account: self.sessions_per_account,
        }
    }

    /// ACCESS_TOKEN_SIGNING_KEY_FILE, unless unset or empty.
    pub fn signing_key_file(&self) -> Option<&Path> {
        self.access_token_signing_key_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
    }
}

impl Settings {
    /// The `iss` of access tokens: ACCESS_TOKEN_ISSUER, or PUBLIC_BASE_URL.
    pub fn access_token_issuer(&self) -> String {
        match self.sessions.access_token_issuer.trim() {
            // As configured: the URL type adds a `/` to a bare origin,
            // which the operator did not write and a verifier would not expect.
            "" => match self.server.public_base_url.0.path() {
                "/" => self
                    .server
                    .public_base_url
                    .as_str()
                    .trim_end_matches('/')
                    .to_owned(),
                _ => self.server.public_base_url.as_str().to_owned(),
            },
            issuer => issuer.to_owned(),
        }
    }
}
