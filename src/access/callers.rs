//! The API keys file: callers by name, their scopes, the SHA-256 digests of
//! their keys and their quotas; and new keys for it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::scope::{Scope, Scopes};

/// Every key this service issues starts with it, so that a leaked key is
/// easy to recognise (secret scanners, logs).
pub const KEY_PREFIX: &str = "acs_";
/// Random bytes in a new key: 256 bits.
const KEY_BYTES: usize = 32;
/// Longest key looked at; anything longer is not one of ours.
const MAX_KEY_LEN: usize = 256;
/// Longest caller name: it is a metric label and a log field.
const MAX_NAME_LEN: usize = 253;
/// Names the service itself uses as metric labels and log fields: no
/// caller is configured under one, and no certificate claims one.
pub const RESERVED_NAMES: [&str; 3] = ["anonymous", "unauthenticated", "certificate"];

/// One calling service.
#[derive(Debug)]
pub struct Caller {
    /// The name its calls are logged under.
    pub name: Arc<str>,
    /// Its `caller` label in metrics: a configured name, or one of the
    /// [`RESERVED_NAMES`], so that label values stay bounded.
    pub label: &'static str,
    pub scopes: Scopes,
    /// Its quota across all RPCs, if it has one.
    pub requests_per_minute: Option<u32>,
}

/// A problem with the API keys file, naming the caller it concerns.
#[derive(Debug, thiserror::Error)]
#[error("API_KEYS_FILE {path}: {message}")]
pub struct CallersError {
    path: String,
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTable {
    #[serde(default)]
    callers: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallerTable {
    scopes: Vec<String>,
    #[serde(default)]
    key_sha256: Vec<String>,
    requests_per_minute: Option<i64>,
    /// Whether a client certificate bearing the name is this caller too;
    /// only a caller without keys is one by default.
    certificate: Option<bool>,
}

/// The configured callers, and the digest of each of their keys.
#[derive(Debug)]
pub struct Callers {
    callers: Vec<Entry>,
    /// (digest, index into `callers`).
    digests: Vec<([u8; 32], usize)>,
}

#[derive(Debug)]
struct Entry {
    caller: Arc<Caller>,
    /// A certificate naming the caller is believed. Off for a caller with
    /// keys unless the file says so: a caller's name is no secret, and the
    /// client CA may sign certificates for services that hold no key.
    by_certificate: bool,
}

impl Callers {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Callers, CallersError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| CallersError {
            path: shown.clone(),
            message: format!("cannot be read: {e}"),
        })?;
        Callers::parse(&text).map_err(|message| CallersError {
            path: shown,
            message,
        })
    }

    /// Parses the file's text; an error names the caller it concerns.
    pub fn parse(text: &str) -> Result<Callers, String> {
        let file: FileTable = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        if file.callers.is_empty() {
            return Err("defines no callers (expected [callers.NAME] tables)".into());
        }
        let mut callers = Vec::new();
        let mut digests: Vec<([u8; 32], usize)> = Vec::new();
        for (name, value) in file.callers {
            let fail = |m: String| format!("callers.{name}: {m}");
            check_name(&name).map_err(fail)?;
            let table =
                CallerTable::deserialize(value).map_err(|e| fail(one_line(&e.to_string())))?;
            let mut scopes = Vec::new();
            for raw in &table.scopes {
                let scope = Scope::parse(raw).ok_or_else(|| {
                    fail(format!(
                        "unknown scope {raw:?} (known: {})",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ))
                })?;
                scopes.push(scope);
            }
            let requests_per_minute = match table.requests_per_minute {
                None => None,
                Some(n) if n >= 1 && n <= i64::from(u32::MAX) => u32::try_from(n).ok(),
                Some(n) => {
                    return Err(fail(format!(
                        "requests_per_minute = {n}: must be between 1 and {} (leave it out for no quota)",
                        u32::MAX
                    )))
                }
            };
            let by_certificate = table.certificate.unwrap_or(table.key_sha256.is_empty());
            if !by_certificate && table.key_sha256.is_empty() {
                return Err(fail(
                    "certificate = false and no key_sha256: nothing could authenticate this caller"
                        .into(),
                ));
            }
            let index = callers.len();
            for raw in &table.key_sha256 {
                let digest = parse_digest(raw).ok_or_else(|| {
                    fail(
                        "key_sha256 holds a malformed digest: each entry must be 64 lower-case hex digits"
                            .into(),
                    )
                })?;
                if digests.iter().any(|(d, _)| *d == digest) {
                    return Err(fail(
                        "key_sha256 repeats a digest already listed (each key belongs to one caller)"
                            .into(),
                    ));
                }
                digests.push((digest, index));
            }
            // Bounded by the file; a label must live as long as the metrics.
            let label: &'static str = Box::leak(name.clone().into_boxed_str());
            callers.push(Entry {
                caller: Arc::new(Caller {
                    name: Arc::from(name.as_str()),
                    label,
                    scopes: Scopes::of(scopes),
                    requests_per_minute,
                }),
                by_certificate,
            });
        }
        Ok(Callers { callers, digests })
    }

