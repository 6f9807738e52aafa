//! How many database connections a backend keeps, and how long a request
//! waits for one: the part of the database settings that storage takes.

use std::time::Duration;

/// How many connections a backend keeps, and how long a request waits for one.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}
