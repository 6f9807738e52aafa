//! Who may call: callers authenticated by API key or client certificate,
//! and whether the scope an RPC needs is theirs.

mod callers;
mod scope;

use std::sync::Arc;

use tonic::metadata::MetadataMap;

pub use callers::{check_name, file_entry, key_digest, new_key, Caller, Callers, CallersError};
pub use callers::{KEY_PREFIX, RESERVED_NAMES};
pub use scope::{required_scope, rpc_name, Scope, Scopes, RPC_SCOPES};

/// Why a call was refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("an API key is required: send it as `authorization: Bearer <key>`")]
    KeyMissing,
    #[error("the API key is not valid")]
    KeyInvalid,
    #[error("the caller lacks the scope {0} that this call needs")]
    ScopeMissing(Scope),
    /// The caller holds as many event streams on this instance as one may.
    #[error(
        "this caller holds {0} event streams on this instance, as many as one may; end one first"
    )]
    StreamLimit(usize),
}

impl AccessError {
    /// `google.rpc.ErrorInfo` reason.
    pub fn reason(&self) -> &'static str {
        match self {
            AccessError::KeyMissing => "API_KEY_MISSING",
            AccessError::KeyInvalid => "API_KEY_INVALID",
            AccessError::ScopeMissing(_) => "SCOPE_MISSING",
            AccessError::StreamLimit(_) => "STREAM_LIMIT",
        }
    }
}

/// How callers are recognised: by the API keys file, by client
/// certificates, by both, or not at all (local development).
pub struct Access {
    callers: Option<Callers>,
    client_certificates: bool,
    /// Everyone, when nothing authenticates callers.
    anonymous: Arc<Caller>,
}

impl Access {
    /// `callers` from API_KEYS_FILE; `client_certificates` when the TLS
    /// layer requires and verifies them (GRPC_TLS_CLIENT_CA).
    pub fn new(callers: Option<Callers>, client_certificates: bool) -> Self {
        Access {
            callers,
            client_certificates,
            anonymous: Arc::new(Caller {
                name: Arc::from("anonymous"),
                label: "anonymous",
                scopes: Scopes::of(Scope::ALL),
                requests_per_minute: None,
            }),
        }
    }

    /// Whether every call is allowed without authentication.
    pub fn is_open(&self) -> bool {
        self.callers.is_none() && !self.client_certificates
    }

    pub fn callers(&self) -> Option<&Callers> {
        self.callers.as_ref()
    }

    /// The caller of a request: the holder of its API key when it sends one
    /// and keys are configured, else the caller its verified client
    /// certificate names (`certificate_name`, from the TLS handshake) if
    /// that caller takes certificates, else an unlisted certificate holder.
    pub fn identify(
        &self,
        metadata: &MetadataMap,
        certificate_name: Option<&Arc<str>>,
    ) -> Result<Arc<Caller>, AccessError> {
        if self.is_open() {
            return Ok(Arc::clone(&self.anonymous));
        }
        if let Some(callers) = &self.callers {
            let mut values = metadata.get_all("authorization").iter();
            if let Some(value) = values.next() {
                // Two credentials in one call: believe neither.
                if values.next().is_some() {
                    return Err(AccessError::KeyInvalid);
                }
                let key = value
                    .to_str()
                    .ok()
                    .and_then(bearer)
                    .ok_or(AccessError::KeyInvalid)?;
                return callers.by_key(key).cloned().ok_or(AccessError::KeyInvalid);
            }
        }
        let Some(name) = certificate_name.filter(|_| self.client_certificates) else {
            return Err(AccessError::KeyMissing);
        };
        if let Some(caller) = self.callers.as_ref().and_then(|c| c.by_certificate(name)) {
            return Ok(Arc::clone(caller));
        }
        Ok(Arc::new(Caller {
            // A colon is in no caller name: the log never shows the holder
            // as a configured caller, or under a name the service uses.
            name: Arc::from(format!("certificate:{name}")),
            label: "certificate",
            // With callers configured, certified but given no scopes; without,
            // the CA is the whole policy and every holder may call everything.
            scopes: match self.callers {
                Some(_) => Scopes::default(),
                None => Scopes::of(Scope::ALL),
            },
            requests_per_minute: None,
        }))
    }

    /// The caller of a call to `method`, if it holds the scope that `method` needs.
    pub fn authorize(
        &self,
        method: &str,
        metadata: &MetadataMap,
        certificate_name: Option<&Arc<str>>,
    ) -> Result<Arc<Caller>, AccessError> {
        let caller = self.identify(metadata, certificate_name)?;
        check_scope(&caller, method)?;
        Ok(caller)
    }
}

/// Whether `caller` holds the scope that `method` needs.
pub fn check_scope(caller: &Caller, method: &str) -> Result<(), AccessError> {
    let needed = required_scope(method);
    if caller.scopes.grant(needed) {
        Ok(())
    } else {
        Err(AccessError::ScopeMissing(needed))
    }
}

