//! A password that passed the strength rules; its value never reaches a log.

use secrecy::{ExposeSecret, SecretString};

use super::{char_len, has_nul, too_long, NULL_CHARACTERS, REQUIRED};

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 128;
pub const PASSWORD_TOO_SHORT: &str =
    "This password is too short. It must contain at least 8 characters.";
pub const PASSWORD_NOT_ALPHANUMERIC: &str = "password must be alphanumeric";

/// A validated password. `Debug` prints a placeholder.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Checks the strength rules, returning every message that applies.
    pub fn parse(raw: &str) -> Result<Password, Vec<String>> {
        if raw.is_empty() {
            return Err(vec![REQUIRED.to_owned()]);
        }
        if has_nul(raw) {
            return Err(vec![NULL_CHARACTERS.to_owned()]);
        }
        let mut problems = Vec::new();
        let len = char_len(raw);
        if len < PASSWORD_MIN_CHARS {
            problems.push(PASSWORD_TOO_SHORT.to_owned());
        }
        if raw.chars().all(char::is_alphabetic) || raw.chars().all(char::is_numeric) {
            problems.push(PASSWORD_NOT_ALPHANUMERIC.to_owned());
        }
        if len > PASSWORD_MAX_CHARS {
            problems.push(too_long(PASSWORD_MAX_CHARS));
        }
        if problems.is_empty() {
            Ok(Password(SecretString::from(raw.to_owned())))
        } else {
            Err(problems)
        }
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(Password::parse("abc12345").is_ok());
        assert!(Password::parse("!!!!!!!!").is_ok());
        assert_eq!(
            Password::parse("abcdefgh").err(),
            Some(vec![PASSWORD_NOT_ALPHANUMERIC.to_owned()])
        );
        assert_eq!(
            Password::parse("12345678").err(),
            Some(vec![PASSWORD_NOT_ALPHANUMERIC.to_owned()])
        );
        // Unicode-aware: Arabic-Indic digits are digits, Greek letters are letters.
        assert_eq!(
            Password::parse("١٢٣٤٥٦٧٨").err(),
            Some(vec![PASSWORD_NOT_ALPHANUMERIC.to_owned()])
        );
        assert_eq!(
            Password::parse("αβγδεζηθ").err(),
            Some(vec![PASSWORD_NOT_ALPHANUMERIC.to_owned()])
        );
        assert_eq!(
            Password::parse("ab1").err(),
            Some(vec![PASSWORD_TOO_SHORT.to_owned()])
        );
        assert_eq!(
            Password::parse("abc").err(),
            Some(vec![
                PASSWORD_TOO_SHORT.to_owned(),
                PASSWORD_NOT_ALPHANUMERIC.to_owned()
            ])
        );
        assert_eq!(
            Password::parse(&"a1".repeat(65)).err(),
            Some(vec![too_long(PASSWORD_MAX_CHARS)])
        );
        assert!(Password::parse(&"a1".repeat(64)).is_ok());
        assert_eq!(Password::parse("").err(), Some(vec![REQUIRED.to_owned()]));
    }

    #[test]
    fn debug_hides_the_value() {
        let p = Password::parse("secret123").unwrap();
        assert!(!format!("{p:?}").contains("secret123"));
    }
}
