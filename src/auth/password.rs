//! argon2id hashing on a fixed pool of threads, with a bounded queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{rand_core::OsRng, Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::oneshot;

use crate::domain::Password;

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

struct Job {
    password: Password,
    reply: oneshot::Sender<Result<PasswordHash, HashError>>,
}

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
    jobs: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let (jobs, receiver) = sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        for i in 0..concurrency.max(1) {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&queued);
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || hashing_thread(&receiver, &queued));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        PasswordHasher { jobs, queued }
    }

    /// Requests waiting for a hashing thread.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: Password) -> Result<PasswordHash, HashError> {
        let (reply, answer) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send(Job { password, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                return Err(HashError::Failed(anyhow::anyhow!(
                    "no password hashing thread is running"
                )));
            }
        }
        answer.await.map_err(|_| {
            HashError::Failed(anyhow::anyhow!("the password hashing thread stopped"))
        })?
    }
}

fn hashing_thread(receiver: &Mutex<Receiver<Job>>, queued: &AtomicUsize) {
    let mut memory: Option<Vec<Block>> = None;
    loop {
        let next = match receiver.lock() {
            Ok(r) => r.recv_timeout(IDLE_RELEASE),
            Err(_) => return,
        };
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                memory = None;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        queued.fetch_sub(1, Ordering::Relaxed);
        let blocks = memory.get_or_insert_with(|| vec![Block::default(); MEMORY_KIB as usize]);
        let result = hash_with_memory(job.password.expose(), blocks);
        // The caller may have gone away (request cancelled): nothing to do.
        let _ = job.reply.send(result);
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

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash as Phc, PasswordVerifier};

    fn verify(hash: &PasswordHash, password: &str) -> bool {
        let parsed = Phc::new(hash.expose()).unwrap();
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    }

    #[tokio::test]
    async fn produces_a_verifiable_argon2id_phc_string() {
        let hasher = PasswordHasher::new(1, 4);
        let hash = hasher
            .hash(Password::parse("secret123").unwrap())
            .await
            .unwrap();
        assert!(hash.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify(&hash, "secret123"));
        assert!(!verify(&hash, "secret124"));
        // The reused work area gives the same results as a fresh one.
        let again = hasher
            .hash(Password::parse("other-pass1").unwrap())
            .await
            .unwrap();
        assert!(verify(&again, "other-pass1"));
        assert!(verify(&hash_blocking("pässwörd1").unwrap(), "pässwörd1"));
    }

    #[tokio::test]
    async fn refuses_at_once_when_the_queue_is_full() {
        let hasher = PasswordHasher::new(1, 1);
        let password = Password::parse("secret123").unwrap();
        let calls = (0..8).map(|_| hasher.hash(password.clone()));
        let results = futures::future::join_all(calls).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert!(busy >= 1, "a full queue must refuse");
        assert!(ok >= 1);
        assert_eq!(busy + ok, 8);
        assert_eq!(hasher.queued(), 0);
    }
}
