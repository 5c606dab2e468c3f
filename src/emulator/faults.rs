//! The faults and limits the emulator can play, and the counters of what it answered.
//! Decisions are pure given the random draws, so they are testable without a network.

use super::errors::ApiError;
use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// The knobs, set at start (flags) and changed at run time (`PUT /emulator/faults`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Calls per delegated subject per minute before 403 `userRateLimitExceeded`.
    pub quota_per_minute: Option<u32>,
    /// Calls in flight at once before 403 `quotaExceeded`.
    pub max_concurrent: Option<u32>,
    /// Share of calls answered 503 `backendError` (nothing applied), 0 to 1.
    pub error_rate: f64,
    /// Latency added to every API call: fixed part and uniform jitter.
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Share of writes applied and then answered by closing the connection, 0 to 1.
    pub lost_response_rate: f64,
    /// After a create: the user is absent from listing, a get by id answers 404 and writes
    /// answer "User creation is not complete"; after a rename, writes answer 409.
    pub propagation_delay_ms: u64,
    /// While set, listings of users wait (a scan held in the middle, for tests of what
    /// runs beside a scan); clearing it lets them go on.
    pub hold_listing: bool,
    /// A listing of users paging for longer than this many seconds is answered 503
    /// `backendError` (Google ends listings after 60 minutes).
    pub listing_limit_secs: Option<u64>,
    /// How long a new user is missing from `query` listings (Google's search index
    /// lags up to 36 hours), in ms.
    pub query_lag_ms: u64,
}

impl Faults {
    pub fn propagation(&self) -> Duration {
        Duration::from_millis(self.propagation_delay_ms)
    }

    /// Checks the knobs' ranges.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("lost_response_rate", self.lost_response_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, got {rate}"));
            }
        }
        Ok(())
    }
}

/// Calls answered, by discovery method id and HTTP status (0 = response lost).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub calls: BTreeMap<String, BTreeMap<u16, u64>>,
}

