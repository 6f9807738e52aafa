//! The sign-in lockout policy: the settings' own type, which the service takes.

/// When failed password checks lock an address out.
#[derive(Debug, Clone, Copy)]
pub struct SignInPolicy {
    /// Consecutive failures that start a lockout.
    pub max_failures: u32,
    /// The first lockout; each further one lasts twice the one before.
    pub lockout: std::time::Duration,
}

/// The longest lockout, however many came before.
pub const MAX_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(3600);

impl SignInPolicy {
    /// How long the lockout after `earlier` previous ones lasts.
    pub fn lockout_after(&self, earlier: i64) -> std::time::Duration {
        let doublings = u32::try_from(earlier.clamp(0, 31)).unwrap_or(31);
        self.lockout
            .saturating_mul(1u32 << doublings)
            .min(MAX_LOCKOUT)
    }
}

impl Default for SignInPolicy {
    fn default() -> Self {
        SignInPolicy {
            max_failures: 5,
            lockout: std::time::Duration::from_secs(60),
        }
    }
}
