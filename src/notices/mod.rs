//! Notices that arrive: 30 and 3 days before a retiring account is suspended, its holder
//! is told by mail (the account's address, and the personal address when the directory
//! has one), in Bahasa Indonesia, through the SMTP relay of `[mail]`.
//!
//! Each notice is written to an outbox in the store before it is sent, and marked sent
//! in the same commit that records it in the account's history, right after the relay
//! accepted it. A process killed before that sends it again on the next run (the relay
//! never accepted it, or accepted it a moment before the kill: SMTP cannot tell, and the
//! repeat carries the same Message-ID); a notice marked sent is never sent again.
//! Messages go one at a time, so at most one can be in that window.
//!
//! The owner of the `notices` keyspace:
//! - `o:{account key}:{suspension day}:{days before}` → a [`Notice`]

pub mod letter;
mod relay;
pub use relay::Relay;

use crate::audit::{self, NOTICE_DAYS, Notices};
use crate::config::Config;
use crate::directory::model::AccountKey;
use crate::store::{Keyspace, Store, StoreError};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use letter::Letter;
use serde::{Deserialize, Serialize};

const OUTBOX: Keyspace = Keyspace::new("notices");

/// Store counters of notices handed to the relay, and of failed attempts.
const SENT_COUNTER: &str = "notices_sent";
const FAILED_COUNTER: &str = "notices_failed";
/// Store counters of the notices waiting in the outbox, and of those refused for good (kept
/// as counters so that `status` and the metrics never read the whole outbox).
const WAITING_COUNTER: &str = "notices_waiting";
const REFUSED_COUNTER: &str = "notices_refused";

/// The longest wait before a notice that failed is tried again.
const MAX_RETRY_WAIT: SignedDuration = SignedDuration::from_hours(6);

/// One notice of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub account: String,
    /// Days before the suspension (30 or 3).
    pub days: i64,
    pub suspend_on: Date,
    pub to: Vec<String>,
    pub queued: Timestamp,
    /// The message; dropped once sent (the history keeps that it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<Letter>,
    #[serde(flatten)]
    pub state: State,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum State {
    Queued,
    Sent {
        at: Timestamp,
    },
    /// Not handed over yet: tried again after a wait, unless the relay refused it for good.
    Failed {
        at: Timestamp,
        tries: u32,
        reason: String,
        permanent: bool,
    },
}

impl Notice {
    fn key(&self) -> Vec<u8> {
        outbox_key(&self.account, self.suspend_on, self.days)
    }

    /// The Message-ID: the same for every attempt at this notice.
    fn message_id(&self) -> String {
        format!(
            "{}.{}.{}d@belajar-sync",
            self.account.replace(':', "."),
            self.suspend_on,
            self.days
        )
    }

    /// Whether it is to be sent at `now`.
    fn sendable(&self, now: Timestamp) -> bool {
        match &self.state {
            State::Queued => true,
            State::Sent { .. } => false,
            State::Failed {
                at,
                tries,
                permanent,
                ..
            } => !permanent && now >= *at + retry_wait(*tries),
        }
    }
}

/// 5 minutes after the first failure, doubling, at most [`MAX_RETRY_WAIT`].
fn retry_wait(tries: u32) -> SignedDuration {
    let minutes = 5i64.saturating_mul(1 << tries.saturating_sub(1).min(10));
    SignedDuration::from_mins(minutes).min(MAX_RETRY_WAIT)
}

fn outbox_key(account: &str, suspend_on: Date, days: i64) -> Vec<u8> {
    format!("o:{account}:{suspend_on}:{days:02}").into_bytes()
}

/// The notice due `today` for a retiring account, as days before its suspension: the
/// latest of the notice days reached (a 30-day notice not sent by the time the 3-day one
/// is due is not sent late), none once the suspension day has come.
pub fn due(notices: &Notices, today: Date) -> Option<i64> {
    if today >= notices.suspend_on {
        return None;
    }
    NOTICE_DAYS
        .iter()
        .zip(&notices.notify_on)
        .filter(|(_, day)| **day <= today)
        .map(|(days, _)| *days)
        .min()
}

/// The notice of `account` due `today` (see [`due`]) that the outbox does not hold yet.
pub fn unqueued_due(
    store: &Store,
    account: &str,
    notices: &Notices,
    today: Date,
) -> Result<Option<i64>, StoreError> {
    let Some(days) = due(notices, today) else {
        return Ok(None);
    };
    let key = outbox_key(account, notices.suspend_on, days);
    Ok(store
        .get_json::<Notice>(OUTBOX, &key)?
        .is_none()
        .then_some(days))
}