impl Counters {
    pub fn record(&mut self, method: &str, status: u16) {
        *self
            .calls
            .entry(method.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// Calls of `method` answered with `status`.
    pub fn count(&self, method: &str, status: u16) -> u64 {
        self.calls
            .get(method)
            .and_then(|s| s.get(&status))
            .copied()
            .unwrap_or(0)
    }

    /// Calls of `method`, whatever the answer.
    pub fn total(&self, method: &str) -> u64 {
        self.calls.get(method).map_or(0, |s| s.values().sum())
    }
}

/// The mutable side of the faults: the random source and the per-subject quota windows.
pub struct FaultState {
    pub faults: Faults,
    rng: StdRng,
    /// For each subject, when its calls of the last minute were admitted (a rolling
    /// minute: the quota is never exceeded within any 60 seconds, and a spent quota comes
    /// back call by call, not all at once at a window's edge).
    windows: HashMap<String, VecDeque<Instant>>,
    pub in_flight: u32,
}

impl FaultState {
    pub fn new(faults: Faults, seed: u64) -> FaultState {
        FaultState {
            faults,
            rng: StdRng::seed_from_u64(seed),
            windows: HashMap::new(),
            in_flight: 0,
        }
    }

    /// The latency to add to the next call.
    pub fn latency(&mut self) -> Duration {
        let jitter = if self.faults.jitter_ms > 0 {
            self.rng.random_range(0..=self.faults.jitter_ms)
        } else {
            0
        };
        Duration::from_millis(self.faults.latency_ms + jitter)
    }

    /// Whether a call from `subject` (when its token is valid) may proceed at `now`, or
    /// which error it gets. Counts the call against the subject's quota.
    pub fn admit(&mut self, subject: Option<&str>, now: Instant) -> Result<(), ApiError> {
        if let Some(max) = self.faults.max_concurrent
            && self.in_flight > max
        {
            return Err(ApiError::usage_limit(
                StatusCode::FORBIDDEN,
                "quotaExceeded",
                "Quota Exceeded",
            ));
        }
        if self.faults.error_rate > 0.0 && self.rng.random_bool(self.faults.error_rate) {
            return Err(ApiError::backend_error());
        }
        if let (Some(quota), Some(subject)) = (self.faults.quota_per_minute, subject) {
            let admitted = self.windows.entry(subject.to_owned()).or_default();
            while admitted
                .front()
                .is_some_and(|at| now >= *at + Duration::from_secs(60))
            {
                admitted.pop_front();
            }
            if admitted.len() >= quota as usize {
                return Err(ApiError::usage_limit(
                    StatusCode::FORBIDDEN,
                    "userRateLimitExceeded",
                    "User Rate Limit Exceeded",
                ));
            }
            admitted.push_back(now);
        }
        Ok(())
    }

    /// Whether the answer to an applied write is to be lost.
    pub fn lose_response(&mut self) -> bool {
        self.faults.lost_response_rate > 0.0 && self.rng.random_bool(self.faults.lost_response_rate)
    }
}

/// What the emulator's rolling minute lets a client send over `secs` seconds at most,
/// its quota `quota` a minute, changed to `then` after `changed_after` seconds: the
/// measure of the quota governor. A client that keeps the minute full sends `quota` a
/// minute; after a change it sends what the minute has room for. A raised quota has room
/// at once. A lowered one has none until the old calls fall under it (`d` seconds: the
/// minute's share above the new quota); from then on the client can only follow the old
/// calls out, at the old pace, so each minute after the change it sends the new quota
/// between its `d`-th second and its end.
pub fn rolling_minute_allows(quota: u32, then: Option<(f64, u32)>, secs: f64) -> f64 {
    let old = f64::from(quota);
    let Some((before, new)) = then else {
        return old * secs / 60.0;
    };
    let new = f64::from(new);
    let after = (secs - before).max(0.0);
    let followed = if new >= old {
        new * after / 60.0
    } else {
        let d = 60.0 * (1.0 - new / old);
        let minutes = (after / 60.0).floor();
        let into = after - minutes * 60.0;
        new * minutes + old * (into - d).max(0.0) / 60.0
    };
    old * before.min(secs) / 60.0 + followed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_is_per_subject_per_minute() {
        let mut state = FaultState::new(
            Faults {
                quota_per_minute: Some(2),
                ..Faults::default()
            },
            1,
        );
        let t0 = Instant::now();
        assert!(state.admit(Some("a@x"), t0).is_ok());
        assert!(state.admit(Some("a@x"), t0).is_ok());
        let refused = state.admit(Some("a@x"), t0).unwrap_err();
        assert_eq!(
            (refused.status.as_u16(), refused.reason, refused.domain),
            (403, "userRateLimitExceeded", "usageLimits")
        );
        assert!(
            state.admit(Some("b@x"), t0).is_ok(),
            "another subject has its own quota"
        );
        assert!(
            state
                .admit(Some("a@x"), t0 + Duration::from_secs(60))
                .is_ok(),
            "a minute later"
        );
    }

    #[test]
    fn the_quota_is_a_rolling_minute() {
        let mut state = FaultState::new(
            Faults {
                quota_per_minute: Some(2),
                ..Faults::default()
            },
            1,
        );
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        assert!(state.admit(Some("a@x"), at(0)).is_ok());
        assert!(state.admit(Some("a@x"), at(30)).is_ok());
        assert!(
            state.admit(Some("a@x"), at(59)).is_err(),
            "2 in the last minute"
        );
        assert!(
            state.admit(Some("a@x"), at(60)).is_ok(),
            "the first left the minute"
        );
        assert!(
            state.admit(Some("a@x"), at(61)).is_err(),
            "no burst at a window's edge"
        );
        assert!(state.admit(Some("a@x"), at(90)).is_ok());
    }

    #[test]
    fn a_lowered_quota_lets_through_what_the_old_calls_leave_room_for() {
        // 2,400 a minute for 150 s: 6,000 calls.
        assert_eq!(rolling_minute_allows(2400, None, 150.0), 6000.0);
        let lowered = |secs| rolling_minute_allows(2400, Some((150.0, 1200)), secs);
        // Lowered to 1,200: the last minute holds 2,400 until half of it leaves (30 s).
        assert_eq!(lowered(180.0), 6000.0);
        // Then the old calls leave at 40 a second, and as many can be sent.
        assert_eq!(lowered(195.0), 6600.0);
        assert_eq!(lowered(210.0), 7200.0);
        // The calls sent then fill the next minute until they leave in turn.
        assert_eq!(lowered(240.0), 7200.0);
        assert_eq!(lowered(300.0), 8400.0);
        // A raised quota has room at once.
        assert_eq!(
            rolling_minute_allows(1200, Some((60.0, 2400)), 90.0),
            2400.0
        );
    }

    #[test]
    fn error_rate_follows_the_seed() {
        let draws = |seed| {
            let mut state = FaultState::new(
                Faults {
                    error_rate: 0.3,
                    ..Faults::default()
                },
                seed,
            );
            (0..1000)
                .map(|_| state.admit(None, Instant::now()).is_err())
                .collect::<Vec<_>>()
        };
        let errors = draws(7).iter().filter(|e| **e).count();
        assert!((200..400).contains(&errors), "{errors} of 1000");
        assert_eq!(draws(7), draws(7), "same seed, same faults");
    }

    #[test]
    fn concurrency_over_the_limit_is_quota_exceeded() {
        let mut state = FaultState::new(
            Faults {
                max_concurrent: Some(1),
                ..Faults::default()
            },
            1,
        );
        state.in_flight = 2;
        assert_eq!(
            state.admit(None, Instant::now()).unwrap_err().reason,
            "quotaExceeded"
        );
        state.in_flight = 1;
        assert!(state.admit(None, Instant::now()).is_ok());
    }

    #[test]
    fn rates_out_of_range_are_refused() {
        assert!(
            Faults {
                error_rate: 1.5,
                ..Faults::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Faults {
                lost_response_rate: 0.5,
                ..Faults::default()
            }
            .validate()
            .is_ok()
        );
    }
}
