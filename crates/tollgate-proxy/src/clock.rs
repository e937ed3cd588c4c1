//! Wall-clock time, for what is dated in the world — key expiry, token validity, budget
//! windows — rather than measured (durations use tokio's `Instant`).

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix milliseconds (0 if the system clock is before 1970).
pub(crate) fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
