//! One limiter shared by every call: a governor that keeps Google's quota full without
//! going over it. Calls are paced to a rate; a semaphore caps the calls in flight.
//!
//! Google's quota (by default 2,400 calls a minute per delegated admin, raised on request)
//! is not told to the client: it is learnt. When Google answers "too fast", the calls it
//! admitted in the last minute *are* its quota, so the rate becomes just under that count;
//! after a quiet minute the rate creeps up (2 % every 10 s) to find a raised quota. A
//! configured `requests_per_minute` is a ceiling that is never passed (set below the quota,
//! it is honoured exactly). Hand-written rather than `governor`, because the rate changes at
//! run time.

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
/// leave this one nothing to measure).
const FLOOR_PER_MINUTE: f64 = 60.0;

/// How the estimate follows a quota lowered under it: halved at once (then crept up
/// again), which stops the refusals in one step where going down by a tenth a second drew
/// a refusal for most calls of the seconds it took.
const LOWERED: f64 = 0.5;

/// Quiet time after a rate-limit answer before the rate creeps up.
const QUIET: Duration = Duration::from_secs(60);

/// How often, and by how much, the rate creeps up while quiet.
const CREEP_EVERY: Duration = Duration::from_secs(10);
const CREEP: f64 = 1.02;
const FIRST_CREEP: f64 = 1.10;

const MINUTE: Duration = Duration::from_secs(60);

