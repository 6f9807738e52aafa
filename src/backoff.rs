//! Exponential backoff with jitter, for everything that retries on its own.

use std::time::Duration;

use rand::Rng;

/// Delays that double from `first` up to `max`, each with ±20% jitter so
/// that instances that failed together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt; each call doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        nominal.mul_f64(rand::thread_rng().gen_range(0.8..=1.2))
    }

    /// Back to the first delay, after a success.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Runs `attempt` until it succeeds, sleeping the backoff's delays between
/// failures (each logged as a warning about `what`); `None` once `stop` is
/// cancelled. The backoff starts again from its first delay.
pub async fn until_ok<T, E, F, Fut>(
    backoff: &mut Backoff,
    stop: &tokio_util::sync::CancellationToken,
    what: &str,
    mut attempt: F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    backoff.reset();
    loop {
        let result = tokio::select! {
            () = stop.cancelled() => return None,
            result = attempt() => result,
        };
        match result {
            Ok(value) => return Some(value),
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %e, retry_in_secs = delay.as_secs_f64(), "{what} failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_ever_more_slowly() {
        let stop = tokio_util::sync::CancellationToken::new();
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let run = until_ok(&mut backoff, &stop, "test", || async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err::<(), _>("refused")
        });
        // Sixty seconds of failures: 0.25 + 0.5 + 1 + 2 + 4 + 8 + 16 + 30 ...
        let outcome = tokio::time::timeout(Duration::from_secs(60), run).await;
        assert!(outcome.is_err(), "it never stops retrying by itself");
        let n = attempts.load(std::sync::atomic::Ordering::Relaxed);
        assert!((7..=10).contains(&n), "{n} attempts in a minute");
        // And it succeeds as soon as the attempt does.
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut left = 3;
        let value = until_ok(&mut backoff, &stop, "test", || {
            left -= 1;
            let ok = left == 0;
            async move {
                if ok {
                    Ok(42)
                } else {
                    Err("not yet")
                }
            }
        })
        .await;
        assert_eq!(value, Some(42));
        stop.cancel();
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let stopped = until_ok(&mut backoff, &stop, "test", || async { Err::<(), _>("x") }).await;
        assert_eq!(stopped, None);
    }

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let delays: Vec<f64> = (0..6).map(|_| b.next_delay().as_secs_f64()).collect();
        for (d, nominal) in delays.iter().zip([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]) {
            assert!((nominal * 0.8..=nominal * 1.2).contains(d), "{delays:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(1200));
    }
}
