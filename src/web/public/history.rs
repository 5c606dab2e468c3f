//! The public pages' lines in accounts' histories (a lookup that matched, a code mailed),
//! written together: one change, one commit, for every line that arrived while the last
//! change was being written. A page waits for its line, so nothing is answered before it
//! is recorded; and however many people ask at once, the lines wait for the write lease
//! (an import may hold it for minutes) on one blocking thread, not one thread each
//! (500 at once held 1.2 GiB that way).

use crate::store::Store;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Lines written together at most.
const BATCH: usize = 1_000;

/// A line waiting to be written, and who waits for it.
struct Waiting {
    subject: String,
    what: &'static str,
    line: String,
    at: jiff::Timestamp,
    written: oneshot::Sender<Result<(), String>>,
}

/// Where the pages hand their lines.
pub struct History {
    lines: mpsc::UnboundedSender<Waiting>,
}

impl History {
    /// Starts the writer of `store` (within a tokio runtime); it ends when the last
    /// handle is dropped, after writing what it was given.
    pub fn start(store: Arc<Store>) -> History {
        let (lines, received) = mpsc::unbounded_channel();
        tokio::spawn(write(store, received));
        History { lines }
    }

    /// Appends `line` (`what`) to the history of each of `subjects`, once written.
    pub async fn record(
        &self,
        subjects: Vec<String>,
        what: &'static str,
        line: String,
    ) -> Result<(), String> {
        let at = jiff::Timestamp::now();
        let mut answers = Vec::new();
        for subject in subjects {
            let (written, answer) = oneshot::channel();
            let waiting = Waiting {
                subject,
                what,
                line: line.clone(),
                at,
                written,
            };
            self.lines
                .send(waiting)
                .map_err(|_| "the history writer has stopped".to_owned())?;
            answers.push(answer);
        }
        for answer in answers {
            answer
                .await
                .map_err(|_| "the history writer has stopped".to_owned())??;
        }
        Ok(())
    }
}

/// Writes what arrives, a batch at a time, and tells each waiter how it went.
async fn write(store: Arc<Store>, mut received: mpsc::UnboundedReceiver<Waiting>) {
    let mut batch = Vec::with_capacity(BATCH);
    while received.recv_many(&mut batch, BATCH).await > 0 {
        let lines = std::mem::take(&mut batch);
        let store = store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let written = commit(&store, &lines).map_err(|e| e.to_string());
            (lines, written)
        })
        .await;
        let Ok((lines, written)) = done else {
            continue; // the waiters' senders went with the panic: they hear it
        };
        if let Err(error) = &written {
            tracing::error!(%error, lines = lines.len(), "public pages: history lines not written");
        }
        for waiting in lines {
            let _ = waiting.written.send(written.clone());
        }
    }
}

fn commit(store: &Store, lines: &[Waiting]) -> Result<(), crate::store::StoreError> {
    let mut changes = store.changes(false);
    for waiting in lines {
        crate::audit::log(
            &mut changes,
            &waiting.subject,
            waiting.at,
            waiting.what,
            waiting.line.clone(),
        )?;
    }
    changes.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines given at once, while another writer holds the lease, are all written (in one
    /// change, once the lease is free), and each waiter hears it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_given_while_another_writer_holds_the_lease_are_all_written_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), 8).unwrap());
        let history = Arc::new(History::start(store.clone()));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (taken, lease_taken) = oneshot::channel();
        let holder = {
            let store = store.clone();
            std::thread::spawn(move || {
                let _lease = store.lease();
                let _ = taken.send(());
                let _ = held.recv();
            })
        };
        lease_taken.await.unwrap();
        let mut pages = tokio::task::JoinSet::new();
        for n in 0..50 {
            let history = history.clone();
            pages.spawn(async move {
                let subject = format!("sd:nisn:{n:010}");
                history
                    .record(vec![subject], "cek-akun", format!("found {n}"))
                    .await
            });
        }
        release.send(()).unwrap();
        holder.join().unwrap();
        while let Some(done) = pages.join_next().await {
            done.unwrap().unwrap();
        }
        for n in [0, 49] {
            let events = crate::audit::history(&store, &format!("sd:nisn:{n:010}")).unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].detail, format!("found {n}"));
        }
    }
}
