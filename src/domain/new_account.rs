//! A registration form as received, and the validated account it parses into.

use super::locale::parse_locale;
use super::{char_len, has_nul, too_long, Email, Password, NULL_CHARACTERS, REQUIRED};

pub const USERNAME_MAX_CHARS: usize = 200;
pub const NAME_MAX_CHARS: usize = 150;
pub const PHONE_MAX_CHARS: usize = 20;
pub const CREATED_FROM_MAX_CHARS: usize = 15;
pub const ADDRESS_MAX_CHARS: usize = 1000;
pub const PASSWORDS_DO_NOT_MATCH: &str = "passwords do not match";

/// The registration fields exactly as a client sent them, before validation.
#[derive(Default, Clone)]
pub struct RegistrationForm {
    pub email: String,
    pub username: String,
    pub password: String,
    pub confirm_password: String,
    pub term_and_condition: bool,
    pub address: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub created_from: String,
    pub locale: String,
}

/// One problem with one request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: &'static str,
    pub description: String,
}

/// Every problem found in a request, in field order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldViolation>);

impl ValidationErrors {
    fn add(&mut self, field: &'static str, descriptions: Vec<String>) {
        self.0.extend(
            descriptions
                .into_iter()
                .map(|description| FieldViolation { field, description }),
        );
    }

    pub fn single(field: &'static str, description: impl Into<String>) -> Self {
        ValidationErrors(vec![FieldViolation {
            field,
            description: description.into(),
        }])
    }
}

impl std::fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", v.field, v.description)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// A new password and its confirmation, trimmed and checked with Register's
/// rules and messages (on `password` and `confirm_password`).
pub fn parse_new_password(password: &str, confirm: &str) -> Result<Password, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    match password_pair(&mut errors, password, confirm) {
        Some(password) if errors.0.is_empty() => Ok(password),
        _ => Err(errors),
    }
}

fn password_pair(errors: &mut ValidationErrors, password: &str, confirm: &str) -> Option<Password> {
    let password_raw = password.trim();
    let confirm_raw = confirm.trim();
    let password = Password::parse(password_raw)
        .map_err(|e| errors.add("password", e))
        .ok();
    if has_nul(confirm_raw) {
        errors.add("confirm_password", vec![NULL_CHARACTERS.to_owned()]);
    } else if confirm_raw.is_empty() {
        errors.add("confirm_password", vec![REQUIRED.to_owned()]);
    } else if !password_raw.is_empty() && !has_nul(password_raw) && confirm_raw != password_raw {
        errors.add("confirm_password", vec![PASSWORDS_DO_NOT_MATCH.to_owned()]);
    }
    password
}

/// An account's fields other than its password, checked with Register's
/// rules: what an import brings from another system.
#[derive(Debug, Clone)]
pub struct Profile {
    pub email: Email,
    pub username: String,
    pub address: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub created_from: String,
}

impl Profile {
    /// Trims and checks every field of `form` but the passwords, reporting
    /// all violations at once.
    pub fn parse(form: &RegistrationForm) -> Result<Profile, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let email = Email::parse(&form.email)
            .map_err(|e| errors.add("email", e))
            .ok();
        let profile = |errors: &mut ValidationErrors| {
            (
                bounded(errors, "username", &form.username, USERNAME_MAX_CHARS),
                bounded(errors, "address", &form.address, ADDRESS_MAX_CHARS),
                bounded(errors, "first_name", &form.first_name, NAME_MAX_CHARS),
                bounded(errors, "last_name", &form.last_name, NAME_MAX_CHARS),
                bounded(errors, "phone_number", &form.phone_number, PHONE_MAX_CHARS),
                bounded(
                    errors,
                    "created_from",
                    &form.created_from,
                    CREATED_FROM_MAX_CHARS,
                ),
            )
        };
        let (username, address, first_name, last_name, phone_number, created_from) =
            profile(&mut errors);
        match email {
            Some(email) if errors.0.is_empty() => Ok(Profile {
                email,
                username,
                address,
                first_name,
                last_name,
                phone_number,
                created_from,
            }),
            _ => Err(errors),
        }
    }
}

