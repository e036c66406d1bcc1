//! The driver's clock: monotonic time expressed as Unix-epoch milliseconds.
//!
//! The node takes `now` as a parameter and its deadlines are absolute milliseconds on the same
//! scale. Reading the wall clock on every packet would let a clock step (NTP, suspend, an
//! operator) move time backwards or jump it forwards under the node, so the driver reads the
//! wall clock once at start and advances from there with the monotonic clock. Deadlines map
//! back to monotonic instants for `tokio::time::sleep_until`. tokio's clock is used so that
//! tests with a paused runtime stay deterministic.
//!
//! Test hook: [`set_wall_clock_offset_ms`] (the daemon's `ZTRS_CLOCK_OFFSET_MS`) shifts the
//! wall-clock reading of every clock started afterwards, so a rig can run one node whose
//! clock is hours off without stepping the machine's clock. Restarting a node with another
//! offset is how a rig models "its clock jumped": a step while running never reaches the
//! node, because the reading is taken once.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The furthest ahead a deadline is honoured: a node asking for "never" (or a deadline
/// beyond what an `Instant` can hold) is woken up at this horizon and simply asked again.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// Signed shift (ms) applied to the wall clock when a clock is anchored; 0 unless a test
/// hook set it.
static WALL_CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Shifts the wall-clock reading of every [`EpochClock::start`] after this call by
/// `offset_ms` (a test hook: a node whose clock is far off; clocks already started keep
/// their anchor).
pub fn set_wall_clock_offset_ms(offset_ms: i64) {
    WALL_CLOCK_OFFSET_MS.store(offset_ms, Ordering::Relaxed);
}

/// The wall clock in Unix milliseconds shifted by `offset_ms` (0 before 1970).
fn wall_clock_ms(offset_ms: i64) -> u64 {
    let system_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        });
    system_ms.saturating_add_signed(offset_ms)
}

/// Monotonic milliseconds anchored to the Unix epoch at creation.
#[derive(Clone, Copy, Debug)]
pub struct EpochClock {
    origin: Instant,
    origin_ms: u64,
}

impl EpochClock {
    /// Anchors the clock at the current wall-clock time (0 if the system clock is before
    /// 1970), shifted by the test offset if one is set.
    pub fn start() -> EpochClock {
        EpochClock::start_with_offset(WALL_CLOCK_OFFSET_MS.load(Ordering::Relaxed))
    }

    /// Anchors the clock at the current wall-clock time shifted by `offset_ms`.
    pub fn start_with_offset(offset_ms: i64) -> EpochClock {
        EpochClock::anchored(Instant::now(), wall_clock_ms(offset_ms))
    }

    /// A clock that reads `origin_ms` at `origin` (tests).
    pub fn anchored(origin: Instant, origin_ms: u64) -> EpochClock {
        EpochClock { origin, origin_ms }
    }

    /// Milliseconds now; never decreases.
    pub fn now_ms(&self) -> u64 {
        self.ms_at(Instant::now())
    }

    /// The clock's reading at `instant` (the origin's reading for instants before it).
    pub fn ms_at(&self, instant: Instant) -> u64 {
        let elapsed = instant.saturating_duration_since(self.origin).as_millis();
        self.origin_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// The instant at which the clock reads `deadline_ms`, at most [`MAX_SLEEP`] after `now`.
    pub fn instant_of(&self, deadline_ms: u64, now: Instant) -> Instant {
        let offset = Duration::from_millis(deadline_ms.saturating_sub(self.origin_ms));
        let horizon = now + MAX_SLEEP;
        self.origin
            .checked_add(offset)
            .map_or(horizon, |at| at.min(horizon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_trip_and_are_capped() {
        let origin = Instant::now();
        let clock = EpochClock::anchored(origin, 1_700_000_000_000);
        assert_eq!(clock.ms_at(origin), 1_700_000_000_000);
        assert_eq!(
            clock.ms_at(origin + Duration::from_millis(1500)),
            1_700_000_001_500
        );
        // Instants before the origin read as the origin (never backwards).
        assert_eq!(
            clock.ms_at(origin - Duration::from_millis(1)),
            1_700_000_000_000
        );
        let at = clock.instant_of(1_700_000_000_250, origin);
        assert_eq!(at, origin + Duration::from_millis(250));
        // A deadline in the past maps to the origin, one far away to the horizon.
        assert_eq!(clock.instant_of(0, origin), origin);
        assert_eq!(clock.instant_of(u64::MAX, origin), origin + MAX_SLEEP);
    }

    #[test]
    fn start_is_near_the_wall_clock() {
        let clock = EpochClock::start();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(clock.now_ms().abs_diff(wall) < 5_000);
    }

    #[test]
    fn offsets_shift_the_anchor_and_the_clock_stays_monotonic() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        const THREE_HOURS: i64 = 3 * 3600 * 1000;
        let ahead = EpochClock::start_with_offset(THREE_HOURS);
        let behind = EpochClock::start_with_offset(-THREE_HOURS);
        assert!(ahead.now_ms().abs_diff(wall + THREE_HOURS as u64) < 5_000);
        assert!(behind.now_ms().abs_diff(wall - THREE_HOURS as u64) < 5_000);
        let first = behind.now_ms();
        assert!(behind.now_ms() >= first);
        // An offset beyond the epoch saturates instead of wrapping.
        assert_eq!(EpochClock::start_with_offset(i64::MIN).origin_ms, 0);
    }
}
