//! Each caller's share of the event streams one instance feeds, so that one
//! caller's idle streams cannot leave none for the others.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// EVENT_STREAMS_PER_CALLER's default.
pub const DEFAULT_STREAMS_PER_CALLER: usize = 32;

/// Who a stream counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamHolder {
    /// An authenticated caller, by the name it is logged under.
    Caller(Arc<str>),
    /// With nothing authenticating callers, the client's address (`None`
    /// when the transport does not know it: those share one count).
    Address(Option<IpAddr>),
}

/// Streams held, by holder. A holder leaves the map with its last stream,
/// so the map is never larger than the streams open.
type Held = Arc<Mutex<HashMap<StreamHolder, usize>>>;

/// The streams each holder has open on this instance, and how many one may.
#[derive(Debug)]
pub struct CallerStreams {
    limit: usize,
    /// A std mutex: it guards one map update and is never held across an
    /// await, so an async one would only cost more.
    held: Held,
}

impl CallerStreams {
    /// `limit` is at least 1: a caller may always hold one stream.
    pub fn new(limit: usize) -> Self {
        CallerStreams {
            limit: limit.max(1),
            held: Arc::default(),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for one more stream of `holder`, or `None` when it holds
    /// `limit` already. The slot is given back when dropped.
    pub fn take(&self, holder: StreamHolder) -> Option<StreamSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(holder.clone()).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(StreamSlot {
            holder,
            held: Arc::clone(&self.held),
        })
    }

    #[cfg(test)]
    fn holders(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// One stream's place in its holder's share; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    holder: StreamHolder,
    held: Held,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.holder) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_holder_has_its_own_share_and_a_dropped_slot_frees_its_place() {
        let streams = CallerStreams::new(2);
        let crm = || StreamHolder::Caller(Arc::from("crm"));
        let first = streams.take(crm()).unwrap();
        let _second = streams.take(crm()).unwrap();
        assert!(streams.take(crm()).is_none());
        // Others are not affected, by name or by address.
        let _shop = streams
            .take(StreamHolder::Caller(Arc::from("shop")))
            .unwrap();
        let local = StreamHolder::Address(Some(IpAddr::from([127, 0, 0, 1])));
        let _a = streams.take(local.clone()).unwrap();
        let _b = streams.take(local.clone()).unwrap();
        assert!(streams.take(local).is_none());
        assert!(streams
            .take(StreamHolder::Address(Some(IpAddr::from([10, 0, 0, 2]))))
            .is_some());
        drop(first);
        assert!(streams.take(crm()).is_some());
    }

    #[test]
    fn holders_leave_the_map_with_their_last_stream() {
        let streams = CallerStreams::new(0);
        assert_eq!(streams.limit(), 1);
        let slots: Vec<_> = (0..100u8)
            .filter_map(|i| streams.take(StreamHolder::Address(Some(IpAddr::from([10, 0, 0, i])))))
            .collect();
        assert_eq!(streams.holders(), 100);
        drop(slots);
        assert_eq!(streams.holders(), 0);
        // A refused holder is not left behind either.
        let _one = streams.take(StreamHolder::Address(None)).unwrap();
        assert!(streams.take(StreamHolder::Address(None)).is_none());
        assert_eq!(streams.holders(), 1);
    }
}