/// A registration that passed every rule: the only way to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub username: String,
    pub password: Password,
    pub term_and_condition: bool,
    pub address: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub created_from: String,
    /// Canonical language tag; empty for the service's default.
    pub locale: String,
}

impl NewAccount {
    /// Trims every string and checks every rule, reporting all violations at once.
    pub fn parse(form: RegistrationForm) -> Result<NewAccount, ValidationErrors> {
        let mut errors = ValidationErrors::default();

        let email = Email::parse(&form.email)
            .map_err(|e| errors.add("email", e))
            .ok();
        let username = bounded(&mut errors, "username", &form.username, USERNAME_MAX_CHARS);

        let password = password_pair(&mut errors, &form.password, &form.confirm_password);

        let address = bounded(&mut errors, "address", &form.address, ADDRESS_MAX_CHARS);
        let first_name = bounded(&mut errors, "first_name", &form.first_name, NAME_MAX_CHARS);
        let last_name = bounded(&mut errors, "last_name", &form.last_name, NAME_MAX_CHARS);
        let phone_number = bounded(
            &mut errors,
            "phone_number",
            &form.phone_number,
            PHONE_MAX_CHARS,
        );
        let created_from = bounded(
            &mut errors,
            "created_from",
            &form.created_from,
            CREATED_FROM_MAX_CHARS,
        );
        let locale = parse_locale(&mut errors, &form.locale);

        match (email, password) {
            (Some(email), Some(password)) if errors.0.is_empty() => Ok(NewAccount {
                email,
                username,
                password,
                term_and_condition: form.term_and_condition,
                address,
                first_name,
                last_name,
                phone_number,
                created_from,
                locale,
            }),
            _ => Err(errors),
        }
    }
}

