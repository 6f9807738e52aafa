//! Scopes, and the one table of which scope each RPC needs.

use std::fmt;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Register, ResendConfirmation and RequestPasswordReset.
    AccountsRegister,
    /// ConfirmRegistration, ConfirmEmailChange.
    AccountsConfirm,
    /// GetAccount, CheckPassword.
    AccountsRead,
    /// Changes to existing accounts: ResetPassword, ChangePassword,
    /// UpdateProfile, ChangeEmail, DeleteAccount.
    AccountsWrite,
    /// Every `accounts:` scope, and operations only an operator's tools need
    /// (ListAccounts, DeleteAccount without the password).
    AccountsAdmin,
    /// The account event stream.
    EventsRead,
    /// SignIn, RefreshSession and SignOut: what a web backend needs to hold
    /// a shopper's sign-in. Not held through `accounts:admin`.
    SessionsWrite,
    /// VerifyAccessToken: what a service that takes access tokens needs.
    SessionsVerify,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::AccountsRegister,
        Scope::AccountsConfirm,
        Scope::AccountsRead,
        Scope::AccountsWrite,
        Scope::AccountsAdmin,
        Scope::EventsRead,
        Scope::SessionsWrite,
        Scope::SessionsVerify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::AccountsRegister => "accounts:register",
            Scope::AccountsConfirm => "accounts:confirm",
            Scope::AccountsRead => "accounts:read",
            Scope::AccountsWrite => "accounts:write",
            Scope::AccountsAdmin => "accounts:admin",
            Scope::EventsRead => "events:read",
            Scope::SessionsWrite => "sessions:write",
            Scope::SessionsVerify => "sessions:verify",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn is_accounts(self) -> bool {
        self.as_str().starts_with("accounts:")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Scopes {
        Scopes(scopes.into_iter().fold(0, |bits, s| bits | s.bit()))
    }

    /// Whether `needed` is held, directly or through `accounts:admin`.
    pub fn grant(self, needed: Scope) -> bool {
        self.0 & needed.bit() != 0
            || (needed.is_accounts() && self.0 & Scope::AccountsAdmin.bit() != 0)
    }
}

/// The scope each RPC of `account.v1.AccountService` needs. Health is open
/// to everyone; reflection needs a valid caller in production.
pub const RPC_SCOPES: &[(&str, Scope)] = &[
    ("Register", Scope::AccountsRegister),
    ("ResendConfirmation", Scope::AccountsRegister),
    ("ConfirmRegistration", Scope::AccountsConfirm),
    ("GetAccount", Scope::AccountsRead),
    ("CheckPassword", Scope::AccountsRead),
    ("RequestPasswordReset", Scope::AccountsRegister),
    ("ResetPassword", Scope::AccountsWrite),
    ("ChangePassword", Scope::AccountsWrite),
    ("UpdateProfile", Scope::AccountsWrite),
    ("ChangeEmail", Scope::AccountsWrite),
    ("ConfirmEmailChange", Scope::AccountsConfirm),
    ("DeleteAccount", Scope::AccountsWrite),
    ("WatchAccountEvents", Scope::EventsRead),
    ("ListAccounts", Scope::AccountsAdmin),
    ("SignIn", Scope::SessionsWrite),
    ("RefreshSession", Scope::SessionsWrite),
    ("SignOut", Scope::SessionsWrite),
    ("VerifyAccessToken", Scope::SessionsVerify),
    ("ListSessions", Scope::AccountsRead),
    ("RevokeSession", Scope::AccountsWrite),
    ("RevokeAllSessions", Scope::AccountsWrite),
    ("StartTotpEnrollment", Scope::AccountsWrite),
    ("ConfirmTotpEnrollment", Scope::AccountsWrite),
    ("DisableTotp", Scope::AccountsWrite),
    ("RegenerateRecoveryCodes", Scope::AccountsWrite),
    ("CompleteSignIn", Scope::SessionsWrite),
    ("SetProfileImage", Scope::AccountsWrite),
    ("RemoveProfileImage", Scope::AccountsWrite),
];

/// `method` as the table spells it, if the table has it.
pub fn rpc_name(method: &str) -> Option<&'static str> {
    RPC_SCOPES
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(m, _)| *m)
}

/// The scope `method` needs; a method missing from the table needs
/// `accounts:admin`, so that an RPC added without a thought is closed, not open.
pub fn required_scope(method: &str) -> Scope {
    RPC_SCOPES
        .iter()
        .find(|(m, _)| *m == method)
        .map_or(Scope::AccountsAdmin, |(_, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn admin_implies_every_accounts_scope_and_nothing_else() {
        let admin = Scopes::of([Scope::AccountsAdmin]);
        for s in Scope::ALL {
            assert_eq!(admin.grant(s), s.is_accounts(), "{s}");
        }
        let read = Scopes::of([Scope::AccountsRead]);
        assert!(read.grant(Scope::AccountsRead));
        assert!(!read.grant(Scope::AccountsRegister));
        assert!(!read.grant(Scope::AccountsAdmin));
        assert!(!Scopes::default().grant(Scope::AccountsRead));
        assert!(Scopes::of([Scope::EventsRead]).grant(Scope::EventsRead));
        assert!(!admin.grant(Scope::SessionsWrite) && !admin.grant(Scope::SessionsVerify));
    }

    #[test]
    fn scopes_round_trip_through_their_names() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.as_str()), Some(s));
        }
        assert_eq!(Scope::parse("accounts:*"), None);
        assert_eq!(Scope::parse("Accounts:Read"), None);
    }

    /// The RPCs of `account.v1.AccountService`, from the descriptor set
    /// that reflection serves.
    fn service_methods() -> Vec<String> {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("descriptor set");
        let methods: Vec<String> = set
            .file
            .iter()
            .filter(|f| f.package() == "account.v1")
            .flat_map(|f| &f.service)
            .filter(|s| s.name() == "AccountService")
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_owned())
            .collect();
        assert!(!methods.is_empty());
        methods
    }

    #[test]
    fn every_rpc_of_the_service_has_a_scope() {
        let methods = service_methods();
        for m in &methods {
            assert!(
                RPC_SCOPES.iter().any(|(name, _)| name == m),
                "{m} has no entry in RPC_SCOPES"
            );
        }
        assert_eq!(methods.len(), RPC_SCOPES.len());
    }

    #[test]
    fn every_rpc_of_the_service_has_its_scope_in_the_readme() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## ")
            .find(|s| s.starts_with("Callers, scopes and TLS"))
            .expect("README section on callers and scopes");
        // The table whose header is `| call | scope needed |`: call, scope.
        let rows: Vec<(&str, &str)> = section
            .lines()
            .skip_while(|l| !l.starts_with("| call | scope needed |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| {
                let mut cells = l.split('|').skip(1);
                Some((cells.next()?, cells.next()?))
            })
            .collect();
        for m in service_methods() {
            let call = format!("`{m}`");
            let scope = required_scope(&m);
            assert!(
                rows.iter()
                    .any(|(calls, needed)| calls.contains(&call) && needed.contains(scope.as_str())),
                "README's scope table has no row giving {m} the scope {scope}"
            );
        }
    }
}