/// The credentials of an `authorization: Bearer <token>` value; the scheme
/// is case-insensitive (RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(auth: &[&str]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for a in auth {
            m.append("authorization", a.parse().unwrap());
        }
        m
    }

    fn access(client_certificates: bool) -> Access {
        let text = format!(
            "{}{}",
            file_entry("checkout", &[Scope::AccountsRegister], "acs_checkout", None),
            "[callers.orders]\nscopes = [\"accounts:admin\"]\n"
        );
        Access::new(Some(Callers::parse(&text).unwrap()), client_certificates)
    }

    #[test]
    fn keys_decide_and_scopes_gate() {
        let a = access(false);
        let ok = a.authorize("Register", &metadata(&["Bearer acs_checkout"]), None);
        assert_eq!(&*ok.unwrap().name, "checkout");
        let lower = a.identify(&metadata(&["bearer   acs_checkout"]), None);
        assert!(lower.is_ok());
        assert_eq!(
            a.authorize("GetAccount", &metadata(&["Bearer acs_checkout"]), None)
                .unwrap_err(),
            AccessError::ScopeMissing(Scope::AccountsRead)
        );
        for bad in [
            &["Bearer acs_other"][..],
            &["Basic acs_checkout"],
            &["Bearer"],
            &["Bearer "],
            &["acs_checkout"],
            &["Bearer acs_checkout", "Bearer acs_checkout"],
        ] {
            assert_eq!(
                a.identify(&metadata(bad), None).unwrap_err(),
                AccessError::KeyInvalid,
                "{bad:?}"
            );
        }
        assert_eq!(
            a.identify(&metadata(&[]), None).unwrap_err(),
            AccessError::KeyMissing
        );
        // Without mTLS a certificate name cannot come in, and is not believed.
        let name: Arc<str> = Arc::from("orders");
        assert_eq!(
            a.identify(&metadata(&[]), Some(&name)).unwrap_err(),
            AccessError::KeyMissing
        );
    }

    #[test]
    fn certificates_name_the_caller_and_the_file_gives_its_scopes() {
        let a = access(true);
        let orders: Arc<str> = Arc::from("orders");
        let caller = a
            .authorize("GetAccount", &metadata(&[]), Some(&orders))
            .unwrap();
        assert_eq!(caller.label, "orders");
        let stranger: Arc<str> = Arc::from("stranger");
        assert_eq!(
            a.authorize("GetAccount", &metadata(&[]), Some(&stranger))
                .unwrap_err(),
            AccessError::ScopeMissing(Scope::AccountsRead)
        );
        let unlisted = a.identify(&metadata(&[]), Some(&stranger)).unwrap();
        assert_eq!(
            (&*unlisted.name, unlisted.label),
            ("certificate:stranger", "certificate")
        );
        // A key, when sent, is what counts.
        let by_key = a
            .identify(&metadata(&["Bearer acs_checkout"]), Some(&orders))
            .unwrap();
        assert_eq!(&*by_key.name, "checkout");
        // Certificates alone: every holder may call everything.
        let ca_only = Access::new(None, true);
        let any = ca_only.authorize("GetAccount", &metadata(&[]), Some(&stranger));
        assert_eq!(any.unwrap().label, "certificate");
        assert!(!ca_only.is_open());
    }

    #[test]
    fn a_certificate_does_not_stand_for_a_caller_with_keys_unless_allowed() {
        let text = format!(
            "{}{}",
            file_entry("adminsvc", &[Scope::AccountsAdmin], "acs_admin", None),
            file_entry("billing", &[Scope::AccountsAdmin], "acs_billing", None),
        ) + "certificate = true\n";
        let a = Access::new(Some(Callers::parse(&text).unwrap()), true);
        let adminsvc: Arc<str> = Arc::from("adminsvc");
        let holder = a.identify(&metadata(&[]), Some(&adminsvc)).unwrap();
        assert_eq!(
            (&*holder.name, holder.label),
            ("certificate:adminsvc", "certificate")
        );
        assert_eq!(
            a.authorize("ListAccounts", &metadata(&[]), Some(&adminsvc))
                .unwrap_err(),
            AccessError::ScopeMissing(Scope::AccountsAdmin)
        );
        // Its key still makes it adminsvc.
        let keyed = a.authorize(
            "ListAccounts",
            &metadata(&["Bearer acs_admin"]),
            Some(&adminsvc),
        );
        assert_eq!(&*keyed.unwrap().name, "adminsvc");
        let billing: Arc<str> = Arc::from("billing");
        let certified = a.authorize("ListAccounts", &metadata(&[]), Some(&billing));
        assert_eq!(certified.unwrap().label, "billing");
    }

    #[test]
    fn a_certificate_never_claims_a_reserved_name() {
        let file = Callers::parse("[callers.orders]\nscopes = [\"accounts:read\"]\n").unwrap();
        for access in [Access::new(Some(file), true), Access::new(None, true)] {
            for reserved in ["anonymous", "unauthenticated", "certificate", "Anonymous"] {
                let name: Arc<str> = Arc::from(reserved);
                let holder = access.identify(&metadata(&[]), Some(&name)).unwrap();
                assert_eq!(holder.label, "certificate");
                assert_eq!(&*holder.name, format!("certificate:{reserved}"));
                assert!(!RESERVED_NAMES.contains(&&*holder.name));
            }
        }
    }

    #[test]
    fn without_keys_or_certificates_everyone_may_call() {
        let open = Access::new(None, false);
        assert!(open.is_open());
        let caller = open.authorize("GetAccount", &metadata(&[]), None).unwrap();
        assert_eq!(caller.label, "anonymous");
    }
}
