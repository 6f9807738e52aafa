//! The fields of requests other than a registration, parsed once at the
//! edge: ids, addresses, and the current passwords that guard a change.

use secrecy::SecretString;
use uuid::Uuid;

use super::{
    has_nul, parse_new_password, Email, FieldViolation, Password, ValidationErrors,
    NULL_CHARACTERS, REQUIRED,
};

/// Message for an id that is not a UUID.
pub const INVALID_UUID: &str = "Must be a valid UUID.";

/// How an account is looked up.
#[derive(Debug, Clone)]
pub enum Lookup {
    Id(Uuid),
    Email(Email),
}

impl Lookup {
    /// An id as a client sent it: a UUID, surrounding white space ignored.
    pub fn id(raw: &str) -> Result<Lookup, ValidationErrors> {
        let mut errors = ValidationErrors(Vec::new());
        uuid_field(&mut errors, "id", raw)
            .map(Lookup::Id)
            .ok_or(errors)
    }

    /// An address as a client sent it, validated like everywhere else.
    pub fn email(raw: &str) -> Result<Lookup, ValidationErrors> {
        parse_email(raw).map(Lookup::Email)
    }
}

/// Parses sign-in credentials: the address as Register would take it, and
/// the password (required and without NUL once trimmed, as Register trims
/// it), with every violation at once. No other rule applies to the
/// password: it is only compared, and handed over as typed, since a Django
/// hash may have been made of surrounding spaces.
pub fn parse_credentials(
    email: &str,
    password: &str,
) -> Result<(Email, SecretString), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let email = parse_email(email).map_err(|e| errors.0.extend(e.0)).ok();
    let password = required_secret(&mut errors, "password", password);
    match (email, password) {
        (Some(email), Some(password)) => Ok((email, password)),
        _ => Err(errors),
    }
}

/// Parses a password change: the account id, the current password (required
/// and without NUL once trimmed, handed over as typed like a sign-in's) and
/// the new one with its confirmation under Register's rules, every violation
/// at once.
pub fn parse_password_change(
    id: &str,
    current: &str,
    password: &str,
    confirm: &str,
) -> Result<(Uuid, SecretString, Password), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let id = id_field(&mut errors, id);
    let checked = required_secret(&mut errors, "current_password", current);
    let new = parse_new_password(password, confirm)
        .map_err(|e| errors.0.extend(e.0))
        .ok();
    match (id, checked, new) {
        (Some(id), Some(_), Some(new)) if errors.0.is_empty() => {
            // The same password typed with spaces around is still the same
            // (both are compared trimmed): handed over trimmed, it meets the
            // same-password rule.
            let trimmed = current.trim();
            let current = if trimmed == new.expose() {
                trimmed
            } else {
                current
            };
            Ok((id, SecretString::from(current.to_owned()), new))
        }
        _ => Err(errors),
    }
}

/// Parses an address sent on its own (ResendConfirmation, GetAccount), with
/// the messages Register gives for the same field.
pub fn parse_email(raw: &str) -> Result<Email, ValidationErrors> {
    Email::parse(raw).map_err(|problems| {
        ValidationErrors(
            problems
                .into_iter()
                .map(|description| FieldViolation {
                    field: "email",
                    description,
                })
                .collect(),
        )
    })
}

/// A password to compare: required and without NUL once trimmed, handed
/// over as typed (password checks trim it, or try both for a Django hash).
/// The one rule every current password and sign-in password follows.
fn required_secret(
    errors: &mut ValidationErrors,
    field: &'static str,
    raw: &str,
) -> Option<SecretString> {
    let value = raw.trim();
    let problem = if value.is_empty() {
        REQUIRED
    } else if has_nul(value) {
        NULL_CHARACTERS
    } else {
        return Some(SecretString::from(raw.to_owned()));
    };
    errors.0.push(FieldViolation {
        field,
        description: problem.to_owned(),
    });
    None
}