/// The pacing state.
#[derive(Debug)]
struct Pace {
    /// Calls a minute now.
    rate: f64,
    next_slot: Instant,
    /// When each call Google admitted in the last minute was answered.
    admitted: VecDeque<Instant>,
    /// The quota learnt from Google's last "too fast", calls a minute.
    learnt: Option<f64>,
    /// The slots given in the last minute: once a quota is learnt, no more than its
    /// target share are given in any minute (Google meters a rolling minute, so after a
    /// burst the calls wait for it to age out rather than draw refusals).
    given: VecDeque<Instant>,
    /// The last "too fast" answer, and the last change of the rate upwards.
    limited_at: Option<Instant>,
    crept_at: Instant,
    /// After Google lowered its quota: until then the last minute still holds calls it
    /// admitted under the old one, so its "too fast" teaches nothing; the rate searches
    /// upwards meanwhile, and the first "too fast" after it is the new quota.
    relearn_until: Option<Instant>,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    /// The configured ceiling, calls a minute (`None`: learn the quota).
    ceiling: Option<f64>,
    pace: Mutex<Pace>,
    in_flight: Semaphore,
    /// Bumped at each "too fast": calls waiting for a slot take a new one.
    slowed: watch::Sender<u64>,
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
                // fast" teaches the quota, and the burst ages out before more is sent).
                rate: ceiling.unwrap_or(DEFAULT_QUOTA_PER_MINUTE),
                next_slot: now,
                admitted: VecDeque::new(),
                learnt: None,
                given: VecDeque::new(),
                limited_at: None,
                crept_at: now,
                relearn_until: None,
            }),
            in_flight: Semaphore::new(concurrency.max(1) as usize),
            slowed: watch::Sender::new(0),
        }
    }

    /// Starts from a quota learnt before (kept in the store across restarts), unless one
    /// was learnt since this limiter was made.
    pub fn recall(&self, quota_per_minute: f64) {
        let mut pace = self.pace.lock().expect("limiter lock");
        if pace.learnt.is_none() && quota_per_minute > 0.0 {
            pace.learnt = Some(quota_per_minute);
            pace.rate = self.capped(quota_per_minute * TARGET_SHARE);
        }
    }

    fn capped(&self, rate: f64) -> f64 {
        let rate = rate.max(FLOOR_PER_MINUTE);
        self.ceiling.map_or(rate, |c| rate.min(c))
    }

    /// Waits for a slot and a place among the calls in flight; the permit frees the place.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let mut slowed = self.slowed.subscribe();
        loop {
            let slot = self.give_slot();
            tokio::select! {
                () = tokio::time::sleep_until(slot) => return permit,
                // Google said "too fast" while this call waited for a slot given at the
                // old pace: the slot is handed back and a new one taken at the new pace
                // (a refusal avoided).
                _ = slowed.changed() => self.hand_back(slot),
            }
        }
    }

    /// The next slot: at the pace, and within the learnt quota's share of the last minute.
    fn give_slot(&self) -> Instant {
        let mut pace = self.pace.lock().expect("limiter lock");
        let now = Instant::now();
        let mut slot = pace.next_slot.max(now);
        forget_older(&mut pace.given, now);
        if let Some(learnt) = pace.learnt {
            let budget = self.capped(learnt * TARGET_SHARE) as usize;
            while pace.given.len() >= budget.max(1) {
                let oldest = pace.given.pop_front().expect("not empty");
                slot = slot.max(oldest + MINUTE);
            }
        }
        pace.given.push_back(slot);
        pace.next_slot = slot + Duration::from_secs_f64(60.0 / pace.rate);
        slot
    }

    /// A slot given and not used no longer counts toward the last minute.
    fn hand_back(&self, slot: Instant) {
        let mut pace = self.pace.lock().expect("limiter lock");
        if let Some(at) = pace.given.iter().rposition(|given| *given == slot) {
            pace.given.remove(at);
        }
    }

    /// Google said "too fast": what it admitted in the last minute is its quota, unless
    /// the pace already kept under what was learnt: then the quota was lowered, the
    /// estimate is halved, and the rate searches upwards until the minute holds only calls
    /// of the new quota; the next "too fast" is then the new quota (once a second: the
    /// calls in flight of one burst all come back refused together).
    pub fn slow_down(&self) {
        let now = Instant::now();
        let mut pace = self.pace.lock().expect("limiter lock");
        if pace
            .limited_at
            .is_some_and(|at| now < at + Duration::from_secs(1))
        {
            return;
        }
        forget_older(&mut pace.admitted, now);
        let mut quota = pace.admitted.len() as f64;
        let learn = match (pace.relearn_until, pace.learnt) {
            // The minute still mixes the old quota's calls: wait, learn nothing.
            (Some(until), _) if now < until => false,
            // The minute holds only calls made under the new quota: it is what was admitted.
            (Some(_), _) => {
                pace.relearn_until = None;
                true
            }
            (None, Some(learnt)) if quota <= learnt * TARGET_SHARE + 1.0 => {
                quota = quota.min(learnt) * LOWERED;
                pace.relearn_until = Some(now + MINUTE);
                true
            }
            (None, _) => true,
        };
        if learn {
            pace.learnt = Some(quota.max(FLOOR_PER_MINUTE));
            pace.rate = self.capped(quota * TARGET_SHARE);
            // The calls waiting for slots given at the old rate hand them back and queue
            // again from now, at the new one.
            pace.next_slot = now + Duration::from_secs_f64(60.0 / pace.rate);
        }
        pace.limited_at = Some(now);
        drop(pace);
        self.slowed.send_modify(|n| *n += 1);
    }

    /// Google admitted a call; after a quiet minute the rate creeps up.
    pub fn succeeded(&self) {
        let now = Instant::now();
        let mut pace = self.pace.lock().expect("limiter lock");
        pace.admitted.push_back(now);
        forget_older(&mut pace.admitted, now);
        // Searching for a lowered quota does not wait for quiet.
        let searching = pace.relearn_until.is_some();
        let quiet = searching || pace.limited_at.is_none_or(|at| now >= at + QUIET);
        if quiet && now >= pace.crept_at + CREEP_EVERY {
            // Never refused yet, or searching for a lowered quota: look faster.
            let creep = if pace.learnt.is_some() && !searching {
                CREEP
            } else {
                FIRST_CREEP
            };
            pace.rate = self.capped(pace.rate * creep);
            pace.crept_at = now;
            // Creeping past the quota learnt means Google raised it.
            let reached = pace.rate / TARGET_SHARE;
            if let Some(learnt) = pace.learnt.as_mut() {
                *learnt = learnt.max(reached);
            }
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

fn forget_older(admitted: &mut VecDeque<Instant>, now: Instant) {
    while admitted.front().is_some_and(|at| now >= *at + MINUTE) {
        admitted.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    async fn the_quota_is_learnt_from_what_google_admitted_in_the_last_minute() {
        let limiter = Limiter::new(None, 100);
        assert_eq!(limiter.rate_per_minute(), DEFAULT_QUOTA_PER_MINUTE);
        // Google admits 1,200 calls in half a minute, then says "too fast".
        for _ in 0..1200 {
            tokio::time::advance(Duration::from_millis(25)).await;
            limiter.succeeded();
        }
        limiter.slow_down();
        assert_eq!(limiter.learnt_per_minute(), Some(1200.0));
        assert_eq!(limiter.rate_per_minute(), 1200.0 * TARGET_SHARE);
        // Quiet for a minute and more: the rate creeps up to find a raised quota.
        for _ in 0..180 {
            tokio::time::advance(Duration::from_millis(500)).await;
            limiter.succeeded();
        }
        assert!(limiter.rate_per_minute() > 1200.0 * TARGET_SHARE);
        assert!(limiter.rate_per_minute() < 1300.0, "slowly");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ceiling_is_never_passed_and_a_recalled_quota_is_the_start() {
        let limiter = Limiter::new(Some(1000), 4);
        for _ in 0..10_000 {
            tokio::time::advance(Duration::from_millis(100)).await;
            limiter.succeeded();
        }
        assert_eq!(limiter.rate_per_minute(), 1000.0);
        limiter.recall(3000.0);
        assert_eq!(limiter.rate_per_minute(), 1000.0, "the ceiling holds");

        let unset = Limiter::new(None, 4);
        unset.recall(1200.0);
        assert_eq!(unset.learnt_per_minute(), Some(1200.0));
        assert_eq!(unset.rate_per_minute(), 1200.0 * TARGET_SHARE);
        unset.slow_down(); // nothing admitted in the last minute: the floor
        assert_eq!(unset.rate_per_minute(), FLOOR_PER_MINUTE);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_burst_calls_wait_for_it_to_leave_the_minute() {
        let limiter = Limiter::new(None, 100);
        let start = Instant::now();
        for _ in 0..100 {
            drop(limiter.acquire().await);
            limiter.succeeded();
        }
        // Google admitted 100 in 2.5 s and says "too fast": its quota is 100 a minute.
        limiter.slow_down();
        assert_eq!(limiter.learnt_per_minute(), Some(100.0));
        drop(limiter.acquire().await);
        assert!(
            start.elapsed() >= Duration::from_secs(60),
            "no call before the burst left the minute: {:?}",
            start.elapsed()
        );
    }

    /// A limiter that learnt a quota of 1,000 a minute, after a minute of 970 calls that
    /// Google accepted.
    async fn hold_970_a_minute_under_1000(limiter: &Limiter) {
        limiter.recall(1000.0);
        for _ in 0..970 {
            tokio::time::advance(Duration::from_millis(61)).await;
            limiter.succeeded();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_quota_is_followed_down() {
        let limiter = Limiter::new(None, 100);
        hold_970_a_minute_under_1000(&limiter).await;
        // Kept under 1,000 a minute and still refused: Google lowered the quota.
        limiter.slow_down();
        let lowered = limiter.learnt_per_minute().unwrap();
        assert!(lowered < 900.0, "{lowered}");
        limiter.slow_down();
        assert_eq!(
            limiter.learnt_per_minute(),
            Some(lowered),
            "refusals of one burst count once"
        );
    }

    /// A call that waits for its slot when Google says "too fast" takes a new slot at the
    /// new pace instead of going out at the old one (to be refused too).
    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_when_google_says_too_fast_waits_for_the_new_pace() {
        let limiter = std::sync::Arc::new(Limiter::new(None, 100));
        hold_970_a_minute_under_1000(&limiter).await;
        // Slots given at 970 a minute: the tenth is ~0.6 s away.
        for _ in 0..9 {
            drop(limiter.acquire().await);
        }
        let started = Instant::now();
        let waiting = tokio::spawn({
            let limiter = limiter.clone();
            async move { drop(limiter.acquire().await) }
        });
        tokio::task::yield_now().await;
        limiter.slow_down(); // the quota was lowered: halved
        waiting.await.unwrap();
        let waited = Instant::now() - started;
        // At the old pace it would have gone out within 0.07 s.
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert!(limiter.learnt_per_minute().unwrap() < 600.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lowered_quota_is_learnt_once_the_minute_holds_only_its_calls() {
        let limiter = Limiter::new(None, 100);
        hold_970_a_minute_under_1000(&limiter).await;
        limiter.slow_down(); // lowered: halved, and searching
        let halved = limiter.learnt_per_minute().unwrap();
        assert!(halved < 500.0, "{halved}");
        // Refusals while the minute still holds the old quota's calls teach nothing.
        tokio::time::advance(Duration::from_secs(5)).await;
        limiter.slow_down();
        assert_eq!(limiter.learnt_per_minute(), Some(halved));
        // Searching, the rate goes up without waiting for a quiet minute.
        let before = limiter.rate_per_minute();
        for _ in 0..600 {
            tokio::time::advance(Duration::from_millis(100)).await;
            limiter.succeeded();
        }
        assert!(limiter.rate_per_minute() > before * 1.5, "searched upwards");
        // Past the minute: what Google admitted in the last one is the new quota.
        limiter.slow_down();
        assert_eq!(limiter.learnt_per_minute(), Some(600.0));
        assert_eq!(limiter.rate_per_minute(), 600.0 * TARGET_SHARE);
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
