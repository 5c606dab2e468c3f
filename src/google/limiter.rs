//! One limiter shared by every call: a governor that keeps Google's quota full without
//! going over it. Calls are paced to a rate, no rolling minute holds more calls than the
//! rate, and a semaphore caps the calls in flight.
//!
//! Google's quota (by default 2,400 calls a minute per delegated admin, raised on request)
//! is not told to the client: it is learnt, from when each call was sent and how Google
//! answered it. When Google answers "too fast" while the last minute is full, the calls
//! sent in that minute *are* its quota: the rate becomes 97 % of that count. After a quiet
//! minute during which the pace was used, the rate creeps up (2 %, then by steps that
//! double while Google keeps admitting) to find a raised quota; Google admitting a fuller
//! minute than was learnt raises what was learnt. A "too fast" while the minute held
//! clearly less than the quota learnt means Google lowered it: the limiter then probes (one
//! call a second) while the old calls leave the minute; the first probe admitted bounds the
//! new quota from below as the last refused one bounded it from above. A configured
//! `requests_per_minute` is a ceiling that is never passed (set below the quota, it is
//! honoured exactly). Hand-written rather than `governor`, because the rate changes at run
//! time.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit, watch};
use tokio::time::Instant;

/// Google's default quota, the starting rate when none is configured or learnt.
pub const DEFAULT_QUOTA_PER_MINUTE: f64 = 2_400.0;

/// The share of the learnt quota the rate is set to: the margin keeps rejections rare.
const TARGET_SHARE: f64 = 0.97;

/// The slowest the governor goes, calls a minute (a quota shared with another process can
/// leave this one nothing to measure); also the pace of the probes for a lowered quota.
const FLOOR_PER_MINUTE: f64 = 60.0;

/// A "too fast" while the last minute held less than this share of the quota learnt means
/// Google lowered its quota (at 97 % of a quota unchanged, Google does not refuse).
const LOWERED_UNDER: f64 = 0.99;

/// Quiet time after a rate-limit answer before the rate creeps up.
const QUIET: Duration = Duration::from_secs(60);

/// How often the rate creeps up while quiet, the first step and the largest one (steps
/// double while Google keeps admitting).
const CREEP_EVERY: Duration = Duration::from_secs(10);
const FIRST_STEP: f64 = 0.02;
const LARGEST_STEP: f64 = 0.16;

/// The rate creeps only while the last minute held this share of it: a pace nobody uses
/// (an idle daemon, slow calls) teaches nothing about the quota.
const BUSY: f64 = 0.9;

/// After a lowered quota is found, the old calls still leave the minute at the old pace;
/// for a minute the pace may go this much faster to fill what they leave.
const REFILL: f64 = 2.0;

const MINUTE: Duration = Duration::from_secs(60);

/// The pacing state.
#[derive(Debug)]
struct Pace {
    /// Calls a minute now.
    rate: f64,
    next_slot: Instant,
    /// When each call of the last minute was sent (future slots included, calls Google
    /// refused taken out), in order: what Google's rolling minute holds of this process.
    sent: VecDeque<Instant>,
    /// The quota learnt from Google, calls a minute.
    learnt: Option<f64>,
    /// The last "too fast" answer, and the last change of the rate upwards.
    limited_at: Option<Instant>,
    crept_at: Instant,
    /// The next step up, as a share of the rate.
    step: f64,
    /// While Google's lowered quota is searched for.
    probe: Option<Probe>,
    /// Until then the pace may go `REFILL` times faster (within the rate a minute).
    refill_until: Option<Instant>,
}

/// The search for a lowered quota.
#[derive(Debug, Clone, Copy)]
struct Probe {
    /// Slots given from then on are probes.
    since: Instant,
    /// The fewest calls a minute Google refused: the new quota is no more.
    upper: usize,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    /// The configured ceiling, calls a minute (`None`: learn the quota).
    ceiling: Option<f64>,
    pace: Mutex<Pace>,
    in_flight: Semaphore,
    /// Bumped when the pace changes down or up at once: calls waiting for a slot take a
    /// new one.
    repaced: watch::Sender<u64>,
}

/// A call's place: a slot in the pace and among the calls in flight. Google's answer is
/// told through it ([`Slot::admitted`], [`Slot::refused`]); a slot dropped untold (an
/// answer that says nothing of the quota) still counts as a call sent.
#[derive(Debug)]
pub struct Slot<'a> {
    limiter: &'a Limiter,
    at: Instant,
    _permit: SemaphorePermit<'a>,
}