    /// The caller holding `key`. Every configured digest is compared, in
    /// constant time, whatever matches: timing tells nothing about which
    /// key, or how much of it, was right.
    pub fn by_key(&self, key: &str) -> Option<&Arc<Caller>> {
        if key.len() > MAX_KEY_LEN {
            return None;
        }
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found = u64::MAX;
        for (digest, index) in &self.digests {
            let index = u64::try_from(*index).unwrap_or(u64::MAX);
            found = u64::conditional_select(&found, &index, digest.ct_eq(&presented));
        }
        usize::try_from(found)
            .ok()
            .and_then(|i| self.callers.get(i))
            .map(|e| &e.caller)
    }

    /// The caller a verified client certificate bearing `name` stands for:
    /// one without keys, or with `certificate = true`; never a reserved name.
    pub fn by_certificate(&self, name: &str) -> Option<&Arc<Caller>> {
        if is_reserved(name) {
            return None;
        }
        self.callers
            .iter()
            .find(|e| e.by_certificate && &*e.caller.name == name)
            .map(|e| &e.caller)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Caller>> {
        self.callers.iter().map(|e| &e.caller)
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A caller name: a tidy metric label, and what a client certificate's
/// common name or DNS name can hold (`orders.shop.svc.cluster.local`, a
/// quoted TOML key).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!(
            "a caller name must be 1 to {MAX_NAME_LEN} characters"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err("a caller name may hold only ASCII letters, digits, '-', '_' and '.'".into());
    }
    if is_reserved(name) {
        return Err(format!("{name:?} is reserved by the service"));
    }
    Ok(())
}

/// One of the [`RESERVED_NAMES`], in any case: a log reader searching for
/// `anonymous` should not have to think of `Anonymous`.
pub fn is_reserved(name: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name))
}