/// What the outbox holds, for `status` and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Handed to the relay, ever.
    pub sent: i64,
    /// Failed attempts, ever.
    pub failed: i64,
    /// Waiting to be sent (queued, or failed and to be tried again).
    pub waiting: u64,
    /// Refused by the relay for good.
    pub refused: u64,
}

pub fn counts(store: &Store) -> Result<Counts, StoreError> {
    Ok(Counts {
        sent: store.counter(SENT_COUNTER)?,
        failed: store.counter(FAILED_COUNTER)?,
        waiting: store.counter(WAITING_COUNTER)?.max(0) as u64,
        refused: store.counter(REFUSED_COUNTER)?.max(0) as u64,
    })
}

/// Checks `[mail]` and reads its credentials file (without connecting).
pub fn check(mail: &crate::config::Mail) -> Result<(), String> {
    relay::check(mail)
}

/// Connects to the relay of `[mail]` and greets it (for `check`): whether it answers.
pub async fn check_relay(mail: &crate::config::Mail) -> Result<(), String> {
    Relay::new(mail)?.answers().await
}

/// What one delivery did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub queued: u64,
    pub sent: u64,
    pub failed: u64,
    /// The last failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What stopped the run (the relay's settings or credentials file, the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_sent: Option<String>,
    /// The run's time was up before the outbox was: the rest goes at the next run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cut_short: bool,
}

/// Queues the notices due `today`, then sends what the outbox holds to send, until
/// `until` if given (the rest waits for the next call: [`Delivery::cut_short`]). Off
/// (nothing done) when `[mail]` has no relay. Never fails: what stopped it (the relay's
/// settings, the store) is said in [`Delivery::not_sent`], and the notices stay queued. A
/// relay that fails a message for a reason that may pass (down, slow) ends the run: the
/// others are not tried against it one by one.
pub async fn deliver(
    store: &Store,
    config: &Config,
    today: Date,
    until: Option<tokio::time::Instant>,
) -> Delivery {
    let mut delivery = Delivery::default();
    if config.mail.enabled()
        && let Err(reason) = run(store, config, today, until, &mut delivery).await
    {
        delivery.not_sent = Some(reason);
    }
    delivery
}

async fn run(
    store: &Store,
    config: &Config,
    today: Date,
    until: Option<tokio::time::Instant>,
    delivery: &mut Delivery,
) -> Result<(), String> {
    delivery.queued = queue_due(store, today).map_err(|e| e.to_string())?;
    let relay = Relay::new(&config.mail)?;
    // The outbox is read a batch at a time (it may hold millions at the end of a school
    // year), each batch after the key the last one ended on.
    let mut after = b"o:".to_vec();
    loop {
        let now = Timestamp::now();
        let (batch, next) = next_batch(store, &after, today, now).map_err(|e| e.to_string())?;
        for step in batch {
            if until.is_some_and(|until| tokio::time::Instant::now() >= until) {
                delivery.cut_short = true;
                return Ok(());
            }
            match step {
                Step::Send(notice) => {
                    if send(store, &relay, *notice, delivery).await? == Sent::LaterPerhaps {
                        return Ok(());
                    }
                }
                Step::Forget(notice, why) => {
                    forget(store, &notice, why).map_err(|e| e.to_string())?
                }
            }
        }
        match next {
            Some(key) => after = key,
            None => return Ok(()),
        }
    }
}

/// How the hand-over of one notice went.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Accepted, or refused for good: the next one may go.
    Done,
    /// Failed for a reason that may pass: it is tried again later, and so are the others.
    LaterPerhaps,
}

