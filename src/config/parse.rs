//! Setting values and their parsers: each checks one value and says what is
//! wrong with it, never repeating a value that may be secret.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::MAX_DURATION;

/// IP addresses, as a comma-separated list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpList(pub Vec<IpAddr>);

/// An http(s) URL with a host; `Debug` shows it as written.
#[derive(Clone, PartialEq, Eq)]
pub struct WebUrl(pub Url);

impl WebUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for WebUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0.as_str(), f)
    }
}

/// Which database a URL names, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// DATABASE_URL: its kind, and the URL itself, which may hold a password.
#[derive(Debug, Clone)]
pub struct DatabaseUrl {
    pub kind: DatabaseKind,
    pub url: SecretUrl,
}

impl DatabaseUrl {
    pub fn parse(raw: &str) -> Result<DatabaseUrl, String> {
        let raw = raw.trim();
        let kind = if raw.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            return Err("must start with sqlite:// or postgres:// (value not shown: it may hold a password)".into());
        };
        Ok(DatabaseUrl {
            kind,
            url: SecretUrl::new(raw),
        })
    }

    pub fn expose(&self) -> &str {
        self.url.expose()
    }
}

/// A URL that may carry credentials: `Debug` shows it with them redacted.
#[derive(Clone)]
pub struct SecretUrl {
    shown: String,
    secret: SecretString,
}

impl SecretUrl {
    fn new(raw: &str) -> SecretUrl {
        SecretUrl {
            shown: redact_url(raw),
            secret: SecretString::from(raw.to_owned()),
        }
    }

    pub fn expose(&self) -> &str {
        self.secret.expose_secret()
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.shown, f)
    }
}

/// A value echoed in an error, cut short so that one line stays one line.
pub(super) fn shown(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(40).collect()
}

pub(super) fn switch(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => Err(format!("'{}' is not on or off", shown(raw))),
    }
}

/// A parser of whole numbers within `min..=max`.
pub(super) fn bounded<T: TryFrom<u64>>(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<T, String> + Clone {
    move |raw| {
        let n: u64 = raw
            .trim()
            .parse()
            .map_err(|_| format!("'{}' is not a non-negative whole number", shown(raw)))?;
        let out_of_range = || format!("must be between {min} and {max}");
        if !(min..=max).contains(&n) {
            return Err(out_of_range());
        }
        T::try_from(n).map_err(|_| out_of_range())
    }
}

/// A parser of whole seconds within `min..=max`, as a duration.
pub(super) fn bounded_seconds(
    min: u64,
    max: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    let count = bounded::<u64>(min, max);
    move |raw| count(raw).map(Duration::from_secs)
}

/// A duration in plain seconds, at most [`MAX_DURATION`]; fractions are
/// allowed (tests use short delays).
pub(super) fn seconds(raw: &str) -> Result<Duration, String> {
    let secs: f64 = raw
        .trim()
        .parse()
        .map_err(|_| format!("'{}' is not a number of seconds", shown(raw)))?;
    let d = Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("'{}' is not a non-negative number of seconds", shown(raw)))?;
    if d > MAX_DURATION {
        return Err(format!(
            "must be at most {} seconds (one week)",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

pub(super) fn positive_seconds(raw: &str) -> Result<Duration, String> {
    match seconds(raw)? {
        d if d.is_zero() => Err("must be more than zero seconds".into()),
        d => Ok(d),
    }
}

/// A retention: plain days, or a number with a unit (s, m, h, d); more
/// than one second and at most ten years.
pub(super) fn retention(raw: &str) -> Result<Duration, String> {
    let trimmed = raw.trim();
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&trimmed[..i], c),
        _ => (trimmed, 'd'),
    };
    let unit_secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => {
            return Err(format!(
                "'{}' has an unknown unit (s, m, h or d)",
                shown(raw)
            ))
        }
    };
    let n: u64 = digits.trim().parse().map_err(|_| {
        format!(
            "'{}' is not a whole number of days, or one with a unit",
            shown(raw)
        )
    })?;
    let secs = n.saturating_mul(unit_secs);
    if !(1..=3650 * 86_400).contains(&secs) {
        return Err("must be at least one second and at most 3650 days".into());
    }
    Ok(Duration::from_secs(secs))
}

pub(super) fn days(raw: &str) -> Result<Duration, String> {
    Ok(Duration::from_secs(bounded::<u64>(0, 3650)(raw)? * 86_400))
}

pub(super) fn address(raw: &str) -> Result<SocketAddr, String> {
    raw.trim()
        .parse()
        .map_err(|_| format!("'{}' is not an IP:PORT address", shown(raw)))
}

pub(super) fn http_url(raw: &str) -> Result<WebUrl, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("not a URL ({e})"))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(WebUrl(url)),
        _ => Err("must be an http:// or https:// URL with a host".into()),
    }
}

/// An empty SMTP_URL is no URL, as if unset.
pub(super) fn smtp_url(raw: &str) -> Result<SecretUrl, String> {
    match Url::parse(raw.trim()) {
        _ if raw.trim().is_empty() => Ok(SecretUrl::new("")),
        Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => {
            Ok(SecretUrl::new(raw.trim()))
        }
        // The value is not echoed: it may hold a password.
        _ => Err(
            "must look like smtp://[user:pass@]host[:port][?tls=required] or smtps://host".into(),
        ),
    }
}

pub(super) fn secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}

pub(super) fn mailbox(raw: &str) -> Result<Mailbox, String> {
    raw.trim()
        .parse()
        .map_err(|e| format!("'{}' is not an e-mail address ({e})", shown(raw)))
}

pub(super) fn not_empty(raw: &str) -> Result<String, String> {
    match raw.trim() {
        "" => Err("must not be empty".into()),
        s => Ok(s.to_owned()),
    }
}

/// A BCP 47 language tag, in canonical form.
pub(super) fn language_tag(raw: &str) -> Result<String, String> {
    crate::domain::canonical_locale(raw)
        .ok_or_else(|| "must be a language tag such as en, de or fr-CA".into())
}

pub(super) fn ip_list(raw: &str) -> Result<IpList, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| format!("'{}' is not an IP address", shown(s)))
        })
        .collect::<Result<_, _>>()
        .map(IpList)
}

/// A URL with every credential replaced, for display: the user name and
/// password, and any query parameter that may carry a secret (`password`,
/// `sslpassword`, tokens, keys).
pub fn redact_url(raw: &str) -> String {
    const REDACTED: &str = "REDACTED";
    let Ok(mut url) = Url::parse(raw) else {
        return "[unparsable URL]".to_owned();
    };
    if !url.username().is_empty() {
        let _ = url.set_username(REDACTED);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(REDACTED));
    }
    if url.query().is_some() {
        let secret = |key: &str| {
            let key = key.to_ascii_lowercase();
            ["pass", "secret", "token", "key", "auth", "credential"]
                .iter()
                .any(|s| key.contains(s))
        };
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let value = if secret(&k) {
                    REDACTED.to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), value)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}
