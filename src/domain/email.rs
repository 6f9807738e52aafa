//! An e-mail address that passed validation, normalised to lower case.

use super::{char_len, has_nul, too_long, NULL_CHARACTERS, REQUIRED};

/// Longest accepted address, in characters.
pub const EMAIL_MAX_CHARS: usize = 300;
/// SMTP's limits (RFC 5321 4.5.3.1, and RFC 1035 for labels), counted in
/// characters like every other limit: a mail server refuses an address past
/// them for good, so no account may be made with one.
pub const LOCAL_PART_MAX_CHARS: usize = 64;
pub const DOMAIN_MAX_CHARS: usize = 255;
pub const DOMAIN_LABEL_MAX_CHARS: usize = 63;
/// Message for a malformed address.
pub const INVALID_EMAIL: &str = "Enter a valid email address.";

/// A syntactically valid, trimmed, lower-cased e-mail address.
///
/// Lower-casing the whole address (local part included) is what makes
/// uniqueness case-insensitive: the database compares stored values exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses an address, returning every message that applies when it is not valid.
    ///
    /// The stored form must itself be a valid address that parses to itself:
    /// lower-casing can lengthen a string or produce combining marks
    /// (`İ` becomes `i` + U+0307), and such an address is refused rather
    /// than stored in a form that a later lookup could not match.
    pub fn parse(raw: &str) -> Result<Email, Vec<String>> {
        if has_nul(raw) {
            return Err(vec![NULL_CHARACTERS.to_owned()]);
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(vec![REQUIRED.to_owned()]);
        }
        let mut problems = Vec::new();
        // The length is checked before anything scans the whole string.
        if char_len(trimmed) > EMAIL_MAX_CHARS {
            problems.push(too_long(EMAIL_MAX_CHARS));
            if !is_valid_address(trimmed) {
                problems.push(INVALID_EMAIL.to_owned());
            }
            return Err(problems);
        }
        let normalized = normalize(trimmed);
        if char_len(&normalized) > EMAIL_MAX_CHARS {
            problems.push(too_long(EMAIL_MAX_CHARS));
        }
        if !is_valid_address(trimmed)
            || !is_valid_address(&normalized)
            || normalize(&normalized) != normalized
        {
            problems.push(INVALID_EMAIL.to_owned());
        }
        if problems.is_empty() {
            Ok(Email(normalized))
        } else {
            Err(problems)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The form an address is stored and looked up in.
fn normalize(raw: &str) -> String {
    raw.trim().to_lowercase()
}

fn is_valid_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    is_valid_local_part(local) && is_valid_domain(domain)
}

/// Dot-atom local part (RFC 5322 atext, plus non-ASCII letters for SMTPUTF8):
/// no empty atoms, so no leading, trailing or consecutive dots.
fn is_valid_local_part(local: &str) -> bool {
    !local.is_empty()
        && char_len(local) <= LOCAL_PART_MAX_CHARS
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || "!#$%&'*+/=?^_`{|}~-".contains(c)
                        || (!c.is_ascii() && c.is_alphanumeric())
                })
        })
}

