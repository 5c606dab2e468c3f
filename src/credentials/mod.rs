//! Getting accounts into their people's hands: a school's sheet of first passwords
//! (`credentials`) and the helpdesk's reset of one password (`reset-password`).
//!
//! A password is made at the moment it is issued, sent to Google once, and handed back
//! to the caller only inside a [`Secret`]: it is never written to the store, the journal,
//! the audit or a log. What the store keeps is that a password was issued, when and by
//! whom ([`access::Issued`]), written only after the sheet exists, so that a crash before
//! then leaves nothing behind and the next run issues new passwords.

pub mod sheet;

use crate::access::{self, Access, Issued};
use crate::audit::{self, HeldList};
use crate::directory::model::{Account, DesiredState};
use crate::google::errors::CallError;
use crate::google::types::User;
use crate::google::{CallFailure, DirectoryClient};
use crate::password;
pub use crate::password::Secret;
use crate::planner::{ADMIN_SUSPENSION, marked_key};
use crate::remote;
use crate::store::{Store, StoreError};
use futures_util::StreamExt;
use jiff::Timestamp;
use jiff::civil::Date;
use std::collections::BTreeSet;

/// Accounts whose first password is set at once (each is a read and a write).
const CONCURRENCY: usize = 16;

/// Which accounts that already got a first password (and never signed in) get a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reissue {
    /// None: they keep the password of their earlier sheet.
    None,
    /// Every one of them.
    All,
    /// These account keys.
    Only(BTreeSet<String>),
}

impl Reissue {
    fn covers(&self, account: &Account) -> bool {
        match self {
            Reissue::None => false,
            Reissue::All => true,
            Reissue::Only(keys) => keys.contains(&account.key().to_string()),
        }
    }
}

/// What the sheet says of one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A new first password, confirmed by Google.
    Issued(Secret),
    /// Signed in already (last at that time): never reset here.
    SignedIn(Timestamp),
    /// A first password was issued then and the account was never signed into.
    IssuedBefore(Timestamp),
    /// No Google user yet: the next sync creates it.
    NotInGoogle,
    /// Suspended in Google: nobody can sign in; the helpdesk decides.
    Suspended,
    /// Something a person must look at first (in English, for the operator).
    Held(String),
    /// Google did not set the password (in English, for the operator).
    Failed(String),
}

/// One row of a sheet.
#[derive(Debug, Clone)]
pub struct Row {
    pub account: Account,
    pub line: Line,
}

/// Decides what the sheet does with one account, from its Google user as just read and
/// what the store knows of its access: `None` means a new first password is issued.
pub fn verdict(
    account: &Account,
    user: Option<&User>,
    access: Option<&Access>,
    reissue: bool,
) -> Option<Line> {
    let Some(user) = user else {
        return Some(Line::NotInGoogle);
    };
    if marked_key(user) != Some(account.key()) {
        return Some(Line::Held(
            "its Google user does not carry the account's marker: run resync first".into(),
        ));
    }
    if user.is_admin == Some(true) {
        return Some(Line::Held(
            "a Google admin: belajar-sync never sets an admin's password".into(),
        ));
    }
    if user.suspended == Some(true) {
        return Some(Line::Suspended);
    }
    if let Some(at) = user.last_sign_in() {
        return Some(Line::SignedIn(at));
    }
    match access.and_then(|a| a.issued.as_ref()) {
        Some(issued) if !reissue => Some(Line::IssuedBefore(issued.at)),
        _ => None,
    }
}

/// The body that sets a first password: the person must choose their own at the next
/// sign-in.
fn first_password(secret: &Secret) -> User {
    User {
        password: Some(secret.expose().to_owned()),
        change_password_at_next_login: Some(true),
        ..User::default()
    }
}

/// Reads the account's linked Google user fresh (`None` when it has none or Google has no
/// such user) and records what was read.
async fn read_linked(
    store: &Store,
    client: &DirectoryClient,
    account: &Account,
) -> Result<Option<User>, CallFailure> {
    let Some(link) = &account.google else {
        return Ok(None);
    };
    match client.get_user(&link.id).await {
        Ok(called) => {
            record_observed(store, &called.value);
            Ok(Some(called.value))
        }
        Err(f) if f.status() == Some(404) => Ok(None),
        Err(f) => Err(f),
    }
}