pub(super) fn bounded(
    errors: &mut ValidationErrors,
    field: &'static str,
    raw: &str,
    max: usize,
) -> String {
    let value = raw.trim();
    if has_nul(value) {
        errors.add(field, vec![NULL_CHARACTERS.to_owned()]);
    } else if char_len(value) > max {
        errors.add(field, vec![too_long(max)]);
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::email::INVALID_EMAIL;
    use crate::domain::password::PASSWORD_TOO_SHORT;

    fn valid() -> RegistrationForm {
        RegistrationForm {
            email: " Shopper@Example.com ".into(),
            username: " shopper ".into(),
            password: "secret123".into(),
            confirm_password: "secret123".into(),
            term_and_condition: true,
            ..Default::default()
        }
    }

    #[test]
    fn valid_form_is_trimmed_and_normalised() {
        let account = NewAccount::parse(valid()).unwrap();
        assert_eq!(account.email.as_str(), "shopper@example.com");
        assert_eq!(account.username, "shopper");
        assert_eq!(account.password.expose(), "secret123");
    }

    #[test]
    fn nul_in_any_field_is_named_on_that_field() {
        let fields = [
            "email",
            "username",
            "password",
            "confirm_password",
            "address",
            "first_name",
            "last_name",
            "phone_number",
            "created_from",
        ];
        for field in fields {
            let mut form = valid();
            let slot = match field {
                "email" => &mut form.email,
                "username" => &mut form.username,
                "password" => &mut form.password,
                "confirm_password" => &mut form.confirm_password,
                "address" => &mut form.address,
                "first_name" => &mut form.first_name,
                "last_name" => &mut form.last_name,
                "phone_number" => &mut form.phone_number,
                _ => &mut form.created_from,
            };
            slot.push_str("a\0b");
            let errors = NewAccount::parse(form).unwrap_err();
            assert!(
                errors.0.contains(&FieldViolation {
                    field,
                    description: NULL_CHARACTERS.to_owned()
                }),
                "{field}: {errors}"
            );
            assert!(
                errors
                    .0
                    .iter()
                    .all(|v| v.field == field || v.field == "confirm_password"),
                "{field}: {errors}"
            );
        }
    }

    #[test]
    fn reports_every_violation_at_once() {
        let form = RegistrationForm {
            email: "nope".into(),
            password: "short1".into(),
            confirm_password: "other".into(),
            username: "u".repeat(201),
            first_name: "f".repeat(151),
            last_name: "l".repeat(151),
            phone_number: "1".repeat(21),
            created_from: "c".repeat(16),
            address: "a".repeat(1001),
            ..Default::default()
        };
        let errors = NewAccount::parse(form).unwrap_err();
        let got: Vec<(&str, &str)> = errors
            .0
            .iter()
            .map(|v| (v.field, v.description.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("email", INVALID_EMAIL),
                (
                    "username",
                    "Ensure this field has no more than 200 characters."
                ),
                ("password", PASSWORD_TOO_SHORT),
                ("confirm_password", PASSWORDS_DO_NOT_MATCH),
                (
                    "address",
                    "Ensure this field has no more than 1000 characters."
                ),
                (
                    "first_name",
                    "Ensure this field has no more than 150 characters."
                ),
                (
                    "last_name",
                    "Ensure this field has no more than 150 characters."
                ),
                (
                    "phone_number",
                    "Ensure this field has no more than 20 characters."
                ),
                (
                    "created_from",
                    "Ensure this field has no more than 15 characters."
                ),
            ]
        );
    }

    #[test]
    fn required_fields() {
        let errors = NewAccount::parse(RegistrationForm::default()).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|v| v.field).collect();
        assert_eq!(fields, vec!["email", "password", "confirm_password"]);
        assert!(errors.0.iter().all(|v| v.description == REQUIRED));
    }

    #[test]
    fn limits_are_inclusive() {
        let form = RegistrationForm {
            username: "u".repeat(200),
            created_from: "c".repeat(15),
            ..valid()
        };
        assert!(NewAccount::parse(form).is_ok());
    }

    #[test]
    fn display_lists_violations_readably() {
        let errors = NewAccount::parse(RegistrationForm {
            email: "x".into(),
            ..valid()
        })
        .unwrap_err();
        assert_eq!(errors.to_string(), "email: Enter a valid email address.");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn field() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x1f\\x7f \\t]{0,30}",
            "[a-zA-Z0-9.@+_-]{0,40}",
            (0usize..2000).prop_map(|n| "ß".repeat(n)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parse_never_panics_and_reports_known_fields(
            email in field(), username in field(), password in field(), confirm in field(),
            address in field(), first in field(), last in field(), phone in field(), from in field(),
            locale in field(),
        ) {
            let form = RegistrationForm {
                email, username, password, confirm_password: confirm, term_and_condition: true,
                address, first_name: first, last_name: last, phone_number: phone, created_from: from,
                locale,
            };
            match NewAccount::parse(form) {
                Ok(account) => {
                    prop_assert_eq!(account.email.as_str(), account.email.as_str().to_lowercase());
                    prop_assert!(Email::parse(account.email.as_str()).is_ok());
                    prop_assert!(account.password.expose().chars().count() >= 8);
                }
                Err(errors) => {
                    prop_assert!(!errors.0.is_empty());
                    for v in &errors.0 {
                        prop_assert!([
                            "email", "username", "password", "confirm_password", "address",
                            "first_name", "last_name", "phone_number", "created_from", "locale",
                        ].contains(&v.field));
                        prop_assert!(!v.description.is_empty());
                    }
                }
            }
        }

        #[test]
        fn email_normalisation_is_idempotent(raw in field()) {
            if let Ok(email) = Email::parse(&raw) {
                let again = Email::parse(email.as_str()).expect("a normalised address stays valid");
                prop_assert_eq!(again, email);
            }
        }
    }
}
