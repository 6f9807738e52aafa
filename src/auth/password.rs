//! argon2id hashing and password checks on a fixed pool of threads, with a
//! bounded queue; checks accept the Django app's hashes and upgrade them.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::Password;
use crate::pool::{PoolError, WorkPool};
use argon2::password_hash::{rand_core::OsRng, Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};

/// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// A hashing thread keeps its 19 MiB work area between jobs, and frees it
/// after this long without work so that an idle service stays small.
const IDLE_RELEASE: Duration = Duration::from_secs(30);

/// A PHC-format argon2id hash string.
#[derive(Clone)]
pub struct PasswordHash(SecretString);

impl PasswordHash {
    /// A stored hash, as read back from the database.
    pub fn from_stored(stored: String) -> PasswordHash {
        PasswordHash(SecretString::from(stored))
    }
}

impl PasswordHash {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// More hashes are running and waiting than the service accepts.
    #[error("the password hashing queue is full")]
    Busy,
    #[error("password hashing failed")]
    Failed(#[source] anyhow::Error),
}

impl From<PoolError> for HashError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => HashError::Busy,
            PoolError::Unavailable => {
                HashError::Failed(anyhow::anyhow!("no password hashing thread is running"))
            }
            PoolError::Lost => {
                HashError::Failed(anyhow::anyhow!("the password hashing thread stopped"))
            }
        }
    }
}

/// A hashing thread's argon2 work area, allocated at its first job.
type WorkArea = Option<Vec<Block>>;

fn work_area(memory: &mut WorkArea) -> &mut [Block] {
    memory.get_or_insert_with(|| vec![Block::default(); MEMORY_KIB as usize])
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug)]
pub struct Verified {
    pub matched: bool,
    /// A hash of the password with the current parameters, when it matched
    /// a hash made with other parameters or another algorithm.
    pub upgrade: Option<PasswordHash>,
}

/// The largest argon2 memory cost a stored hash may ask for (256 MiB); a
/// larger one is treated as not matching rather than allocated.
const MAX_VERIFY_MEMORY_KIB: u32 = 262_144;
/// The costs a stored hash may ask for, as a real Django install (or this
/// service) writes them: Django's PBKDF2 default has grown from 10,000 to
/// 1,200,000 iterations, its argon2 default is t=2, p=8. A hash past
/// them is refused at import and never computed at sign-in: one asking for
/// two billion argon2 passes holds a hashing thread for hours, and one past
/// the PBKDF2 bound can only have been made to do that.
const PBKDF2_ITERATIONS: RangeInclusive<u32> = 1_000..=10_000_000;
const ARGON2_PASSES: RangeInclusive<u32> = 1..=10;
const ARGON2_LANES: RangeInclusive<u32> = 1..=8;

