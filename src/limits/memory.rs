//! Buckets in this process: each instance limits on its own, in bounded
//! maps.

use std::collections::HashMap;

use async_trait::async_trait;

use super::client::ClientKey;
use super::gcra::{KeyedLimiter, Rate};
use super::store::{Bucket, BucketStore, EmailKey, LimitError};
use crate::access::Callers;

/// Per-client and per-address limiters, and one per caller with a quota.
#[derive(Default)]
pub(super) struct MemoryBuckets {
    per_client: Option<KeyedLimiter<ClientKey>>,
    per_email: Option<KeyedLimiter<EmailKey>>,
    /// One per caller that has a quota, by label.
    quotas: HashMap<&'static str, KeyedLimiter<()>>,
}

impl MemoryBuckets {
    /// Limiters at these rates (none for an unlimited one), each holding at
    /// most `max_keys` keys.
    pub(super) fn new(per_client: Option<Rate>, per_email: Option<Rate>, max_keys: usize) -> Self {
        MemoryBuckets {
            per_client: per_client.and_then(|rate| rate.limiter(max_keys)),
            per_email: per_email.and_then(|rate| rate.limiter(max_keys)),
            quotas: HashMap::new(),
        }
    }

    /// A limiter for each of `callers` that has a quota.
    pub(super) fn with_quotas(mut self, callers: &Callers) -> Self {
        for caller in callers.iter() {
            let limiter = caller
                .requests_per_minute
                .and_then(Rate::per_minute)
                .and_then(|rate| rate.limiter(1));
            if let Some(limiter) = limiter {
                self.quotas.insert(caller.label, limiter);
            }
        }
        self
    }
}

#[async_trait]
impl BucketStore for MemoryBuckets {
    async fn take(&self, bucket: Bucket<'_>) -> Result<(), LimitError> {
        let taken = match bucket {
            Bucket::Client(key) => self.per_client.as_ref().map(|l| l.check(key)),
            Bucket::Address(key) => self.per_email.as_ref().map(|l| l.check(key)),
            Bucket::Caller(caller) => self.quotas.get(caller.label).map(|l| l.check(())),
        };
        taken.unwrap_or(Ok(())).map_err(LimitError::Exceeded)
    }

    async fn forget_idle(&self) {
        if let Some(l) = &self.per_client {
            l.forget_idle();
        }
        if let Some(l) = &self.per_email {
            l.forget_idle();
        }
        self.quotas.values().for_each(KeyedLimiter::forget_idle);
    }

    fn keys(&self) -> (usize, usize) {
        (
            self.per_client.as_ref().map_or(0, KeyedLimiter::len),
            self.per_email.as_ref().map_or(0, KeyedLimiter::len),
        )
    }
}
