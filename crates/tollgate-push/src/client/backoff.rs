//! How long to wait before reconnecting: doubling from the first wait to the longest, each
//! wait drawn between half and all of its step so that proxies cut off together do not all
//! come back in the same instant.

use rand::Rng;
use std::time::Duration;

pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            step: initial,
        }
    }

    /// The next wait; the one after it is twice as long (up to the longest).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (self.step * 2).min(self.max);
        step.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Starts over from the first wait (after a connection proved healthy).
    pub(crate) fn reset(&mut self) {
        self.step = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_longest_with_jitter_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let steps: Vec<Duration> = (0..10).map(|_| backoff.next_delay()).collect();
        for (i, delay) in steps.iter().enumerate() {
            let step =
                (Duration::from_millis(500) * 2u32.pow(i as u32)).min(Duration::from_secs(30));
            assert!(
                *delay >= step / 2 && *delay <= step,
                "{i}: {delay:?} vs {step:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(500));
    }
}