/// Issues first passwords to `accounts` (the active accounts of a sheet): reads each
/// account's Google user fresh (one that was seen signed in is not read again), and sets
/// a new first password where [`verdict`] says so. Calls `progress(done, total)` as
/// accounts finish. Nothing is recorded as issued: that is [`record_issued`]'s, once the
/// sheet exists.
pub async fn issue(
    store: &Store,
    client: &DirectoryClient,
    accounts: Vec<Account>,
    reissue: &Reissue,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Row>, StoreError> {
    let total = accounts.len();
    let mut rows = Vec::with_capacity(total);
    // The accounts are this sheet's while it runs: another sheet, a reset or a push of the
    // journal (an update, a rename) waits for them rather than racing its write.
    let keys: Vec<String> = accounts.iter().map(|a| a.key().to_string()).collect();
    let claim = store.claim(keys.iter().map(String::as_str));
    let claim = &claim;
    // Once Google cannot be reached or refuses our writes, the rest is not sent: their
    // rows say so (a thousand refused calls would tell nothing more).
    let halted: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let halted = &halted;
    let mut pending = futures_util::stream::iter(accounts.into_iter().map(|account| async move {
        let stop = halted.lock().expect("halt lock").clone();
        let line = match stop {
            Some(why) => Line::Failed(format!("not sent: {why}")),
            None if !claim.subjects.contains(&account.key().to_string()) => Line::Held(BUSY.into()),
            None => issue_one(store, client, &account, reissue.covers(&account)).await?,
        };
        if let Line::Failed(why) = &line
            && why.starts_with(STOPPED)
        {
            halted
                .lock()
                .expect("halt lock")
                .get_or_insert_with(|| why.clone());
        }
        Ok::<_, StoreError>(Row { account, line })
    }))
    .buffer_unordered(CONCURRENCY);
    while let Some(row) = pending.next().await {
        rows.push(row?);
        progress(rows.len(), total);
    }
    Ok(rows)
}

async fn issue_one(
    store: &Store,
    client: &DirectoryClient,
    account: &Account,
    reissue: bool,
) -> Result<Line, StoreError> {
    let access = access::of(store, &account.key())?;
    if let Some(at) = access.as_ref().and_then(|a| a.last_sign_in) {
        return Ok(Line::SignedIn(at));
    }
    // A user created here whose password nobody was told cannot have been signed into:
    // what was last observed of it stands in for a read (the write's answer is checked).
    let stored = if access.as_ref().is_some_and(Access::password_unseen) {
        observed_linked(store, account)?
    } else {
        None
    };
    let read = stored.is_none();
    let user = match stored {
        Some(user) => Some(user),
        None => match read_linked(store, client, account).await {
            Ok(user) => user,
            Err(f) => return Ok(Line::Failed(describe_failure(&f))),
        },
    };
    if let Some(line) = verdict(account, user.as_ref(), access.as_ref(), reissue) {
        return Ok(line);
    }
    let id = user.and_then(|u| u.id).unwrap_or_default();
    let secret = password::generate();
    Ok(
        match client.update_user(&id, &first_password(&secret)).await {
            // Not read first: the answer is Google's user now, judged as a read would be
            // (an admin may have suspended it since it was last seen).
            Ok(called) if !read => {
                record_observed(store, &called.value);
                match verdict(account, Some(&called.value), None, true) {
                    Some(line) => line,
                    None => Line::Issued(secret),
                }
            }
            Ok(_) => Line::Issued(secret),
            Err(f) => Line::Failed(describe_failure(&f)),
        },
    )
}

/// The account's linked Google user as last observed here, if it was.
fn observed_linked(store: &Store, account: &Account) -> Result<Option<User>, StoreError> {
    let Some(link) = &account.google else {
        return Ok(None);
    };
    Ok(remote::marked_users(store, &account.key())?
        .into_iter()
        .map(|observed| observed.user)
        .find(|user| user.id.as_deref() == Some(link.id.as_str())))
}

/// Records a user just read or written (only a cache of Google: a failed write loses
/// nothing).
fn record_observed(store: &Store, user: &User) {
    let mut changes = store.changes(false);
    if remote::record(&mut changes, user, Timestamp::now()).is_ok() {
        let _ = changes.commit();
    }
}

/// Whether a write may have been applied although it failed: no answer came, or one that
/// could not be read.
fn answer_unknown(f: &CallFailure) -> bool {
    f.is_uncertain() || matches!(f.error, CallError::Unreadable(_))
}

/// Why an account another worker has in hand is left alone.
const BUSY: &str =
    "another sheet, reset or repair is at work on this account now: ask again in a minute";

/// How the failure of a call that stops the sheet begins.
const STOPPED: &str = "stopped: ";

/// What a failed password write means for the operator.
fn describe_failure(f: &CallFailure) -> String {
    if let crate::executor::Answer::Stop(why) = crate::executor::judge(f, false) {
        format!("{STOPPED}{why}")
    } else if answer_unknown(f) {
        format!("Google did not answer, the password may or may not have changed ({f})")
    } else {
        format!("Google refused: {f}")
    }
}

/// Records, once the sheet exists, that the rows with a new password got one: in each
/// account's access record and history, with the operator who asked.
pub fn record_issued(
    store: &Store,
    rows: &[Row],
    actor: &str,
    what: &str,
) -> Result<(), StoreError> {
    let at = Timestamp::now();
    for chunk in rows.chunks(5_000) {
        let mut changes = store.changes(false);
        for row in chunk {
            if !matches!(row.line, Line::Issued(_)) {
                continue;
            }
            let key = row.account.key();
            let issued = Issued {
                at,
                by: actor.to_owned(),
                how: "sheet".into(),
            };
            access::set_issued(&mut changes, &key, issued)?;
            audit::log(
                &mut changes,
                &key.to_string(),
                at,
                "password",
                format!("first password issued on {what}, asked by {actor}"),
            )?;
        }
        changes.commit()?;
    }
    Ok(())
}

/// Why a helpdesk reset was not made. Nothing was sent to Google unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(
        "the birth date does not match the directory's: nothing was changed (check the person's identity){}",
        wait_note(.count, .until)
    )]
    BirthDate {
        /// Wrong birth dates in a row for this account, this one included.
        count: u32,
        /// Until when the next check waits, if it does.
        until: Option<Timestamp>,
    },
    #[error(
        "no birth date is recorded for this account, so the person's identity cannot be checked: nothing was changed. The school operator must correct the record in Dapodik (then import it), or reset the password in the console"
    )]
    NoBirthDate,
    #[error(
        "{count} wrong birth dates in a row for this account: the next check is possible at {}; nothing was changed",
        crate::display::time(*.until)
    )]
    TooManyChecks { count: u32, until: Timestamp },
    #[error("{0}")]
    Refused(String),
    #[error("cannot read the account's Google user: {0}")]
    Read(CallFailure),
    #[error(
        "Google did not answer: the password may or may not have changed; nothing was shown. Run reset-password again"
    )]
    Uncertain,
    #[error("Google did not set the password: {0}")]
    Write(CallFailure),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn wait_note(count: &u32, until: &Option<Timestamp>) -> String {
    match until {
        Some(until) => format!(
            "; {count} wrong in a row: the next check waits until {}",
            crate::display::time(*until)
        ),
        None => String::new(),
    }
}

