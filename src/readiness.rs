//! Whether the service may serve: the database was reached and migrated
//! since start-up, and answers now.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::storage::{Storage, StorageError};

pub struct Readiness {
    /// Set once the database was reached and migrated after start-up.
    reached: AtomicBool,
    storage: Arc<dyn Storage>,
}

impl Readiness {
    pub fn new(storage: Arc<dyn Storage>) -> Self {
        Readiness {
            reached: AtomicBool::new(false),
            storage,
        }
    }

    /// The database was reached and migrated: requests are served from now on.
    pub fn mark_ready(&self) {
        self.reached.store(true, Ordering::Release);
    }

    /// Whether the database was reached and migrated since start-up.
    pub fn is_ready(&self) -> bool {
        self.reached.load(Ordering::Acquire)
    }

    /// Succeeds once the database was reached and migrated: what a call
    /// checks before it runs (without asking the database again).
    pub fn ensure_ready(&self) -> Result<(), StorageError> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(StorageError::NotReady)
        }
    }

    /// Succeeds when the database was migrated and answers now.
    pub async fn check(&self) -> Result<(), StorageError> {
        if !self.is_ready() {
            return Err(StorageError::NotReady);
        }
        self.storage.ping().await
    }
}