/// An account's `id` field: a UUID, every violation collected in `errors`.
fn id_field(errors: &mut ValidationErrors, raw: &str) -> Option<Uuid> {
    uuid_field(errors, "id", raw)
}

/// A UUID field named `field`, surrounding white space ignored, every
/// violation collected in `errors`.
pub(super) fn uuid_field(
    errors: &mut ValidationErrors,
    field: &'static str,
    raw: &str,
) -> Option<Uuid> {
    let problem = if has_nul(raw) {
        NULL_CHARACTERS
    } else if let Ok(id) = Uuid::parse_str(raw.trim()) {
        return Some(id);
    } else {
        INVALID_UUID
    };
    errors.0.push(FieldViolation {
        field,
        description: problem.to_owned(),
    });
    None
}

/// A required UUID field: `This field is required.` when blank.
pub fn parse_required_id(field: &'static str, raw: &str) -> Result<Uuid, ValidationErrors> {
    if raw.trim().is_empty() {
        return Err(ValidationErrors::single(field, super::REQUIRED));
    }
    let mut errors = ValidationErrors(Vec::new());
    uuid_field(&mut errors, field, raw).ok_or(errors)
}

/// Parses an account id (in `field`) and the current password that guards
/// a change to it, every violation at once.
pub fn parse_password_check(
    field: &'static str,
    id: &str,
    current_password: &str,
) -> Result<(Uuid, SecretString), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let id = uuid_field(&mut errors, field, id);
    let password = required_secret(&mut errors, "current_password", current_password);
    match (id, password) {
        (Some(id), Some(password)) => Ok((id, password)),
        _ => Err(errors),
    }
}

/// Parses a ChangeEmail request, every violation at once.
pub fn parse_email_change(
    id: &str,
    new_email: &str,
    current_password: &str,
) -> Result<(Uuid, Email, SecretString), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let id = id_field(&mut errors, id);
    let email = match Email::parse(new_email) {
        Ok(email) => Some(email),
        Err(problems) => {
            errors
                .0
                .extend(problems.into_iter().map(|description| FieldViolation {
                    field: "new_email",
                    description,
                }));
            None
        }
    };
    let password = required_secret(&mut errors, "current_password", current_password);
    match (id, email, password) {
        (Some(id), Some(email), Some(password)) if errors.0.is_empty() => Ok((id, email, password)),
        _ => Err(errors),
    }
}

/// Parses a DeleteAccount request: the password may be empty only when the
/// caller may delete without it.
pub fn parse_deletion(
    id: &str,
    current_password: &str,
    password_optional: bool,
) -> Result<(Uuid, Option<SecretString>), ValidationErrors> {
    let mut errors = ValidationErrors(Vec::new());
    let id = id_field(&mut errors, id);
    let password = if password_optional && current_password.trim().is_empty() {
        None
    } else {
        required_secret(&mut errors, "current_password", current_password)
    };
    match id {
        Some(id) if errors.0.is_empty() => Ok((id, password)),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_change_reports_every_violation() {
        let e = parse_email_change("nope", "not-an-address", " ").unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["id", "new_email", "current_password"]);
        let id = Uuid::now_v7().to_string();
        let (_, email, _) = parse_email_change(&id, " Ann@Example.COM ", "pw").unwrap();
        assert_eq!(email.as_str(), "ann@example.com");
    }

    #[test]
    fn deletion_needs_a_password_unless_optional() {
        let id = Uuid::now_v7().to_string();
        assert_eq!(
            parse_deletion(&id, "", false).unwrap_err().0[0].field,
            "current_password"
        );
        assert!(parse_deletion(&id, "", true).unwrap().1.is_none());
        assert!(parse_deletion(&id, "pw", true).unwrap().1.is_some());
        assert_eq!(
            parse_deletion(&id, "a\0", true).unwrap_err().0[0].description,
            NULL_CHARACTERS
        );
    }
}
