//! Limits on what is worth abusing: resets and sheets per signed-in person, and every
//! action (sign-ins included) per client address. GCRA rate limiters (governor): a
//! burst of the hour's allowance, then one more as each share of the hour passes.

use super::Web;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;

type Keyed = DefaultKeyedRateLimiter<String>;

/// The limiters of one console.
pub struct Limits {
    resets: Keyed,
    sheets: Keyed,
    address: Keyed,
}

/// What is limited.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Reset,
    Sheet,
    /// Any action from one client address.
    Address,
}

fn per_hour(n: u32) -> Keyed {
    RateLimiter::keyed(Quota::per_hour(
        NonZeroU32::new(n.max(1)).expect("positive"),
    ))
}

impl Limits {
    pub fn new(web: &Web) -> Limits {
        Limits {
            resets: per_hour(web.resets_per_hour),
            sheets: per_hour(web.sheets_per_hour),
            address: per_hour(web.per_address_per_hour),
        }
    }

    /// Takes one of `key`'s allowance: `Err(wait)` when it is spent.
    pub fn take(&self, kind: Kind, key: &str) -> Result<(), Duration> {
        let limiter = match kind {
            Kind::Reset => &self.resets,
            Kind::Sheet => &self.sheets,
            Kind::Address => &self.address,
        };
        limiter.check_key(&key.to_owned()).map_err(|not_until| {
            not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ))
        })
    }

    /// Forgets the keys whose allowance is whole again (memory stays flat).
    pub fn forget_old(&self) {
        for limiter in [&self.resets, &self.sheets, &self.address] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hours_allowance_then_a_wait() {
        let web = Web {
            resets_per_hour: 3,
            ..Web::default()
        };
        let limits = Limits::new(&web);
        for _ in 0..3 {
            assert!(limits.take(Kind::Reset, "op@x").is_ok());
        }
        let wait = limits.take(Kind::Reset, "op@x").unwrap_err();
        assert!(
            wait > Duration::from_secs(60) && wait <= Duration::from_secs(1200),
            "{wait:?}"
        );
        // Another person has their own allowance.
        assert!(limits.take(Kind::Reset, "other@x").is_ok());
    }
}
