//! Whether Google can be reached at all, as the client's last calls found it: a circuit
//! breaker. While Google cannot be reached (no connection, or the token endpoint refuses
//! us), calls are not sent, so a batch of hundreds ends in seconds instead of each call
//! waiting out its own deadline; every `PROBE_EVERY` one call goes through as a probe, and
//! the first answer of any kind closes the circuit again.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long calls are refused after a failed try before one goes through as a probe.
pub const PROBE_EVERY: Duration = Duration::from_secs(30);

/// Google cannot be reached, since when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    pub since: Timestamp,
    pub reason: String,
}

/// What a call may do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Send it.
    Send,
    /// Send it: it is the probe of an open circuit.
    Probe,
    /// Do not send it: Google is unreachable.
    Refused(Outage),
}

#[derive(Debug)]
struct Open {
    outage: Outage,
    /// When the last call was tried (the outage's start, or the last probe).
    tried: Instant,
    probing: bool,
}

/// The breaker, shared by every call of one client.
#[derive(Debug, Default)]
pub struct Circuit {
    open: Mutex<Option<Open>>,
}

impl Circuit {
    /// Whether a call may be sent now.
    pub fn admit(&self) -> Admission {
        let mut open = self.open.lock().expect("circuit lock");
        match open.as_mut() {
            None => Admission::Send,
            Some(o) if !o.probing && o.tried.elapsed() >= PROBE_EVERY => {
                o.probing = true;
                o.tried = Instant::now();
                Admission::Probe
            }
            Some(o) => Admission::Refused(o.outage.clone()),
        }
    }

    /// Google answered (anything, an error included): it can be reached.
    pub fn answered(&self) {
        let was = self.open.lock().expect("circuit lock").take();
        if let Some(open) = was {
            tracing::warn!(since = %open.outage.since, "Google can be reached again");
        }
    }

    /// A call found Google unreachable for `reason`: opens the circuit (or, after a
    /// probe, keeps it open from its first failure).
    pub fn failed(&self, reason: &str) {
        let mut open = self.open.lock().expect("circuit lock");
        match open.as_mut() {
            Some(o) => {
                o.probing = false;
                o.tried = Instant::now();
                o.outage.reason = reason.to_owned();
            }
            None => {
                tracing::warn!(%reason, "Google cannot be reached: calls wait until a probe gets through");
                *open = Some(Open {
                    outage: Outage {
                        since: Timestamp::now(),
                        reason: reason.to_owned(),
                    },
                    tried: Instant::now(),
                    probing: false,
                });
            }
        }
    }

    /// The outage in course, if any.
    pub fn outage(&self) -> Option<Outage> {
        self.open
            .lock()
            .expect("circuit lock")
            .as_ref()
            .map(|o| o.outage.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn refuses_while_open_probes_one_at_a_time_and_closes_on_an_answer() {
        let circuit = Circuit::default();
        assert_eq!(circuit.admit(), Admission::Send);
        circuit.failed("connection refused");
        let since = circuit.outage().unwrap().since;
        assert!(
            matches!(circuit.admit(), Admission::Refused(o) if o.reason == "connection refused")
        );

        tokio::time::advance(PROBE_EVERY).await;
        assert_eq!(circuit.admit(), Admission::Probe);
        assert!(
            matches!(circuit.admit(), Admission::Refused(_)),
            "one probe at a time"
        );
        circuit.failed("still refused");
        assert_eq!(circuit.outage().unwrap().since, since, "the outage goes on");
        assert!(matches!(circuit.admit(), Admission::Refused(_)));

        tokio::time::advance(PROBE_EVERY).await;
        assert_eq!(circuit.admit(), Admission::Probe);
        circuit.answered();
        assert_eq!(circuit.outage(), None);
        assert_eq!(circuit.admit(), Admission::Send);
    }
}
