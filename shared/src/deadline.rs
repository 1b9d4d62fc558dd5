//! The one Lambda deadline every function works to: read once from the invocation's context, with one fallback
//! when the runtime gives none, and one rule for the time kept free at the end.
//!
//! The margin is what a function wants to keep free (to publish its events and answer), but never more than a
//! quarter of the time the invocation was given: with Lambda's 15 minutes a 30 s margin is kept whole, while a short
//! deadline (a local emulator such as `cargo lambda watch`, or a function configured with a few seconds) still
//! leaves three quarters of its time for work instead of none.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// When the runtime gives no deadline (0, or one already past when read), assume Lambda's maximum timeout.
pub const FALLBACK: Duration = Duration::from_secs(900);
/// The share of the invocation's time that a margin may take at most.
const MAX_MARGIN_SHARE: u32 = 4;

/// When the invocation must have answered, on the wall clock, and how much time it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Timestamp,
    given: Duration,
}

impl Deadline {
    /// From the Lambda context (`deadline` is milliseconds since the epoch).
    pub fn from_context(context: &lambda_runtime::Context) -> Self {
        Self::from_millis(context.deadline, Timestamp::now())
    }

    /// From a deadline in milliseconds since the epoch, read at `now`; 0, unreadable or past → [`FALLBACK`].
    pub fn from_millis(deadline_ms: u64, now: Timestamp) -> Self {
        i64::try_from(deadline_ms)
            .ok()
            .filter(|ms| *ms > 0)
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .filter(|at| *at > now)
            .map(|at| Self::between(now, at))
            .unwrap_or_else(|| Self::between(now, now + FALLBACK))
    }

    /// A deadline `left` from now.
    pub fn after(left: Duration) -> Self {
        let now = Timestamp::now();
        Self::between(now, now + left)
    }

    fn between(now: Timestamp, at: Timestamp) -> Self {
        let given = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
        Self { at, given }
    }

    /// The deadline on the wall clock: what a claim or a lease that lapses with this invocation stores.
    pub fn wall_clock(&self) -> Timestamp {
        self.at
    }

    /// The time the invocation was given when the deadline was read.
    pub fn given(&self) -> Duration {
        self.given
    }

    /// The time left now.
    pub fn remaining(&self) -> Duration {
        Duration::try_from(self.at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
    }

    /// The margin actually kept for a `wanted` one: at most a quarter of the time given.
    pub fn margin(&self, wanted: Duration) -> Duration {
        wanted.min(self.given / MAX_MARGIN_SHARE)
    }

    /// The moment after which no new work starts, keeping `margin(wanted)` free before the deadline.
    pub fn stop_at(&self, wanted: Duration) -> Timestamp {
        let margin = SignedDuration::try_from(self.margin(wanted)).unwrap_or(SignedDuration::ZERO);
        self.at.checked_sub(margin).unwrap_or(self.at)
    }

    /// Whether new work may still start now, keeping `margin(wanted)` free.
    pub fn may_start(&self, wanted: Duration) -> bool {
        Timestamp::now() < self.stop_at(wanted)
    }

    /// The time left before [`Deadline::stop_at`]: how long a wait may last.
    pub fn working_time_left(&self, wanted: Duration) -> Duration {
        Duration::try_from(self.stop_at(wanted).duration_since(Timestamp::now()))
            .unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    #[test]
    fn a_context_deadline_is_read_as_given_and_a_missing_one_falls_back() {
        let now = t("2026-12-04T10:00:00Z");
        let in_15_min = now.as_millisecond() as u64 + 900_000;
        let d = Deadline::from_millis(in_15_min, now);
        assert_eq!(d.wall_clock(), now + Duration::from_secs(900));
        assert_eq!(d.given(), Duration::from_secs(900));

        for unusable in [0, 1, u64::MAX, now.as_millisecond() as u64 - 1] {
            let d = Deadline::from_millis(unusable, now);
            assert_eq!(d.wall_clock(), now + FALLBACK, "{unusable}");
        }
    }

    #[test]
    fn the_margin_is_kept_whole_on_long_deadlines_and_shrinks_on_short_ones() {
        let now = t("2026-12-04T10:00:00Z");
        let margin = Duration::from_secs(30);
        let long = Deadline::from_millis(now.as_millisecond() as u64 + 900_000, now);
        assert_eq!(long.margin(margin), margin);
        assert_eq!(
            long.stop_at(margin),
            now + Duration::from_secs(870),
            "15 minutes keep 30 s"
        );
        // What a local emulator gives: 30 s. A fixed 30 s margin would leave nothing; a quarter is kept.
        let short = Deadline::from_millis(now.as_millisecond() as u64 + 30_000, now);
        assert_eq!(short.margin(margin), Duration::from_millis(7_500));
        assert_eq!(short.stop_at(margin), now + Duration::from_millis(22_500));
        // A small wanted margin is kept as asked.
        assert_eq!(short.margin(Duration::from_secs(2)), Duration::from_secs(2));
    }

    #[test]
    fn time_left_is_never_negative() {
        let past = Deadline {
            at: Timestamp::now() - Duration::from_secs(5),
            given: Duration::from_secs(10),
        };
        assert_eq!(past.remaining(), Duration::ZERO);
        assert_eq!(
            past.working_time_left(Duration::from_secs(1)),
            Duration::ZERO
        );
        assert!(!past.may_start(Duration::ZERO));
        let ahead = Deadline::after(Duration::from_secs(60));
        assert!(ahead.remaining() > Duration::from_secs(50));
        assert!(ahead.may_start(Duration::from_secs(30)));
    }
}