/// What is done with one notice of the outbox.
enum Step {
    Send(Box<Notice>),
    /// Its suspension day has passed, or the account no longer retires on that day: the
    /// history keeps it, the outbox need not. Why, for one never sent.
    Forget(Notice, &'static str),
}

/// Notices looked at per batch.
const BATCH: usize = 256;

/// The next steps from the outbox key `after` on, and where the batch after starts.
fn next_batch(
    store: &Store,
    after: &[u8],
    today: Date,
    now: Timestamp,
) -> Result<(Vec<Step>, Option<Vec<u8>>), StoreError> {
    let mut steps = Vec::new();
    let mut last = None;
    for (looked, entry) in store
        .scan_json_from::<Notice>(OUTBOX, b"o:", after.to_vec())
        .enumerate()
    {
        let (key, notice) = entry?;
        if key.as_slice() == after {
            continue;
        }
        if looked > BATCH {
            return Ok((steps, last));
        }
        last = Some(key);
        if notice.suspend_on < today {
            steps.push(Step::Forget(notice, "the suspension day came first"));
        } else if notice.sendable(now) {
            // Reinstated, or listed again, since it was queued: nothing to tell.
            let still = audit::notices(store, &notice.account)?
                .is_some_and(|n| n.suspend_on == notice.suspend_on);
            steps.push(if still {
                Step::Send(Box::new(notice))
            } else {
                Step::Forget(notice, "the account no longer retires on that day")
            });
        }
    }
    Ok((steps, None))
}

/// Sends one notice and records what came of it, in one commit.
async fn send(
    store: &Store,
    relay: &Relay,
    mut notice: Notice,
    delivery: &mut Delivery,
) -> Result<Sent, String> {
    let Some(letter) = notice.letter.clone() else {
        return Ok(Sent::Done);
    };
    let mut outcome = Sent::Done;
    let sent = relay.send(&notice.to, &letter, &notice.message_id()).await;
    let at = Timestamp::now();
    let mut changes = store.changes(false);
    let detail = match sent {
        Ok(()) => {
            delivery.sent += 1;
            changes.count(SENT_COUNTER, 1);
            changes.count(WAITING_COUNTER, -1);
            notice.state = State::Sent { at };
            notice.letter = None;
            format!(
                "{}-day notice of the suspension on {} sent to {}",
                notice.days,
                notice.suspend_on,
                notice.to.join(", ")
            )
        }
        Err(e) => {
            delivery.failed += 1;
            changes.count(FAILED_COUNTER, 1);
            if e.permanent {
                changes.count(WAITING_COUNTER, -1);
                changes.count(REFUSED_COUNTER, 1);
            } else {
                outcome = Sent::LaterPerhaps;
            }
            let tries = match &notice.state {
                State::Failed { tries, .. } => tries + 1,
                _ => 1,
            };
            let detail = format!(
                "{}-day notice not sent ({}): {}",
                notice.days,
                if e.permanent {
                    "refused for good"
                } else {
                    "tried again later"
                },
                e.reason
            );
            delivery.last_error = Some(e.reason.clone());
            notice.state = State::Failed {
                at,
                tries,
                reason: e.reason,
                permanent: e.permanent,
            };
            detail
        }
    };
    changes.put_json(OUTBOX, notice.key(), &notice);
    audit::log(&mut changes, &notice.account, at, "notice", detail).map_err(|e| e.to_string())?;
    changes.commit().map_err(|e| e.to_string())?;
    Ok(outcome)
}

/// Removes a notice from the outbox (one never sent is recorded as such, and `why`, in the
/// account's history).
fn forget(store: &Store, notice: &Notice, why: &str) -> Result<(), StoreError> {
    let mut changes = store.changes(false);
    match notice.state {
        State::Sent { .. } => {}
        State::Failed {
            permanent: true, ..
        } => changes.count(REFUSED_COUNTER, -1),
        State::Queued | State::Failed { .. } => {
            changes.count(WAITING_COUNTER, -1);
            audit::log(
                &mut changes,
                &notice.account,
                Timestamp::now(),
                "notice",
                format!("{}-day notice never sent: {why}", notice.days),
            )?;
        }
    }
    changes.delete(OUTBOX, notice.key());
    changes.commit()
}

/// Writes the notices due `today` that the outbox does not hold yet, with their text.
fn queue_due(store: &Store, today: Date) -> Result<u64, StoreError> {
    let mut queued = 0;
    let mut changes = store.changes(false);
    for entry in audit::all_notices(store) {
        let (subject, notices) = entry?;
        // Each account is met once: what this walk queued needs no looking for.
        let Some(days) = unqueued_due(store, &subject, &notices, today)? else {
            continue;
        };
        let Some(account) = AccountKey::parse(&subject)
            .map(|k| store.account(&k))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let successor = store.active_elsewhere(&account)?;
        let mut to = vec![account.email.clone()];
        to.extend(account.personal_email.clone());
        let notice = Notice {
            account: subject.clone(),
            days,
            suspend_on: notices.suspend_on,
            to,
            queued: Timestamp::now(),
            letter: Some(letter::compose(
                &account,
                notices.suspend_on,
                days,
                successor.as_ref(),
            )),
            state: State::Queued,
        };
        changes.put_json(OUTBOX, notice.key(), &notice);
        changes.count(WAITING_COUNTER, 1);
        queued += 1;
        if changes.pending_bytes() > crate::store::Changes::BATCH_BYTES {
            changes.commit()?;
        }
    }
    changes.commit()?;
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_notice_reached_is_due_until_the_suspension() {
        let notices = Notices::new("a@sd.belajar.id", jiff::civil::date(2027, 1, 31));
        let day = |d| jiff::civil::date(2027, 1, d);
        assert_eq!(due(&notices, jiff::civil::date(2026, 12, 31)), None);
        assert_eq!(due(&notices, day(1)), Some(30));
        assert_eq!(due(&notices, day(27)), Some(30));
        assert_eq!(due(&notices, day(28)), Some(3));
        assert_eq!(due(&notices, day(30)), Some(3));
        assert_eq!(due(&notices, day(31)), None);
    }

    /// A notice of `account` in `state`, queued 30 days before `suspend_on`.
    fn notice(account: &str, suspend_on: Date, state: State) -> Notice {
        Notice {
            account: account.into(),
            days: 30,
            suspend_on,
            to: vec!["a@sd.belajar.id".into()],
            queued: Timestamp::UNIX_EPOCH,
            letter: Some(Letter {
                subject: "s".into(),
                body: "b".into(),
            }),
            state,
        }
    }

    #[test]
    fn the_outbox_is_read_in_batches_and_forgets_what_is_past_or_no_longer_true() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), 8).unwrap();
        let today = jiff::civil::date(2027, 1, 10);
        let (past, coming) = (jiff::civil::date(2027, 1, 2), jiff::civil::date(2027, 2, 1));
        let mut changes = store.changes(false);
        for i in 0..(BATCH as u32 * 2 + 10) {
            let n = notice(&format!("sd:nisn:{i:010}"), coming, State::Queued);
            changes.put_json(OUTBOX, n.key(), &n);
            changes.count(WAITING_COUNTER, 1);
            let schedule = Notices::new("a@sd.belajar.id", coming);
            audit::set_notices(&mut changes, &n.account, Some(&schedule));
        }
        // Queued, then reinstated (its schedule removed): never sent.
        let reinstated = notice("sd:nisn:9000000003", coming, State::Queued);
        changes.put_json(OUTBOX, reinstated.key(), &reinstated);
        changes.count(WAITING_COUNTER, 1);
        let sent = notice(
            "sd:nisn:9000000001",
            past,
            State::Sent {
                at: Timestamp::UNIX_EPOCH,
            },
        );
        let never = notice("sd:nisn:9000000002", past, State::Queued);
        for n in [&sent, &never] {
            changes.put_json(OUTBOX, n.key(), n);
        }
        changes.count(WAITING_COUNTER, 1);
        changes.commit().unwrap();

        let (mut sends, mut forgotten) = (0, 0);
        let mut after = b"o:".to_vec();
        loop {
            let (steps, next) = next_batch(&store, &after, today, Timestamp::now()).unwrap();
            assert!(steps.len() <= BATCH + 1, "bounded: {}", steps.len());
            for step in steps {
                match step {
                    Step::Send(_) => sends += 1,
                    Step::Forget(n, why) => {
                        forget(&store, &n, why).unwrap();
                        forgotten += 1;
                    }
                }
            }
            match next {
                Some(key) => after = key,
                None => break,
            }
        }
        assert_eq!(sends, BATCH * 2 + 10, "every coming notice once");
        assert_eq!(forgotten, 3);
        assert_eq!(counts(&store).unwrap().waiting, BATCH as u64 * 2 + 10);
        let history = audit::history(&store, "sd:nisn:9000000002").unwrap();
        assert!(history[0].detail.contains("never sent"), "{history:?}");
        let history = audit::history(&store, "sd:nisn:9000000003").unwrap();
        assert!(
            history[0].detail.contains("no longer retires"),
            "{history:?}"
        );
        assert!(
            audit::history(&store, "sd:nisn:9000000001")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn failed_notices_wait_longer_each_time_up_to_six_hours() {
        assert_eq!(retry_wait(1), SignedDuration::from_mins(5));
        assert_eq!(retry_wait(2), SignedDuration::from_mins(10));
        assert_eq!(retry_wait(30), MAX_RETRY_WAIT);
    }
}