impl Slot<'_> {
    /// Google admitted the call.
    pub fn admitted(self) {
        self.limiter.admitted(self.at);
    }

    /// Google said "too fast".
    pub fn refused(self) {
        self.limiter.refused(self.at);
    }
}

impl Pace {
    fn forget_older(&mut self, now: Instant) {
        while self.sent.front().is_some_and(|at| now >= *at + MINUTE) {
            self.sent.pop_front();
        }
    }

    /// Calls sent in the minute up to `until`, included.
    fn minute_to(&self, until: Instant) -> usize {
        let from = until.checked_sub(MINUTE);
        let first = from.map_or(0, |from| self.sent.partition_point(|at| *at <= from));
        self.sent.partition_point(|at| *at <= until) - first
    }

    fn record(&mut self, slot: Instant) {
        let at = self.sent.partition_point(|at| *at <= slot);
        self.sent.insert(at, slot);
    }

    fn remove(&mut self, slot: Instant) {
        let at = self.sent.partition_point(|at| *at < slot);
        if self.sent.get(at) == Some(&slot) {
            self.sent.remove(at);
        }
    }
}

impl Limiter {
    /// A limiter with `ceiling` calls a minute at most (`None`: learn Google's quota,
    /// starting from its default) and `concurrency` calls in flight.
    pub fn new(ceiling: Option<u32>, concurrency: u32) -> Limiter {
        let ceiling = ceiling.map(|c| f64::from(c.max(1)));
        let now = Instant::now();
        Limiter {
            ceiling,
            pace: Mutex::new(Pace {
                // A configured ceiling is the start (above Google's quota, the first "too
                // fast" teaches the quota, and the burst leaves the minute before more is
                // sent).
                rate: ceiling.unwrap_or(DEFAULT_QUOTA_PER_MINUTE),
                next_slot: now,
                sent: VecDeque::new(),
                learnt: None,
                limited_at: None,
                crept_at: now,
                step: FIRST_STEP,
                probe: None,
                refill_until: None,
            }),
            in_flight: Semaphore::new(concurrency.max(1) as usize),
            repaced: watch::Sender::new(0),
        }
    }

    /// Starts from a quota learnt before (kept in the store across restarts), unless one
    /// was learnt since this limiter was made.
    pub fn recall(&self, quota_per_minute: f64) {
        let mut pace = self.pace.lock().expect("limiter lock");
        if pace.learnt.is_none() && quota_per_minute > 0.0 {
            self.learn(&mut pace, quota_per_minute);
        }
    }

    /// Takes `quota` as Google's: the pace is set to its target share.
    fn learn(&self, pace: &mut Pace, quota: f64) {
        let quota = quota.max(FLOOR_PER_MINUTE);
        pace.learnt = Some(quota);
        pace.rate = self.capped(quota * TARGET_SHARE);
    }

    fn capped(&self, rate: f64) -> f64 {
        let rate = rate.max(FLOOR_PER_MINUTE);
        self.ceiling.map_or(rate, |c| rate.min(c))
    }

