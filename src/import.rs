//! Importing shoppers exported from the Django app (JSON Lines), with their
//! password hashes as Django wrote them; no mail is sent.

use std::io::{BufRead, Write};

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::{hash_cost_bounds, hash_cost_within_bounds, is_supported_hash};
use crate::domain::{Account, Profile, RegistrationForm};
use crate::storage::{Storage, StorageError};

/// One exported account, with the Django model's field names. Other fields
/// (`is_staff`, `last_login`, …) are ignored; missing or null text is empty.
#[derive(Debug, Deserialize)]
struct DjangoRow {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    phone_number: Option<String>,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    verified: Option<bool>,
    #[serde(default)]
    term_and_condition: Option<bool>,
    #[serde(default)]
    created_from: Option<String>,
    #[serde(default)]
    date_joined: Option<String>,
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub imported: u64,
    /// Already there (same id or address): an earlier run imported them.
    pub present: u64,
    pub failed: u64,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows: {} imported, {} already present, {} failed",
            self.rows, self.imported, self.present, self.failed
        )
    }
}

/// Why a row was skipped: never its content, which holds a password hash.
enum RowError {
    Invalid(String),
    Storage(StorageError),
}

/// Imports every line of `input`, reporting each skipped row, and each
/// Django id that is not a UUID with the id it was given, to `out`;
/// `progress` is told of each row done. Stops at the first storage error
/// (the rows before it stay imported; running again skips them).
pub async fn import_django(
    storage: &dyn Storage,
    input: impl BufRead,
    out: &mut dyn Write,
    progress: &dyn Fn(u64),
) -> Result<ImportReport, anyhow::Error> {
    let mut report = ImportReport::default();
    // Lines are split as bytes and decoded one by one: a line that is not
    // UTF-8 is one bad row, not the end of the import.
    for (index, line) in input.split(b'\n').enumerate() {
        let number = index + 1;
        let mut line = line.map_err(|e| anyhow::anyhow!("cannot read line {number}: {e}"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        let line = match String::from_utf8(line) {
            Ok(line) => line,
            Err(e) => {
                report.rows += 1;
                report.failed += 1;
                let at = e.utf8_error().valid_up_to() + 1;
                writeln!(
                    out,
                    "line {number}: skipped: not UTF-8 text (invalid byte at position {at})"
                )?;
                progress(report.rows);
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        report.rows += 1;
        match import_row(storage, &line).await {
            Ok(Imported { inserted, mapped }) => {
                if inserted {
                    report.imported += 1;
                } else {
                    report.present += 1;
                }
                if let Some((django_id, id)) = mapped {
                    writeln!(out, "line {number}: id {django_id} -> {id}")?;
                }
            }
            Err(RowError::Invalid(why)) => {
                report.failed += 1;
                writeln!(out, "line {number}: skipped: {why}")?;
            }
            Err(RowError::Storage(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "line {number}: the database failed; {report} before it"
                )));
            }
        }
        progress(report.rows);
    }
    Ok(report)
}

/// The id an account with a Django id that is not a UUID gets: the same on
/// every run (a UUIDv8 from a digest of the Django id), so that importing
/// the same export again finds the account by its id even after its address
/// changed, and never brings back one that was deleted (its tombstone
/// keeps the id).
fn mapped_id(django_id: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"account-service django id\0")
        .chain_update(django_id.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

struct Imported {
    inserted: bool,
    /// (the Django id, the id the account has here) when they differ.
    mapped: Option<(String, Uuid)>,
}

async fn import_row(storage: &dyn Storage, line: &str) -> Result<Imported, RowError> {
    let row: DjangoRow = serde_json::from_str(line).map_err(|e| {
        // The position only: the line itself holds a password hash.
        RowError::Invalid(format!(
            "not an account object (JSON error at column {})",
            e.column()
        ))
    })?;
    let text = |v: Option<String>| v.unwrap_or_default();
    let form = RegistrationForm {
        email: text(row.email),
        username: text(row.username),
        address: text(row.address),
        first_name: text(row.first_name),
        last_name: text(row.last_name),
        phone_number: text(row.phone_number),
        created_from: text(row.created_from),
        ..RegistrationForm::default()
    };
    let profile = Profile::parse(&form).map_err(|e| RowError::Invalid(e.to_string()))?;
    let hash = row.password.unwrap_or_default();
    if !is_supported_hash(&hash) {
        return Err(RowError::Invalid(
            "password: not a supported hash (pbkdf2_sha256 or argon2)".into(),
        ));
    }
    if !hash_cost_within_bounds(&hash) {
        return Err(RowError::Invalid(format!(
            "password: the hash's cost is outside what Django produces ({})",
            hash_cost_bounds()
        )));
    }
    let now = Utc::now().trunc_subsecs(6);
    let created_at = match row.date_joined.as_deref() {
        None | Some("") => now,
        Some(raw) => parse_date(raw)
            .ok_or_else(|| RowError::Invalid("date_joined: not a date and time".into()))?,
    };
    let (id, django_id) = match &row.id {
        Some(serde_json::Value::String(s)) => match Uuid::parse_str(s) {
            Ok(id) => (id, None),
            Err(_) => (mapped_id(s), Some(s.clone())),
        },
        Some(serde_json::Value::Number(n)) => (mapped_id(&n.to_string()), Some(n.to_string())),
        None | Some(serde_json::Value::Null) => (Uuid::now_v7(), None),
        Some(_) => return Err(RowError::Invalid("id: not a UUID or a number".into())),
    };
    let account = Account {
        id,
        email: profile.email.as_str().to_owned(),
        username: profile.username,
        first_name: profile.first_name,
        last_name: profile.last_name,
        phone_number: profile.phone_number,
        address: profile.address,
        verified: row.verified.unwrap_or(false),
        term_and_condition: row.term_and_condition.unwrap_or(false),
        created_from: profile.created_from,
        locale: String::new(),
        created_at,
        updated_at: now,
        totp_enabled: false,
        // A Django `image` names a file in that site's storage, which this
        // service cannot read: shoppers upload theirs again.
        image: None,
    };
    let inserted = storage
        .import_account(&account, &hash)
        .await
        .map_err(RowError::Storage)?;
    if !inserted {
        // Either this row was imported before (its id is taken), or another
        // account already has its address: Django compares addresses with
        // regard to case, this service without, so two Django shoppers can
        // clash here. The second is reported, not taken for the first.
        match storage.account_by_email(&account.email).await {
            Ok(existing) if existing.id != id => {
                return Err(RowError::Invalid(
                    "email: another account already has this address".into(),
                ))
            }
            Ok(_) | Err(StorageError::NotFound) => {}
            Err(e) => return Err(RowError::Storage(e)),
        }
    }
    // Ids are the same on every run, so the mapping is too.
    let mapped = django_id.map(|django_id| (django_id, id));
    Ok(Imported { inserted, mapped })
}

/// Django's `date_joined` as dumpdata or a query writes it: RFC 3339, or a
/// date and time without offset (taken as UTC).
fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc).trunc_subsecs(6));
    }
    if let Ok(t) = DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.with_timezone(&Utc).trunc_subsecs(6));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|t| t.and_utc().trunc_subsecs(6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_dates_parse() {
        for raw in [
            "2024-03-01T10:20:30.123456Z",
            "2024-03-01T10:20:30.123456+00:00",
            "2024-03-01 10:20:30.123456+00:00",
            "2024-03-01T10:20:30.123456",
            "2024-03-01 10:20:30",
        ] {
            let t = parse_date(raw).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(
                t.format("%Y-%m-%d %H:%M:%S").to_string(),
                "2024-03-01 10:20:30"
            );
        }
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2024-13-01T00:00:00Z").is_none());
    }

    #[test]
    fn supported_hashes() {
        assert!(is_supported_hash("pbkdf2_sha256$870000$salt$aGFzaA=="));
        assert!(is_supported_hash(
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        assert!(is_supported_hash(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        ));
        for bad in [
            "",
            "!unusable",
            "md5$a$b",
            "pbkdf2_sha256$x$s$h",
            "bcrypt$2b$12$abc",
            "argon2$garbage",
        ] {
            assert!(!is_supported_hash(bad), "{bad}");
        }
    }
}
