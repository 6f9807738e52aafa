//! A profile update: which fields change (AIP-134 field mask) and their new,
//! validated values.

use super::locale::parse_locale;
use super::new_account::{
    bounded, ADDRESS_MAX_CHARS, NAME_MAX_CHARS, PHONE_MAX_CHARS, USERNAME_MAX_CHARS,
};
use super::{FieldViolation, ValidationErrors};

/// The profile fields UpdateProfile may change, by mask path.
pub const PROFILE_PATHS: [&str; 6] = [
    "username",
    "first_name",
    "last_name",
    "phone_number",
    "address",
    "locale",
];

/// Paths a client may think of but that UpdateProfile never changes.
const OTHER_RPC_PATHS: [&str; 4] = ["email", "password", "verified", "id"];

/// Most paths a mask may hold; a longer one is refused before any work.
const MAX_PATHS: usize = 32;

/// The profile fields as a client sent them, before validation.
#[derive(Debug, Clone, Default)]
pub struct ProfileForm {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: String,
    pub address: String,
    pub locale: String,
}

/// New values for the fields that change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub address: Option<String>,
    /// Canonical language tag; empty for the service's default.
    pub locale: Option<String>,
}

impl ProfileChanges {
    /// Applies a mask to a form: with `paths`, exactly those fields (`*`
    /// for all of them); without a mask, the fields the form sets
    /// (non-empty), as AIP-134 asks. Each value is trimmed and checked
    /// with Register's rules; every violation is reported at once.
    pub fn parse(paths: Option<&[String]>, form: ProfileForm) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut wanted = [false; PROFILE_PATHS.len()];
        match paths {
            Some(paths) if paths.len() > MAX_PATHS => {
                return Err(ValidationErrors::single(
                    "update_mask",
                    format!("At most {MAX_PATHS} paths are allowed."),
                ))
            }
            Some(paths) => {
                for path in paths {
                    let path = path.trim();
                    if path == "*" {
                        wanted = [true; PROFILE_PATHS.len()];
                    } else if let Some(i) = PROFILE_PATHS.iter().position(|p| *p == path) {
                        wanted[i] = true;
                    } else {
                        errors.0.push(FieldViolation {
                            field: "update_mask",
                            description: unknown_path(path),
                        });
                    }
                }
            }
            None => {
                let set = [
                    &form.username,
                    &form.first_name,
                    &form.last_name,
                    &form.phone_number,
                    &form.address,
                    &form.locale,
                ];
                for (i, value) in set.iter().enumerate() {
                    wanted[i] = !value.is_empty();
                }
            }
        }
        let mut field = |i: usize, name: &'static str, raw: &str, max: usize| {
            wanted[i].then(|| bounded(&mut errors, name, raw, max))
        };
        let changes = ProfileChanges {
            username: field(0, "username", &form.username, USERNAME_MAX_CHARS),
            first_name: field(1, "first_name", &form.first_name, NAME_MAX_CHARS),
            last_name: field(2, "last_name", &form.last_name, NAME_MAX_CHARS),
            phone_number: field(3, "phone_number", &form.phone_number, PHONE_MAX_CHARS),
            address: field(4, "address", &form.address, ADDRESS_MAX_CHARS),
            locale: wanted[5].then(|| parse_locale(&mut errors, &form.locale)),
        };
        if errors.0.is_empty() {
            Ok(changes)
        } else {
            Err(errors)
        }
    }

    /// Whether no field changes at all.
    pub fn is_empty(&self) -> bool {
        *self == ProfileChanges::default()
    }
}

/// The message for a mask path UpdateProfile does not change. The path is
/// quoted only when short and printable, so an answer never echoes junk.
fn unknown_path(path: &str) -> String {
    let shown = path.len() <= 64 && path.chars().all(|c| c.is_ascii_graphic());
    let name = if shown {
        format!("`{path}`")
    } else {
        "this path".to_owned()
    };
    if OTHER_RPC_PATHS.contains(&path) {
        format!("{name} cannot be changed with UpdateProfile.")
    } else {
        format!(
            "Unknown path {name}; allowed paths: {}.",
            PROFILE_PATHS.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> ProfileForm {
        ProfileForm {
            username: "  ann ".into(),
            first_name: "Ann".into(),
            ..ProfileForm::default()
        }
    }

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn only_masked_fields_change() {
        let c = ProfileChanges::parse(Some(&paths(&["username", "address"])), form()).unwrap();
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.address.as_deref(), Some(""));
        assert_eq!(c.first_name, None);
    }

    #[test]
    fn no_mask_means_the_fields_that_are_set_and_star_means_all() {
        let c = ProfileChanges::parse(None, form()).unwrap();
        assert_eq!(c.username.as_deref(), Some("ann"));
        assert_eq!(c.first_name.as_deref(), Some("Ann"));
        assert_eq!(c.last_name, None);
        let all = ProfileChanges::parse(Some(&paths(&["*"])), form()).unwrap();
        assert_eq!(all.last_name.as_deref(), Some(""));
        assert!(ProfileChanges::parse(None, ProfileForm::default())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn forbidden_and_unknown_paths_are_violations_on_update_mask() {
        let e = ProfileChanges::parse(Some(&paths(&["email", "nope", "verified"])), form())
            .unwrap_err();
        assert_eq!(e.0.len(), 3);
        assert!(e.0.iter().all(|v| v.field == "update_mask"));
        let e = ProfileChanges::parse(Some(&paths(&["x\0y"])), form()).unwrap_err();
        assert!(!e.0[0].description.contains('\0'));
    }

    #[test]
    fn values_follow_registers_rules() {
        let e = ProfileChanges::parse(
            Some(&paths(&["phone_number", "first_name"])),
            ProfileForm {
                phone_number: "1".repeat(21),
                first_name: "a\0".into(),
                ..ProfileForm::default()
            },
        )
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|v| v.field).collect();
        assert_eq!(fields, ["first_name", "phone_number"]);
        assert_eq!(
            e.0[1].description,
            "Ensure this field has no more than 20 characters."
        );
    }
}
