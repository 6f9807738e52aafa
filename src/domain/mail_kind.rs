//! What each outbox mail is for, and how that is stored: a domain type that
//! both the mail composer and the storage use.

/// What a mail is for. Stored in the outbox's `kind` column as
/// [`MailKind::as_str`], which rows already written depend on: the strings
/// must not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// The first confirmation mail, sent on registration.
    Welcome,
    /// A fresh confirmation mail, asked for again.
    Confirmation,
    /// The notice sent when someone registers an address that has an account.
    AccountExists,
    /// A password reset link.
    PasswordReset,
    /// The notice that the password was changed.
    PasswordChanged,
    /// The link that confirms a new address, sent to that address.
    EmailChangeConfirmation,
    /// The notice to the current address that a change was asked for.
    EmailChangeRequested,
    /// The goodbye notice of a deleted account.
    AccountDeleted,
    /// The notice that two-step sign-in was turned on.
    SecondFactorEnabled,
    /// The notice that two-step sign-in was turned off.
    SecondFactorDisabled,
    /// The notice that a recovery code was used, with how many are left.
    RecoveryCodeUsed,
}

impl MailKind {
    pub const ALL: [MailKind; 11] = [
        MailKind::Welcome,
        MailKind::Confirmation,
        MailKind::AccountExists,
        MailKind::PasswordReset,
        MailKind::PasswordChanged,
        MailKind::EmailChangeConfirmation,
        MailKind::EmailChangeRequested,
        MailKind::AccountDeleted,
        MailKind::SecondFactorEnabled,
        MailKind::SecondFactorDisabled,
        MailKind::RecoveryCodeUsed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::Welcome => "welcome",
            MailKind::Confirmation => "confirmation",
            MailKind::AccountExists => "account_exists",
            MailKind::PasswordReset => "password_reset",
            MailKind::PasswordChanged => "password_changed",
            MailKind::EmailChangeConfirmation => "email_change_confirmation",
            MailKind::EmailChangeRequested => "email_change_requested",
            MailKind::AccountDeleted => "account_deleted",
            MailKind::SecondFactorEnabled => "second_factor_enabled",
            MailKind::SecondFactorDisabled => "second_factor_disabled",
            MailKind::RecoveryCodeUsed => "recovery_code_used",
        }
    }
}

impl std::fmt::Display for MailKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored mail kind this binary does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown mail kind {0:?}")]
pub struct UnknownMailKind(pub String);

impl std::str::FromStr for MailKind {
    type Err = UnknownMailKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MailKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| UnknownMailKind(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::MailKind;

    #[test]
    fn kinds_read_back_as_stored() {
        for kind in MailKind::ALL {
            assert_eq!(kind.as_str().parse::<MailKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(
            "recovery_code_used".parse::<MailKind>().unwrap(),
            MailKind::RecoveryCodeUsed
        );
        assert!("resend".parse::<MailKind>().is_err());
    }
}
