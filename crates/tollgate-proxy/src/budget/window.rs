//! Where a moment falls in a limit's window: which slot it counts in, which slots still
//! count, and when a slot stops counting. Pure arithmetic on Unix milliseconds, so window
//! rollover is tested with any clock.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, ZonedDateTime};
use std::cell::RefCell;
use std::collections::VecDeque;
use tollgate_config::Window;

/// Slots in a rolling window: a minute counts in seconds, an hour in minutes.
const ROLLING_SLOTS: i64 = 60;

/// A window as seen at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// The slot that amounts counted now go to.
    pub(crate) slot: i64,
    /// The oldest slot that still counts; older ones are forgotten.
    pub(crate) first_live: i64,
    /// How long a store must keep the counter after this moment.
    pub(crate) ttl_ms: i64,
    kind: SpanKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SpanKind {
    /// Slots are `slot_ms` long; a slot counts for `ROLLING_SLOTS` slots.
    Rolling { slot_ms: i64 },
    /// One slot, numbered by the window's start, that counts until `end_ms`.
    Calendar { end_ms: i64 },
}

impl Span {
    /// The span of `window` at `now_ms`; calendar windows follow `zone`.
    pub(crate) fn at(window: Window, zone: &TimeZone, now_ms: i64) -> Span {
        match window {
            Window::Minute => Span::rolling(1_000, now_ms),
            Window::Hour => Span::rolling(60_000, now_ms),
            Window::Day | Window::Month => {
                let (start, end) = calendar_bounds(window, zone, now_ms);
                Span {
                    slot: start,
                    first_live: start,
                    ttl_ms: end - now_ms + 60_000,
                    kind: SpanKind::Calendar { end_ms: end },
                }
            }
        }
    }

    fn rolling(slot_ms: i64, now_ms: i64) -> Span {
        let slot = now_ms.div_euclid(slot_ms);
        Span {
            slot,
            first_live: slot - ROLLING_SLOTS + 1,
            ttl_ms: (ROLLING_SLOTS + 1) * slot_ms,
            kind: SpanKind::Rolling { slot_ms },
        }
    }

    /// When amounts counted in `slot` stop counting, in Unix milliseconds.
    pub(crate) fn expiry_of(&self, slot: i64) -> i64 {
        match self.kind {
            SpanKind::Rolling { slot_ms } => (slot + ROLLING_SLOTS) * slot_ms,
            SpanKind::Calendar { end_ms } => end_ms,
        }
    }

    /// The length of the whole window at this moment, in milliseconds: the period an alert
    /// fires at most once in.
    pub(crate) fn period_ms(&self) -> i64 {
        match self.kind {
            SpanKind::Rolling { slot_ms } => slot_ms * ROLLING_SLOTS,
            SpanKind::Calendar { end_ms } => end_ms - self.slot,
        }
    }

    /// A number naming the period `now_ms` falls in, for once-per-window alerts.
    pub(crate) fn period_of(&self, now_ms: i64) -> i64 {
        match self.kind {
            SpanKind::Rolling { .. } => now_ms.div_euclid(self.period_ms()),
            SpanKind::Calendar { .. } => self.slot,
        }
    }
}

/// A calendar day or month of one time zone, from its start to its end in Unix milliseconds.
struct Period {
    window: Window,
    zone: TimeZone,
    start: i64,
    end: i64,
}

/// How many periods each thread remembers.
const REMEMBERED_PERIODS: usize = 8;

thread_local! {
    /// The periods this thread found last: every request of a day or month falls in the same
    /// one, and finding it takes time-zone arithmetic.
    static PERIODS: RefCell<VecDeque<Period>> = const { RefCell::new(VecDeque::new()) };
}

/// The start and end of the calendar day or month containing `now_ms` in `zone`.
fn calendar_bounds(window: Window, zone: &TimeZone, now_ms: i64) -> (i64, i64) {
    let remembered = PERIODS.with_borrow(|periods| {
        periods
            .iter()
            .find(|p| p.window == window && p.start <= now_ms && now_ms < p.end && p.zone == *zone)
            .map(|p| (p.start, p.end))
    });
    if let Some(bounds) = remembered {
        return bounds;
    }
    let Some((start, end, exact)) = find_period(window, zone, now_ms) else {
        return (now_ms, now_ms + 86_400_000);
    };
    if exact && start <= now_ms && now_ms < end {
        PERIODS.with_borrow_mut(|periods| {
            if periods.len() == REMEMBERED_PERIODS {
                periods.pop_front();
            }
            periods.push_back(Period {
                window,
                zone: zone.clone(),
                start,
                end,
            });
        });
    }
    (start, end)
}

