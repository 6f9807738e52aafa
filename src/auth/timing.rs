//! The floor under a failed sign-in's answer time, so that no stored hash
//! tells its kind of account apart.
//!
//! A wrong password costs what the stored hash costs: this service's
//! argon2id, an imported Django PBKDF2 (hundreds of thousands of rounds), or
//! the dummy hash of an unknown address. Doing more work for the cheap cases
//! would spend CPU on every failure; instead a failure waits, without
//! working, until the floor has passed since the call began.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// PBKDF2 rounds of the newest Django default (6.0): an imported hash made
/// with these answers within the floor.
pub const REFERENCE_PBKDF2_ITERATIONS: u32 = 1_200_000;

/// Rounds actually computed at start-up; the reference cost is scaled from
/// them, so calibration stays short.
const CALIBRATION_ITERATIONS: NonZeroU32 = match NonZeroU32::new(60_000) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// Head room over the measured costs, for a machine busier than at start-up.
const MARGIN_PERCENT: u64 = 25;

/// The floor never rises above this, however slow one check was.
const MAX_FLOOR: Duration = Duration::from_secs(2);

/// The time a failed password check answers at the soonest; it rises (never
/// falls) when a check of an older kind of hash took longer.
#[derive(Debug, Default)]
pub struct FailureFloor {
    micros: AtomicU64,
}

impl FailureFloor {
    /// A floor of `floor`.
    pub fn fixed(at: Duration) -> FailureFloor {
        let floor = FailureFloor::default();
        floor.raise_to(at);
        floor
    }

    /// The floor for this machine: the larger of `argon2`, what one hash
    /// with the current parameters cost, and a Django PBKDF2 hash with the
    /// reference rounds, measured here. Runs on the calling thread for a few
    /// milliseconds: call it at start-up, off the request path. The argon2
    /// cost is measured by the caller, from a hash it makes anyway: another
    /// 19 MiB work area here would stay resident.
    pub fn calibrate(argon2: Duration) -> FailureFloor {
        // The quickest of a few runs: a busy moment at start-up must not
        // set a floor far above what a check costs.
        let pbkdf2 = (0..3)
            .map(|_| {
                let started = Instant::now();
                let mut out = [0u8; 32];
                super::kdf::pbkdf2_sha256(
                    b"failure floor calibration",
                    b"calibration-salt",
                    CALIBRATION_ITERATIONS,
                    &mut out,
                );
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
            .mul_f64(
                f64::from(REFERENCE_PBKDF2_ITERATIONS) / f64::from(CALIBRATION_ITERATIONS.get()),
            );

        let measured = argon2.max(pbkdf2);
        let floor = FailureFloor::fixed(measured + measured * MARGIN_PERCENT as u32 / 100);
        tracing::info!(
            floor_ms = u64::try_from(floor.get().as_millis()).unwrap_or(u64::MAX),
            "failed sign-ins answer no sooner than this floor"
        );
        floor
    }

    pub fn get(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::Relaxed))
    }

    /// Raises the floor to `took` (capped), when a check took longer.
    pub fn raise_to(&self, took: Duration) {
        let micros = u64::try_from(took.min(MAX_FLOOR).as_micros()).unwrap_or(u64::MAX);
        self.micros.fetch_max(micros, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_only_rises_and_is_capped() {
        let floor = FailureFloor::fixed(Duration::from_millis(50));
        floor.raise_to(Duration::from_millis(10));
        assert_eq!(floor.get(), Duration::from_millis(50));
        floor.raise_to(Duration::from_millis(80));
        assert_eq!(floor.get(), Duration::from_millis(80));
        floor.raise_to(Duration::from_secs(60));
        assert_eq!(floor.get(), MAX_FLOOR);
    }
}