fn parse_digest(raw: &str) -> Option<[u8; 32]> {
    let bytes = raw.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex SHA-256 of a key, as the API keys file holds it.
pub fn key_digest(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A fresh key: [`KEY_PREFIX`] and 32 random bytes, base64url.
pub fn new_key() -> String {
    let mut bytes = [0u8; KEY_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The API keys file entry for `name` holding `key`.
pub fn file_entry(
    name: &str,
    scopes: &[Scope],
    key: &str,
    requests_per_minute: Option<u32>,
) -> String {
    let scopes: Vec<String> = scopes.iter().map(|s| format!("{:?}", s.as_str())).collect();
    // A dotted name is quoted: bare, TOML would read it as nested tables.
    let key_name = if name.contains('.') {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    };
    let mut entry = format!(
        "[callers.{key_name}]\nscopes = [{}]\nkey_sha256 = [\"{}\"]\n",
        scopes.join(", "),
        key_digest(key)
    );
    if let Some(n) = requests_per_minute {
        entry.push_str(&format!("requests_per_minute = {n}\n"));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "acs_test-key";

    fn file(body: &str) -> Result<Callers, String> {
        Callers::parse(body)
    }

    #[test]
    fn a_new_key_is_long_random_and_its_entry_parses_back() {
        let key = new_key();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 43);
        assert_ne!(key, new_key());
        let entry = file_entry(
            "checkout",
            &[Scope::AccountsRegister, Scope::AccountsRead],
            &key,
            Some(600),
        );
        assert!(!entry.contains(&key), "the entry must not hold the key");
        let callers = file(&entry).unwrap();
        let caller = callers.by_key(&key).expect("the key is known");
        assert_eq!(&*caller.name, "checkout");
        assert!(caller.scopes.grant(Scope::AccountsRead));
        assert!(!caller.scopes.grant(Scope::AccountsConfirm));
        assert_eq!(caller.requests_per_minute, Some(600));
        assert!(callers.by_key(&new_key()).is_none());
        assert!(callers.by_key("").is_none());
        assert!(callers.by_key(&"a".repeat(10_000)).is_none());
        // A service's DNS name is a name too, quoted in the entry.
        let entry = file_entry("orders.shop.svc", &[Scope::AccountsRead], &key, None);
        assert!(
            entry.starts_with("[callers.\"orders.shop.svc\"]"),
            "{entry}"
        );
        let callers = file(&entry).unwrap();
        assert_eq!(&*callers.by_key(&key).unwrap().name, "orders.shop.svc");
    }

    #[test]
    fn rotation_keeps_every_listed_key_valid() {
        let entry = format!(
            "[callers.a]\nscopes = []\nkey_sha256 = [\"{}\", \"{}\"]\n[callers.b]\nscopes = [\"events:read\"]\nkey_sha256 = [\"{}\"]\n",
            key_digest("old"),
            key_digest("new"),
            key_digest("b-key")
        );
        let callers = file(&entry).unwrap();
        assert_eq!(&*callers.by_key("old").unwrap().name, "a");
        assert_eq!(&*callers.by_key("new").unwrap().name, "a");
        assert_eq!(&*callers.by_key("b-key").unwrap().name, "b");
    }

    #[test]
    fn mistakes_are_errors_naming_the_caller() {
        let digest = key_digest(KEY);
        let cases = [
            (
                format!("[callers.shop]\nscopes = [\"accounts:everything\"]\nkey_sha256 = [\"{digest}\"]"),
                "callers.shop: unknown scope",
            ),
            (
                "[callers.shop]\nscopes = []\nkey_sha256 = [\"abc\"]".to_owned(),
                "callers.shop: key_sha256 holds a malformed digest",
            ),
            (
                format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{}\"]", digest.to_uppercase()),
                "callers.shop: key_sha256 holds a malformed digest",
            ),
            (
                format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{digest}\"]\nkey = \"x\""),
                "callers.shop: unknown field `key`",
            ),
            (
                format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{digest}\"]\nrequests_per_minute = 0"),
                "callers.shop: requests_per_minute = 0",
            ),
            (
                format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{digest}\"]\nrequests_per_minute = -5"),
                "callers.shop: requests_per_minute = -5",
            ),
            (
                format!("[callers.shop]\nkey_sha256 = [\"{digest}\"]"),
                "callers.shop: missing field `scopes`",
            ),
            (
                format!("[callers.a]\nscopes = []\nkey_sha256 = [\"{digest}\"]\n[callers.b]\nscopes = []\nkey_sha256 = [\"{digest}\"]"),
                "callers.b: key_sha256 repeats",
            ),
            (
                format!("[callers.anonymous]\nscopes = []\nkey_sha256 = [\"{digest}\"]"),
                "callers.anonymous: \"anonymous\" is reserved",
            ),
            (
                "[callers.unauthenticated]\nscopes = []".to_owned(),
                "callers.unauthenticated: \"unauthenticated\" is reserved",
            ),
            (
                "[callers.certificate]\nscopes = []\ncertificate = true".to_owned(),
                "callers.certificate: \"certificate\" is reserved",
            ),
            (
                "[callers.Anonymous]\nscopes = []".to_owned(),
                "callers.Anonymous: \"Anonymous\" is reserved",
            ),
            (
                "[callers.shop]\nscopes = []\ncertificate = false".to_owned(),
                "callers.shop: certificate = false and no key_sha256",
            ),
            (
                format!("[callers.shop]\nscopes = []\nkey_sha256 = [\"{digest}\"]\ncertificate = \"yes\""),
                "callers.shop: invalid type",
            ),
            (
                format!("[callers.\"a b\"]\nscopes = []\nkey_sha256 = [\"{digest}\"]"),
                "callers.a b: a caller name may hold only",
            ),
            ("".to_owned(), "defines no callers"),
            ("[caller.shop]\nscopes = []".to_owned(), "unknown field `caller`"),
            ("not toml at all".to_owned(), ""),
        ];
        for (text, expected) in cases {
            let err = file(&text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: got {err:?}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn a_caller_may_have_no_key_for_client_certificates() {
        let callers = file("[callers.orders]\nscopes = [\"accounts:read\"]\n").unwrap();
        assert!(callers.by_certificate("orders").is_some());
        assert!(callers.by_key("").is_none());
    }

    #[test]
    fn a_certificate_names_a_caller_with_keys_only_when_the_file_says_so() {
        let text = format!(
            "{}{}{}",
            file_entry("adminsvc", &[Scope::AccountsAdmin], "acs_admin", None),
            file_entry("billing", &[Scope::AccountsRead], "acs_billing", None),
            "certificate = true\n[callers.orders]\nscopes = []\ncertificate = true\n\
             [callers.crm]\nscopes = []\nkey_sha256 = []\n",
        );
        let callers = file(&text).unwrap();
        assert!(callers.by_certificate("adminsvc").is_none());
        assert_eq!(&*callers.by_key("acs_admin").unwrap().name, "adminsvc");
        assert_eq!(&*callers.by_certificate("billing").unwrap().name, "billing");
        assert_eq!(&*callers.by_key("acs_billing").unwrap().name, "billing");
        assert!(callers.by_certificate("orders").is_some());
        assert!(callers.by_certificate("crm").is_some());
        assert!(callers.by_certificate("stranger").is_none());
        for reserved in ["anonymous", "unauthenticated", "certificate", "ANONYMOUS"] {
            assert!(is_reserved(reserved));
            assert!(callers.by_certificate(reserved).is_none(), "{reserved}");
        }
        assert!(!is_reserved("anonymous2"));
    }
}