/// Hashes passwords on `concurrency` dedicated threads, never on the async
/// executor.
///
/// Each hash holds 19 MiB for ~20 ms of one core, so running more hashes than
/// cores only adds memory and latency. Jobs wait in a queue of `queue` places;
/// when it is full, `hash` fails at once with [`HashError::Busy`] instead of
/// letting a burst pile up without limit. Memory is bounded by
/// `concurrency × 19 MiB` whatever the load.
#[derive(Clone)]
pub struct PasswordHasher {
    /// Its count of jobs taken is the count of argon2 and PBKDF2
    /// computations done, hashes and checks alike.
    pool: WorkPool<WorkArea>,
    /// What a check of an unknown address is made against: an argon2id hash
    /// with the current parameters of a password nobody knows, so that it
    /// costs what a check of a real account costs.
    dummy: Arc<SecretString>,
    /// How long making the dummy hash took at start-up: what one hash with
    /// the current parameters costs on this machine.
    hash_cost: std::time::Duration,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let pool = WorkPool::new("argon2", concurrency, queue, IDLE_RELEASE);
        let hash_cost;
        let dummy = {
            let mut secret = [0u8; 32];
            argon2::password_hash::rand_core::RngCore::fill_bytes(&mut OsRng, &mut secret);
            let unknowable: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            let started = std::time::Instant::now();
            let made = hash_blocking(&unknowable);
            hash_cost = started.elapsed();
            made.map_or_else(
                // Never matches anything: still the same parse-and-compare path.
                |_| SecretString::from(String::new()),
                |h| h.0,
            )
        };
        PasswordHasher {
            pool,
            dummy: Arc::new(dummy),
            hash_cost,
        }
    }

    /// What one hash with the current parameters cost at start-up.
    pub fn hash_cost(&self) -> std::time::Duration {
        self.hash_cost
    }

    /// Password hashes computed and checked since start-up.
    pub fn computed(&self) -> u64 {
        self.pool.started()
    }

    /// Requests waiting for a hashing thread.
    pub fn queued(&self) -> usize {
        self.pool.queued()
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        self.pool
            .run(move |memory| hash_with_memory(password.expose(), work_area(memory)))
            .await?
    }

    /// Checks `password`, as the caller typed it, against `stored` (this
    /// service's argon2id, or the Django app's `argon2$…` and
    /// `pbkdf2_sha256$…`), or, for an unknown account (`None`), against a
    /// dummy hash at the same cost.
    ///
    /// A stored hash that checks cannot read, or whose cost is outside
    /// [`hash_cost_within_bounds`], is not computed: the password is checked
    /// against the dummy instead, so that it costs and answers what a wrong
    /// password does.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let refused = stored.is_some_and(|stored| {
            if !is_supported_hash(stored) {
                tracing::warn!("stored password hash is in no supported format: checked as a wrong password");
                true
            } else if !hash_cost_within_bounds(stored) {
                tracing::warn!(
                    "stored password hash asks for a cost outside the bounds: checked as a wrong password"
                );
                true
            } else {
                false
            }
        });
        let stored = match stored {
            Some(stored) if !refused => stored,
            _ => self.dummy.expose_secret(),
        };
        let stored = SecretString::from(stored.to_owned());
        let verified = self
            .pool
            .run(move |memory| {
                verify_with_memory(
                    password.expose_secret(),
                    stored.expose_secret(),
                    work_area(memory),
                )
            })
            .await??;
        if refused {
            return Ok(Verified {
                matched: false,
                upgrade: None,
            });
        }
        Ok(verified)
    }
}

fn params() -> Result<Params, HashError> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| HashError::Failed(anyhow::anyhow!("argon2 parameters: {e}")))
}

/// Hashes one password on the current thread with a fresh work area; call
/// from a blocking context.
pub fn hash_blocking(password: &str) -> Result<PasswordHash, HashError> {
    let mut blocks = vec![Block::default(); MEMORY_KIB as usize];
    hash_with_memory(password, &mut blocks)
}

/// Hashes into a caller-owned work area of `MEMORY_KIB` blocks, so a thread
/// that hashes repeatedly allocates it once.
fn hash_with_memory(password: &str, blocks: &mut [Block]) -> Result<PasswordHash, HashError> {
    let params = params()?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| HashError::Failed(anyhow::anyhow!("salt: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, blocks)
        .map_err(|e| HashError::Failed(anyhow::anyhow!("argon2: {e}")))?;
    let output =
        Output::new(&out).map_err(|e| HashError::Failed(anyhow::anyhow!("argon2 output: {e}")))?;
    Ok(PasswordHash(SecretString::from(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${output}",
        salt.as_str()
    ))))
}

/// Whether a stored hash is one that password checks understand: this
/// service's argon2 PHC strings, and the Django app's `pbkdf2_sha256$…` and
/// `argon2$…`.
pub fn is_supported_hash(stored: &str) -> bool {
    use argon2::password_hash::PasswordHash as Phc;
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        let parts: Vec<&str> = rest.splitn(3, '$').collect();
        return parts.len() == 3
            && parts[0].parse::<u32>().is_ok_and(|n| n > 0)
            && !parts[2].is_empty();
    }
    let phc = match stored.strip_prefix("argon2$") {
        Some(rest) => format!("${rest}"),
        None => stored.to_owned(),
    };
    Phc::new(&phc).is_ok_and(|p| p.algorithm.as_str().starts_with("argon2") && p.hash.is_some())
}