    /// Waits for a slot and a place among the calls in flight.
    pub async fn acquire(&self) -> Slot<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut repaced = self.repaced.subscribe();
        loop {
            let slot = self.give_slot();
            tokio::select! {
                () = tokio::time::sleep_until(slot) => return Slot {
                    limiter: self,
                    at: slot,
                    _permit: permit,
                },
                // The pace changed while this call waited for a slot given at the old
                // one: the slot is handed back and a new one taken (a refusal avoided,
                // or time saved).
                _ = repaced.changed() => self.pace.lock().expect("limiter lock").remove(slot),
            }
        }
    }

    /// The next slot: at the pace, and no more calls in any minute than the rate (a
    /// probe excepted: it is sent to be refused or to find room).
    fn give_slot(&self) -> Instant {
        let mut pace = self.pace.lock().expect("limiter lock");
        let now = Instant::now();
        pace.forget_older(now);
        let mut slot = pace.next_slot.max(now);
        if pace.probe.is_none() {
            let budget = pace.rate.ceil() as usize;
            loop {
                let held = pace.minute_to(slot);
                if held < budget {
                    break;
                }
                // Wait for the call whose leaving the minute makes room.
                let upto = pace.sent.partition_point(|at| *at <= slot);
                slot = pace.sent[upto - budget] + MINUTE;
            }
        }
        pace.record(slot);
        let spacing = 60.0 / pace.rate;
        let spacing = if pace.refill_until.is_some_and(|until| now < until) {
            spacing / REFILL
        } else {
            spacing
        };
        pace.next_slot = slot + Duration::from_secs_f64(spacing);
        slot
    }

    /// Tells the calls waiting for a slot that the pace changed.
    fn repace(&self) {
        self.repaced.send_modify(|n| *n += 1);
    }

    /// Google said "too fast" to a call sent at `at`.
    fn refused(&self, at: Instant) {
        let now = Instant::now();
        let mut pace = self.pace.lock().expect("limiter lock");
        pace.remove(at);
        pace.forget_older(now);
        let held = pace.minute_to(now);
        if let Some(probe) = pace.probe.as_mut() {
            probe.upper = probe.upper.min(held);
            return;
        }
        // The calls in flight of one burst all come back refused together: once a second.
        if pace
            .limited_at
            .is_some_and(|limited| now < limited + Duration::from_secs(1))
        {
            return;
        }
        let lowered = pace
            .learnt
            .is_some_and(|learnt| (held as f64) < learnt * LOWERED_UNDER);
        if lowered {
            pace.probe = Some(Probe {
                since: now,
                upper: held,
            });
            pace.rate = self.capped(FLOOR_PER_MINUTE);
        } else {
            self.learn(&mut pace, held as f64);
        }
        pace.refill_until = None;
        pace.next_slot = now + Duration::from_secs_f64(60.0 / pace.rate);
        pace.limited_at = Some(now);
        pace.step = FIRST_STEP;
        drop(pace);
        self.repace();
    }

    /// Google admitted a call sent at `at`.
    fn admitted(&self, at: Instant) {
        let now = Instant::now();
        let mut pace = self.pace.lock().expect("limiter lock");
        pace.forget_older(now);
        // What Google admitted: the minute up to this call, itself included.
        let held = pace.minute_to(at);
        if let Some(probe) = pace.probe {
            if at >= probe.since {
                // A probe admitted: the new quota lies between the minute that held it and
                // the fewest Google refused.
                let quota = if held < probe.upper {
                    (held + probe.upper) as f64 / 2.0
                } else {
                    held as f64
                };
                self.learn(&mut pace, quota);
                pace.probe = None;
                pace.refill_until = Some(now + MINUTE);
                pace.next_slot = now;
                pace.limited_at = Some(now);
                drop(pace);
                self.repace();
            }
            return;
        }
        // A fuller minute than was learnt: Google raised its quota.
        if let Some(learnt) = pace.learnt.as_mut() {
            *learnt = learnt.max(held as f64);
        }
        let quiet = pace.limited_at.is_none_or(|at| now >= at + QUIET);
        let busy = pace.minute_to(now) as f64 >= pace.rate * BUSY;
        if quiet && busy && now >= pace.crept_at + CREEP_EVERY {
            pace.rate = self.capped(pace.rate * (1.0 + pace.step));
            pace.step = (pace.step * 2.0).min(LARGEST_STEP);
            pace.crept_at = now;
        }
    }

    /// The current rate, in calls per minute.
    pub fn rate_per_minute(&self) -> f64 {
        self.pace.lock().expect("limiter lock").rate
    }

    /// The quota learnt from Google, calls a minute (`None` before any "too fast").
    pub fn learnt_per_minute(&self) -> Option<f64> {
        self.pace.lock().expect("limiter lock").learnt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` calls that Google admits, each answered as soon as it is sent.
    async fn admitted(limiter: &Limiter, n: usize) {
        for _ in 0..n {
            limiter.acquire().await.admitted();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_paced_to_the_rate() {
        let limiter = Limiter::new(Some(600), 100); // 10 per second
        let start = Instant::now();
        for _ in 0..21 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn the_quota_is_what_the_last_minute_held_when_google_said_too_fast() {
        let limiter = Limiter::new(None, 100);
        assert_eq!(limiter.rate_per_minute(), DEFAULT_QUOTA_PER_MINUTE);
        // Google admits 1,200 calls (half a minute at the default pace), then no more.
        admitted(&limiter, 1200).await;
        limiter.acquire().await.refused();
        assert_eq!(limiter.learnt_per_minute(), Some(1200.0));
        assert_eq!(limiter.rate_per_minute(), 1200.0 * TARGET_SHARE);
        // Nothing more is sent until the minute holds fewer than that.
        let start = Instant::now();
        let slot = limiter.acquire().await;
        assert!(
            start.elapsed() >= Duration::from_secs(29),
            "{:?}",
            start.elapsed()
        );
        slot.admitted();
        // A busy quiet minute and more: the rate creeps up to find a raised quota, and a
        // fuller minute admitted raises what was learnt.
        admitted(&limiter, 2400).await;
        assert!(
            limiter.rate_per_minute() > 1200.0,
            "{}",
            limiter.rate_per_minute()
        );
        assert!(limiter.learnt_per_minute().unwrap() > 1200.0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_pace_does_not_creep() {
        let limiter = Limiter::new(None, 100);
        limiter.recall(1000.0);
        for _ in 0..100 {
            tokio::time::advance(Duration::from_secs(3)).await;
            limiter.acquire().await.admitted();
        }
        assert_eq!(limiter.rate_per_minute(), 1000.0 * TARGET_SHARE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_ceiling_is_never_passed_and_a_recalled_quota_is_the_start() {
        let limiter = Limiter::new(Some(1000), 4);
        admitted(&limiter, 5000).await;
        assert_eq!(limiter.rate_per_minute(), 1000.0);
        limiter.recall(3000.0);
        assert_eq!(limiter.rate_per_minute(), 1000.0, "the ceiling holds");

        let unset = Limiter::new(None, 4);
        unset.recall(1200.0);
        assert_eq!(unset.learnt_per_minute(), Some(1200.0));
        assert_eq!(unset.rate_per_minute(), 1200.0 * TARGET_SHARE);
    }

    /// A limiter that learnt a quota of 1,000 a minute, after a minute of 970 calls that
    /// Google admitted.
    async fn hold_970_a_minute_under_1000() -> Limiter {
        let limiter = Limiter::new(None, 100);
        limiter.recall(1000.0);
        admitted(&limiter, 970).await;
        limiter
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_quota_is_found_between_the_last_probe_refused_and_the_first_admitted() {
        let limiter = hold_970_a_minute_under_1000().await;
        // Refused while the minute held less than the quota learnt: Google lowered it.
        limiter.acquire().await.refused();
        assert_eq!(limiter.rate_per_minute(), FLOOR_PER_MINUTE, "probing");
        assert_eq!(limiter.learnt_per_minute(), Some(1000.0));
        // Probes, one a second, are refused while the old calls leave the minute.
        for _ in 0..20 {
            limiter.acquire().await.refused();
        }
        let upper = limiter.pace.lock().unwrap().probe.unwrap().upper;
        let probe = limiter.acquire().await;
        let held = limiter.pace.lock().unwrap().minute_to(probe.at);
        probe.admitted();
        let learnt = limiter.learnt_per_minute().unwrap();
        assert!(held < upper, "{held} {upper}");
        assert_eq!(learnt, (held + upper) as f64 / 2.0);
        assert_eq!(limiter.rate_per_minute(), learnt * TARGET_SHARE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_sent_before_the_probes_does_not_end_them() {
        let limiter = hold_970_a_minute_under_1000().await;
        let early = limiter.acquire().await;
        limiter.acquire().await.refused();
        // Sent before Google lowered its quota, admitted, answered late.
        early.admitted();
        assert_eq!(limiter.rate_per_minute(), FLOOR_PER_MINUTE, "still probing");
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_of_one_burst_count_once() {
        let limiter = Limiter::new(None, 100);
        admitted(&limiter, 1000).await;
        let (a, b) = (limiter.acquire().await, limiter.acquire().await);
        a.refused();
        let learnt = limiter.learnt_per_minute();
        b.refused();
        assert_eq!(limiter.learnt_per_minute(), learnt);
        assert_ne!(
            limiter.rate_per_minute(),
            FLOOR_PER_MINUTE,
            "not taken for lowered"
        );
    }

    /// A call that waits for its slot when Google says "too fast" takes a new slot at the
    /// new pace instead of going out at the old one (to be refused too).
    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_when_google_says_too_fast_waits_for_the_new_pace() {
        let limiter = std::sync::Arc::new(hold_970_a_minute_under_1000().await);
        let started = Instant::now();
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { drop(limiter.acquire().await) }
        });
        let refused = limiter.acquire().await;
        tokio::task::yield_now().await;
        refused.refused(); // the quota was lowered: probes, one a second
        waiting.await.unwrap();
        let waited = Instant::now() - started;
        // At the old pace it would have gone out within 0.13 s.
        assert!(waited >= Duration::from_secs(1), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_calls_in_flight_than_the_cap() {
        let limiter = Limiter::new(Some(60_000), 2);
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        assert!(limiter.in_flight.try_acquire().is_err());
        drop(a);
        assert!(limiter.in_flight.try_acquire().is_ok());
    }
}

/// The governor against the emulator's own quota model (a rolling minute per subject), in
/// paused time: 32 tasks push calls for five minutes. Deterministic, so the shares of the
/// quota used and of calls refused are asserted; `cargo bench --bench quota` measures the
/// same through the binary and HTTP.
#[cfg(all(test, feature = "emulator"))]
mod against_the_emulator {
    use super::*;
    use crate::emulator::faults::{FaultState, Faults, rolling_minute_allows};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    const SECS: u64 = 300;

    /// Pushes for five minutes from `tasks` tasks, each call answered after `latency`,
    /// against `quota`, changed to `then` halfway; answers the share of what the quota
    /// allowed that was admitted, and the share of calls refused.
    async fn push(
        (tasks, latency): (u32, Duration),
        quota: u32,
        then: Option<u32>,
        ceiling: Option<u32>,
    ) -> (f64, f64) {
        let limiter = Arc::new(Limiter::new(ceiling, tasks));
        let faults = Faults {
            quota_per_minute: Some(quota),
            ..Faults::default()
        };
        let google = Arc::new(Mutex::new(FaultState::new(faults, 1)));
        let start = Instant::now();
        let end = start + Duration::from_secs(SECS);
        let (admitted, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut pushing = Vec::new();
        for _ in 0..tasks {
            let (limiter, google) = (limiter.clone(), google.clone());
            let (admitted, refused) = (admitted.clone(), refused.clone());
            pushing.push(tokio::spawn(async move {
                loop {
                    let slot = limiter.acquire().await;
                    if Instant::now() >= end {
                        break;
                    }
                    let answer = google.lock().unwrap().admit(Some("admin"), Instant::now());
                    tokio::time::sleep(latency).await;
                    if answer.is_ok() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        slot.admitted();
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                        slot.refused();
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }));
        }
        if let Some(then) = then {
            tokio::time::sleep_until(start + Duration::from_secs(SECS / 2)).await;
            google.lock().unwrap().faults.quota_per_minute = Some(then);
        }
        for task in pushing {
            task.await.unwrap();
        }
        let allowed = match ceiling {
            Some(c) if c < quota => f64::from(c) * SECS as f64 / 60.0,
            _ => rolling_minute_allows(
                quota,
                then.map(|then| (SECS as f64 / 2.0, then)),
                SECS as f64,
            ),
        };
        let (admitted, refused) = (
            admitted.load(Ordering::Relaxed) as f64,
            refused.load(Ordering::Relaxed) as f64,
        );
        (admitted / allowed, refused / (admitted + refused))
    }

    /// Unset or above the quota, at least 95 % of it is used and at most 1 % of calls are
    /// refused, a lowered quota included; a ceiling under it is what is used.
    #[tokio::test(start_paused = true)]
    async fn the_quota_is_kept_full_with_few_refusals() {
        let calls = [
            (32, Duration::from_millis(40)),
            (16, Duration::from_millis(250)),
        ];
        for calls in calls {
            for (quota, then, ceiling) in [
                (2400, None, None),
                (2400, None, Some(100_000)),
                (1200, None, None),
                (1200, None, Some(100_000)),
                (2400, Some(1200), None),
                (2400, None, Some(1200)),
            ] {
                let (used, refused) = push(calls, quota, then, ceiling).await;
                let setting =
                    format!("{calls:?}: quota {quota} then {then:?}, ceiling {ceiling:?}");
                assert!(used >= 0.95, "{setting}: {used:.3} of the quota used");
                assert!(used <= 1.0, "{setting}: {used:.3} of the quota used");
                assert!(
                    refused <= 0.01,
                    "{setting}: {refused:.4} of the calls refused"
                );
            }
        }
    }
}