/// [`calendar_bounds`], worked out, and whether the end is the period's own (rather than a
/// day from now); `None` when the period's start cannot be found.
fn find_period(window: Window, zone: &TimeZone, now_ms: i64) -> Option<(i64, i64, bool)> {
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let local = ZonedDateTime::new(now, zone.clone());
    let start = match window {
        Window::Month => local.first_of_month().and_then(|d| d.start_of_day()),
        _ => local.start_of_day(),
    };
    let start = start.ok()?;
    let end = match window {
        Window::Month => start.checked_add(1.month()),
        _ => start.checked_add(1.day()),
    }
    .and_then(|end| end.start_of_day());
    let start_ms = start.timestamp().as_millisecond();
    Some(match end {
        Ok(end) => (start_ms, end.timestamp().as_millisecond(), true),
        Err(_) => (start_ms, now_ms + 86_400_000, false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn rolling_minute_counts_the_last_sixty_seconds() {
        let now = ms("2026-11-23T10:00:30.500Z");
        let span = Span::at(Window::Minute, &TimeZone::UTC, now);
        assert_eq!(span.slot, now / 1000);
        assert_eq!(span.first_live, now / 1000 - 59);
        // The slot counted now stops counting a minute later, on its second's boundary.
        assert_eq!(span.expiry_of(span.slot), ms("2026-11-23T10:01:30Z"));
        let later = Span::at(Window::Minute, &TimeZone::UTC, ms("2026-11-23T10:01:30Z"));
        assert!(span.slot < later.first_live, "rolled out after 60 s");
        let just_before = Span::at(
            Window::Minute,
            &TimeZone::UTC,
            ms("2026-11-23T10:01:29.999Z"),
        );
        assert!(
            span.slot >= just_before.first_live,
            "still counted at 59.5 s"
        );
    }

    #[test]
    fn rolling_hour_counts_in_minutes() {
        let now = ms("2026-11-23T10:00:30Z");
        let span = Span::at(Window::Hour, &TimeZone::UTC, now);
        assert_eq!(span.expiry_of(span.slot), ms("2026-11-23T11:00:00Z"));
        assert_eq!(span.period_ms(), 3_600_000);
    }

    #[test]
    fn calendar_day_follows_the_time_zone() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        // 23:30 UTC on the 23rd is already the 24th in Paris (UTC+1 in November).
        let span = Span::at(Window::Day, &paris, ms("2026-11-23T23:30:00Z"));
        assert_eq!(span.slot, ms("2026-11-23T23:00:00Z"));
        assert_eq!(span.first_live, span.slot);
        assert_eq!(span.expiry_of(span.slot), ms("2026-11-24T23:00:00Z"));
        let utc = Span::at(Window::Day, &TimeZone::UTC, ms("2026-11-23T23:30:00Z"));
        assert_eq!(utc.slot, ms("2026-11-23T00:00:00Z"));
        assert_eq!(utc.expiry_of(utc.slot), ms("2026-11-24T00:00:00Z"));
    }

    #[test]
    fn remembered_periods_are_the_ones_worked_out() {
        let paris: TimeZone = TimeZone::get("Europe/Paris").unwrap();
        let mut now = ms("2026-10-31T22:00:00Z");
        while now < ms("2026-11-02T03:00:00Z") {
            for window in [Window::Day, Window::Month] {
                for zone in [&paris, &TimeZone::UTC] {
                    let (start, end, _) = find_period(window, zone, now).unwrap();
                    assert_eq!(calendar_bounds(window, zone, now), (start, end), "{now}");
                    assert_eq!(calendar_bounds(window, zone, now), (start, end), "{now}");
                }
            }
            now += 1_800_000;
        }
    }

    #[test]
    fn calendar_month_rolls_over_at_its_end() {
        let november = Span::at(
            Window::Month,
            &TimeZone::UTC,
            ms("2026-11-30T23:59:59.999Z"),
        );
        assert_eq!(november.slot, ms("2026-11-01T00:00:00Z"));
        assert_eq!(
            november.expiry_of(november.slot),
            ms("2026-12-01T00:00:00Z")
        );
        let december = Span::at(Window::Month, &TimeZone::UTC, ms("2026-12-01T00:00:00Z"));
        assert_eq!(december.slot, ms("2026-12-01T00:00:00Z"));
        assert!(
            november.slot < december.first_live,
            "November no longer counts"
        );
        assert_ne!(november.period_of(0), december.period_of(0));
        // A day that is 23 hours long (spring forward) still ends at the next midnight.
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let dst = Span::at(Window::Day, &paris, ms("2026-03-29T12:00:00Z"));
        assert_eq!(dst.expiry_of(dst.slot) - dst.slot, 23 * 3_600_000);
    }
}
