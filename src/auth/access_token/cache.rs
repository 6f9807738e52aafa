//! Access tokens already verified, so that a service asking about the same
//! token on every request pays for its signature once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::AccessClaims;

/// The most tokens remembered: under a MiB, whatever the traffic or the
/// number of sessions.
const CAPACITY: usize = 1024;

/// Verified tokens by their full text, until they expire. Only tokens whose
/// signature, issuer and audience checked out are kept, and a hit must match
/// the whole text, so the cache can only answer what verification would.
#[derive(Clone, Default)]
pub(super) struct VerifiedTokens(Arc<Mutex<HashMap<Box<str>, AccessClaims>>>);

impl VerifiedTokens {
    pub(super) fn get(&self, token: &str, now: DateTime<Utc>) -> Option<AccessClaims> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(token).copied().filter(|c| c.expires_at > now)
    }

    pub(super) fn insert(&self, token: &str, claims: AccessClaims, now: DateTime<Utc>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= CAPACITY {
            // Expired entries go first; when every one is live, all go:
            // a cold start costs one signature check per token.
            map.retain(|_, c| c.expires_at > now);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(token.into(), claims);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn claims(expires_at: DateTime<Utc>) -> AccessClaims {
        AccessClaims {
            account_id: Uuid::now_v7(),
            session_id: Uuid::now_v7(),
            expires_at,
        }
    }

    #[test]
    fn a_hit_needs_the_whole_text_and_an_unexpired_token() {
        let cache = VerifiedTokens::default();
        let now = Utc::now();
        let c = claims(now + chrono::Duration::seconds(60));
        cache.insert("a.b.c", c, now);
        assert_eq!(cache.get("a.b.c", now), Some(c));
        assert_eq!(cache.get("a.b.", now), None);
        assert_eq!(
            cache.get("a.b.c", now + chrono::Duration::seconds(60)),
            None
        );
    }

    #[test]
    fn it_stays_bounded() {
        let cache = VerifiedTokens::default();
        let now = Utc::now();
        for i in 0..CAPACITY * 2 + 1 {
            cache.insert(
                &i.to_string(),
                claims(now + chrono::Duration::seconds(60)),
                now,
            );
        }
        assert!(cache.0.lock().unwrap().len() <= CAPACITY);
    }
}