/// Whether the costs `stored` asks for are within the bounds above (argon2
/// memory up to `MAX_VERIFY_MEMORY_KIB`); false when they cannot be read.
/// Import and password checks both ask this before anything is computed.
pub fn hash_cost_within_bounds(stored: &str) -> bool {
    use argon2::password_hash::PasswordHash as Phc;
    if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
        return rest
            .split('$')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| PBKDF2_ITERATIONS.contains(&n));
    }
    let phc = match stored.strip_prefix("argon2$") {
        Some(rest) => format!("${rest}"),
        None => stored.to_owned(),
    };
    let Ok(parsed) = Phc::new(&phc) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm.as_str().starts_with("argon2")
        && ARGON2_PASSES.contains(&params.t_cost())
        && ARGON2_LANES.contains(&params.p_cost())
        && params.m_cost() <= MAX_VERIFY_MEMORY_KIB
}

/// The bounds of [`hash_cost_within_bounds`], as a report states them.
pub fn hash_cost_bounds() -> String {
    format!(
        "pbkdf2_sha256 iterations {}-{}; argon2 t {}-{}, m up to {} KiB, p {}-{}",
        PBKDF2_ITERATIONS.start(),
        PBKDF2_ITERATIONS.end(),
        ARGON2_PASSES.start(),
        ARGON2_PASSES.end(),
        MAX_VERIFY_MEMORY_KIB,
        ARGON2_LANES.start(),
        ARGON2_LANES.end(),
    )
}

/// Checks `password` against `stored` on the current thread, reusing
/// `blocks` when the hash has the current parameters; computes the upgraded
/// hash when it matched anything else.
///
/// This service compares passwords trimmed, as Register stores them; the
/// Django app did not trim, so a Django hash is checked with the password
/// as typed, then trimmed if that differs. The upgrade hashes the trimmed
/// one, which is what a later sign-in here compares.
fn verify_with_memory(
    password: &str,
    stored: &str,
    blocks: &mut [Block],
) -> Result<Verified, HashError> {
    let trimmed = password.trim();
    let mut typed = std::iter::once(password).chain((trimmed != password).then_some(trimmed));
    let (matched, current) = if !hash_cost_within_bounds(stored) {
        (false, false)
    } else if let Some(django) = stored.strip_prefix("pbkdf2_sha256$") {
        (typed.any(|p| pbkdf2_matches(p, django)), false)
    } else if let Some(phc) = stored.strip_prefix("argon2$") {
        // Django writes its argon2 hashes as `argon2` + the PHC string.
        let phc = format!("${phc}");
        let matched = typed.any(|p| argon2_matches(p, &phc, blocks).0);
        (matched, false)
    } else if stored.starts_with("$argon2") {
        argon2_matches(trimmed, stored, blocks)
    } else {
        (false, false)
    };
    let upgrade = if matched && !current {
        Some(hash_with_memory(trimmed, blocks)?)
    } else {
        None
    };
    Ok(Verified { matched, upgrade })
}

/// (matched, made with the current parameters) for a PHC argon2 string.
fn argon2_matches(password: &str, phc: &str, blocks: &mut [Block]) -> (bool, bool) {
    use argon2::password_hash::{PasswordHash as Phc, PasswordVerifier};
    use subtle::ConstantTimeEq;

    let Ok(parsed) = Phc::new(phc) else {
        return (false, false);
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return (false, false);
    };
    let current = parsed.algorithm == Algorithm::Argon2id.ident()
        && parsed.version == Some(Version::V0x13 as u32)
        && params.m_cost() == MEMORY_KIB
        && params.t_cost() == ITERATIONS
        && params.p_cost() == PARALLELISM;
    if current {
        // The hashing thread's own work area: no 19 MiB allocation per check.
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return (false, true);
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
            return (false, true);
        };
        let mut out = vec![0u8; expected.len()];
        let computed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut *blocks);
        return (
            computed.is_ok() && bool::from(out.as_slice().ct_eq(expected.as_bytes())),
            true,
        );
    }
    (
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        false,
    )
}

/// Django's PBKDF2-SHA256: `<iterations>$<salt>$<base64 of the derived key>`.
fn pbkdf2_matches(password: &str, rest: &str) -> bool {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use subtle::ConstantTimeEq;

    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(encoded)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<std::num::NonZeroU32>() else {
        return false;
    };
    let Ok(expected) = STANDARD.decode(encoded) else {
        return false;
    };
    // The iterations were bounded by `hash_cost_within_bounds`.
    if expected.is_empty() || expected.len() > 64 {
        return false;
    }
    let mut derived = vec![0u8; expected.len()];
    super::kdf::pbkdf2_sha256(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    bool::from(derived.ct_eq(&expected))
}

#[cfg(test)]
mod tests;
