//! How SQLite holds what it has no type for: UUIDs as their text, times as
//! microseconds since the epoch; shared by the pool's dialect and the
//! direct reads.

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(super) fn load_uuid(stored: String) -> Option<Uuid> {
    Uuid::parse_str(&stored).ok()
}

pub(super) fn load_time(stored: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(stored)
}
