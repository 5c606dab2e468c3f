//! One limiter shared by every call: calls are paced to a rate (requests per minute) that
//! halves when Google says "too fast" and climbs back by a small step with each success, and
//! a semaphore caps the calls in flight. A hand-written pacer rather than `governor`,
//! because the rate must change at run time, which governor's fixed quotas do not do.

use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The slowest the limiter goes after rate-limit answers: a share of the configured rate.
const FLOOR_SHARE: f64 = 0.05;

/// How much of the configured rate each success gives back after a slowdown.
const RECOVERY_SHARE: f64 = 0.01;

/// The pacing state: the current rate and the next free slot.
#[derive(Debug)]
struct Pace {
    rate_per_sec: f64,
    next_slot: Instant,
}

/// The shared limiter.
#[derive(Debug)]
pub struct Limiter {
    max_per_sec: f64,
    pace: Mutex<Pace>,
    in_flight: Semaphore,
}

impl Limiter {
    pub fn new(requests_per_minute: u32, concurrency: u32) -> Limiter {
        let max_per_sec = f64::from(requests_per_minute.max(1)) / 60.0;
        Limiter {
            max_per_sec,
            pace: Mutex::new(Pace {
                rate_per_sec: max_per_sec,
                next_slot: Instant::now(),
            }),
            in_flight: Semaphore::new(concurrency.max(1) as usize),
        }
    }

    /// Waits for a slot and a place among the calls in flight; the permit frees the place.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let slot = {
            let mut pace = self.pace.lock().expect("limiter lock");
            let now = Instant::now();
            let slot = pace.next_slot.max(now);
            pace.next_slot = slot + Duration::from_secs_f64(1.0 / pace.rate_per_sec);
            slot
        };
        tokio::time::sleep_until(slot).await;
        permit
    }

    /// Google said "too fast": halve the rate (not below the floor).
    pub fn slow_down(&self) {
        let mut pace = self.pace.lock().expect("limiter lock");
        pace.rate_per_sec = (pace.rate_per_sec / 2.0).max(self.max_per_sec * FLOOR_SHARE);
    }

    /// A call went through: recover a little of the rate.
    pub fn succeeded(&self) {
        let mut pace = self.pace.lock().expect("limiter lock");
        pace.rate_per_sec =
            (pace.rate_per_sec + self.max_per_sec * RECOVERY_SHARE).min(self.max_per_sec);
    }

    /// The current rate, in calls per minute.
    pub fn rate_per_minute(&self) -> f64 {
        self.pace.lock().expect("limiter lock").rate_per_sec * 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_paced_to_the_rate() {
        let limiter = Limiter::new(600, 100); // 10 per second
        let start = Instant::now();
        for _ in 0..21 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_answers_halve_the_rate_and_successes_bring_it_back() {
        let limiter = Limiter::new(1200, 4);
        limiter.slow_down();
        assert_eq!(limiter.rate_per_minute(), 600.0);
        for _ in 0..200 {
            limiter.slow_down();
        }
        assert_eq!(
            limiter.rate_per_minute(),
            1200.0 * FLOOR_SHARE,
            "never below the floor"
        );
        for _ in 0..1000 {
            limiter.succeeded();
        }
        assert_eq!(
            limiter.rate_per_minute(),
            1200.0,
            "never above the configured rate"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_calls_in_flight_than_the_cap() {
        let limiter = Limiter::new(60_000, 2);
        let a = limiter.acquire().await;
        let _b = limiter.acquire().await;
        assert!(limiter.in_flight.try_acquire().is_err());
        drop(a);
        assert!(limiter.in_flight.try_acquire().is_ok());
    }
}