/// Checks the birth date a person gives for `account` against the directory's, failing
/// closed when none is recorded; a wrong one is recorded in the account's history and
/// makes the next check wait ([`access::check_wait`]).
fn check_identity(
    store: &Store,
    account: &Account,
    birth_date: Date,
    actor: &str,
) -> Result<(), ResetError> {
    let Some(known) = account.birth_date else {
        return Err(ResetError::NoBirthDate);
    };
    let key = account.key();
    let now = Timestamp::now();
    // Read and counted under the write lease: two guesses at once both count.
    let mut changes = store.changes(false);
    let failed = access::get(&changes, &key)?.and_then(|a| a.failed_checks);
    if let Some(until) = access::check_wait(failed.as_ref(), now) {
        let count = failed.map_or(0, |f| f.count);
        return Err(ResetError::TooManyChecks { count, until });
    }
    if known == birth_date {
        return Ok(());
    }
    let failed = access::failed_check(&mut changes, &key, now)?;
    audit::log(
        &mut changes,
        &key.to_string(),
        now,
        "identity",
        format!(
            "reset refused: a wrong birth date, asked by {actor} ({} in a row)",
            failed.count
        ),
    )?;
    changes.commit()?;
    tracing::warn!(account = %key, %actor, wrong_in_a_row = failed.count, "identity check failed");
    Err(ResetError::BirthDate {
        count: failed.count,
        until: access::check_wait(Some(&failed), now),
    })
}

/// How the person asking for a reset is known to be the account's holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The birth date they gave (the helpdesk asks it), checked against the directory's.
    BirthDate(Date),
    /// The school's own operator, signed in to the console, vouches for their person.
    SchoolOperator,
    /// The holder, with the one-time code mailed to the personal email Dapodik records
    /// (checked by the caller: the Lupa kata sandi page).
    MailedCode,
}

impl Identity {
    /// How the identity was known, for the history.
    fn words(self) -> &'static str {
        match self {
            Identity::BirthDate(_) => "birth date checked",
            Identity::SchoolOperator => "the school's operator vouched",
            Identity::MailedCode => "the holder, with the code mailed to their personal email",
        }
    }
}