/// A host name with at least two labels; each label is letters, digits and
/// inner hyphens (non-ASCII letters allowed for internationalised domains).
fn is_valid_domain(domain: &str) -> bool {
    if char_len(domain) > DOMAIN_MAX_CHARS {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && char_len(label) <= DOMAIN_LABEL_MAX_CHARS
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| !tld.chars().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lower_cases_them() {
        for ok in [
            "a@b.co",
            "First.Last@Example.COM",
            "x+tag@sub.example.org",
            "o'neil@example.ie",
            "  padded@example.com ",
            "jürgen@müller.de",
        ] {
            let email = Email::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
            assert_eq!(email.as_str(), ok.trim().to_lowercase());
        }
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "plainaddress",
            "@example.com",
            "user@",
            "user@localhost",
            "us er@example.com",
            "user@exa mple.com",
            "user\t@example.com",
            "user..name@example.com",
            ".user@example.com",
            "user.@example.com",
            "user@.example.com",
            "user@example.com.",
            "user@example..com",
            "user@-example.com",
            "user@example-.com",
            "a@b@example.com",
            "user@exa_mple.com",
            "user@1.2.3.4",
            // Lower-cases to `i` + a combining dot, which is not a letter.
            "İnci@example.com",
        ] {
            assert_eq!(
                Email::parse(bad),
                Err(vec![INVALID_EMAIL.to_owned()]),
                "{bad:?} should be invalid"
            );
        }
    }

    #[test]
    fn nul_gets_its_own_message() {
        for raw in ["user\0@example.com", "\0", "  \0  ", "a@b.co\0"] {
            assert_eq!(Email::parse(raw), Err(vec![NULL_CHARACTERS.to_owned()]));
        }
    }

    proptest::proptest! {
        /// Whatever is accepted is stored in a form that parses to itself, so
        /// a lookup or a second registration with the stored form matches.
        #[test]
        fn accepted_addresses_are_fixed_points(
            local in "[a-zA-Z0-9\u{80}-\u{2FFF}\u{10400}-\u{1044F}.+_-]{1,20}",
            domain in "[a-zA-Z\u{C0}-\u{24F}\u{370}-\u{3FF}\u{400}-\u{4FF}\u{1E00}-\u{1FFF}]{1,10}",
        ) {
            let raw = format!("{local}@{domain}.example");
            if let Ok(email) = Email::parse(&raw) {
                proptest::prop_assert_eq!(normalize(email.as_str()), email.as_str());
                proptest::prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
                proptest::prop_assert!(char_len(email.as_str()) <= EMAIL_MAX_CHARS);
            }
        }
    }

    #[test]
    fn case_mappings_that_change_length_are_handled() {
        // Each either parses to a fixed point or is refused as invalid.
        for raw in [
            "İnci@example.com",
            "ẞtraße@example.com",
            "ΣΟΦΙΑΣ@example.gr",
            "KELVIN\u{212A}@example.com",
            "ǅemal@example.com",
            "ﬀ@example.com",
        ] {
            match Email::parse(raw) {
                Ok(email) => assert_eq!(Email::parse(email.as_str()), Ok(email.clone()), "{raw}"),
                Err(problems) => assert_eq!(problems, vec![INVALID_EMAIL.to_owned()], "{raw}"),
            }
        }
        let long = format!("{}@example.com", "İ".repeat(200));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn smtp_limits_on_parts_hold_at_their_boundaries() {
        let invalid = Err(vec![INVALID_EMAIL.to_owned()]);
        let local = |n: usize| format!("{}@example.com", "a".repeat(n));
        assert!(Email::parse(&local(64)).is_ok());
        assert_eq!(Email::parse(&local(65)), invalid);
        // Counted in characters, before and after lower-casing.
        assert!(Email::parse(&format!("{}@example.com", "É".repeat(64))).is_ok());
        assert_eq!(
            Email::parse(&format!("{}@example.com", "É".repeat(65))),
            invalid
        );
        let label = |n: usize| format!("a@{}.com", "b".repeat(n));
        assert!(Email::parse(&label(63)).is_ok());
        assert_eq!(Email::parse(&label(64)), invalid);
        // Four labels of 63 and one of 3: 255 characters with the dots, then 256.
        let domain = |last: usize| {
            let mut labels = vec!["c".repeat(63); 3];
            labels.push("d".repeat(last));
            labels.push("com".to_owned());
            labels.join(".")
        };
        assert_eq!(domain(59).len(), 255);
        assert!(Email::parse(&format!("a@{}", domain(59))).is_ok());
        assert_eq!(Email::parse(&format!("a@{}", domain(60))), invalid);
    }

    #[test]
    fn empty_is_required_not_invalid() {
        assert_eq!(Email::parse("   "), Err(vec![REQUIRED.to_owned()]));
    }

    #[test]
    fn length_is_counted_in_characters() {
        // The longest local part, and a domain of long labels to reach the limit.
        let address = |last_label: usize| {
            let domain = ["é".repeat(63), "é".repeat(63), "é".repeat(63)].join(".");
            format!("{}@{domain}.{}.com", "é".repeat(64), "é".repeat(last_label))
        };
        assert_eq!(char_len(&address(39)), EMAIL_MAX_CHARS);
        assert!(Email::parse(&address(39)).is_ok());
        assert_eq!(
            Email::parse(&address(40)),
            Err(vec![too_long(EMAIL_MAX_CHARS)])
        );
    }
}
