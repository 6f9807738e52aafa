//! argon2id hashing on blocking threads, with bounded concurrency and queue.

use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// OWASP's argon2id recommendation: 19 MiB, two passes, one lane.
const MEMORY_KIB: u32 = 19_456;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// A PHC-format argon2id hash string.
#[derive(Clone)]
pub struct PasswordHash(SecretString);

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

/// Hashes passwords on tokio's blocking pool.
///
/// Each hash holds 19 MiB for ~20 ms of one core, so running more hashes than
/// cores only adds memory and latency: `running` admits one per core, and
/// `admitted` bounds how many may wait, so a burst is refused at once instead
/// of queueing without limit.
#[derive(Clone)]
pub struct PasswordHasher {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    concurrency: usize,
    capacity: usize,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        let capacity = concurrency + queue;
        PasswordHasher {
            running: Arc::new(Semaphore::new(concurrency)),
            admitted: Arc::new(Semaphore::new(capacity)),
            concurrency,
            capacity,
        }
    }

    /// Requests admitted but still waiting for a hashing slot.
    pub fn queued(&self) -> usize {
        let admitted = self.capacity - self.admitted.available_permits();
        let running = self.concurrency - self.running.available_permits();
        admitted.saturating_sub(running)
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        let _admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let running = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Failed(e.into()))?;
        tokio::task::spawn_blocking(move || {
            let _running = running;
            hash_blocking(password.expose())
        })
        .await
        .map_err(|e| HashError::Failed(e.into()))?
    }
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|e| HashError::Failed(anyhow::anyhow!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes one password on the current thread; call from a blocking context.
pub fn hash_blocking(password: &str) -> Result<PasswordHash, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| HashError::Failed(anyhow::anyhow!("argon2: {e}")))?;
    Ok(PasswordHash(SecretString::from(hash.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash as Phc, PasswordVerifier};

    #[tokio::test]
    async fn produces_a_verifiable_argon2id_phc_string() {
        let hasher = PasswordHasher::new(1, 0);
        let hash = hasher
            .hash(Password::parse("secret123").unwrap())
            .await
            .unwrap();
        assert!(hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let parsed = Phc::new(hash.expose()).unwrap();
        assert!(Argon2::default()
            .verify_password(b"secret123", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"secret124", &parsed)
            .is_err());
    }

    #[tokio::test]
    async fn refuses_when_queue_is_full() {
        let hasher = PasswordHasher::new(1, 0);
        let held = hasher.admitted.clone().try_acquire_owned().unwrap();
        let err = hasher
            .hash(Password::parse("secret123").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, HashError::Busy));
        drop(held);
    }
}