/// The helpdesk resets one account's password after checking the person's identity:
/// refused for a birth date that differs from the directory's (or none recorded), after
/// too many wrong ones in a row, for an account not active
/// here, held as a conflict, absent from Google, an admin or suspended in Google. The new
/// first password is returned to be shown once.
pub async fn reset(
    store: &Store,
    client: &DirectoryClient,
    account: &Account,
    identity: Identity,
    actor: &str,
) -> Result<Secret, ResetError> {
    if let Identity::BirthDate(birth_date) = identity {
        check_identity(store, account, birth_date, actor)?;
    }
    let refused = |why: String| Err(ResetError::Refused(why));
    match &account.state {
        DesiredState::Suspended { reason, .. } => {
            return refused(format!(
                "the account is suspended here ({reason}): nobody may sign in to it; if that is over, belajar-sync reinstate it first"
            ));
        }
        DesiredState::Active | DesiredState::Retiring { .. } => {}
    }
    let key = account.key();
    let subject = key.to_string();
    let claim = store.claim([subject.as_str()]);
    if claim.subjects.is_empty() {
        return refused(BUSY.into());
    }
    if let Some(held) = audit::held(&store.changes(true), HeldList::Conflicts, &subject)? {
        return refused(format!(
            "the account is held for a person: {}; settle that first",
            held.reason
        ));
    }
    let user = read_linked(store, client, account)
        .await
        .map_err(ResetError::Read)?;
    let Some(user) = user else {
        return refused(
            "the account has no Google user yet (or its link is lost): run resync first".into(),
        );
    };
    if marked_key(&user) != Some(key.clone()) {
        return refused(
            "its Google user does not carry the account's marker: run resync first".into(),
        );
    }
    if user.is_admin == Some(true) {
        return refused(
            "the account is a Google admin: belajar-sync never sets an admin's password; use the Admin console".into(),
        );
    }
    if user.suspended == Some(true) {
        return refused(match user.suspension_reason.as_deref() {
            Some(ADMIN_SUSPENSION) | None => "the account is suspended in Google by an admin: if the person may use it again, run resync (a person asking lifts it), then reset".into(),
            Some(reason) => format!("the account is suspended by Google itself ({reason}): only Google's review can lift it"),
        });
    }
    let secret = password::generate();
    let id = user.id.unwrap_or_default();
    match client.update_user(&id, &first_password(&secret)).await {
        Ok(_) => {}
        Err(f) if answer_unknown(&f) => return Err(ResetError::Uncertain),
        Err(f) => return Err(ResetError::Write(f)),
    }
    let at = Timestamp::now();
    let mut changes = store.changes(false);
    access::set_issued(
        &mut changes,
        &key,
        Issued {
            at,
            by: actor.to_owned(),
            how: "reset".into(),
        },
    )?;
    audit::log(
        &mut changes,
        &subject,
        at,
        "password",
        format!(
            "first password reset, asked by {actor} ({})",
            identity.words()
        ),
    )?;
    changes.commit()?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::model::GoogleLink;
    use crate::planner::marker;

    fn account() -> Account {
        Account {
            google: Some(GoogleLink {
                id: "1".into(),
                suspended_by_us: false,
                licence: None,
                licence_freed: None,
            }),
            ..Account::student("0012345678", "Siti Aminah", "siti.aminah@sd.belajar.id")
        }
    }

    fn user() -> User {
        User {
            id: Some("1".into()),
            external_ids: Some(vec![marker(&account().key())]),
            suspended: Some(false),
            last_login_time: Some("1970-01-01T00:00:00.000Z".into()),
            ..User::default()
        }
    }

    #[test]
    fn only_a_never_signed_in_active_managed_user_gets_a_password() {
        let a = account();
        assert_eq!(verdict(&a, Some(&user()), None, false), None);
        assert_eq!(verdict(&a, None, None, false), Some(Line::NotInGoogle));

        let signed_in = User {
            last_login_time: Some("2026-07-14T01:02:03.000Z".into()),
            ..user()
        };
        assert!(matches!(
            verdict(&a, Some(&signed_in), None, true),
            Some(Line::SignedIn(_))
        ));
        let suspended = User {
            suspended: Some(true),
            ..user()
        };
        assert_eq!(
            verdict(&a, Some(&suspended), None, true),
            Some(Line::Suspended)
        );
        let admin = User {
            is_admin: Some(true),
            ..user()
        };
        assert!(matches!(
            verdict(&a, Some(&admin), None, true),
            Some(Line::Held(_))
        ));
        let unmarked = User {
            external_ids: None,
            ..user()
        };
        assert!(matches!(
            verdict(&a, Some(&unmarked), None, true),
            Some(Line::Held(_))
        ));
    }

    #[test]
    fn an_earlier_sheet_is_kept_unless_reissued() {
        let at: Timestamp = "2026-07-01T00:00:00Z".parse().unwrap();
        let access = Access {
            issued: Some(Issued {
                at,
                by: "ani".into(),
                how: "sheet".into(),
            }),
            ..Access::default()
        };
        let a = account();
        assert_eq!(
            verdict(&a, Some(&user()), Some(&access), false),
            Some(Line::IssuedBefore(at))
        );
        assert_eq!(verdict(&a, Some(&user()), Some(&access), true), None);
        let only = Reissue::Only(BTreeSet::from(["sd:nisn:0012345678".to_owned()]));
        assert!(only.covers(&a));
        assert!(!Reissue::None.covers(&a));
    }
}
