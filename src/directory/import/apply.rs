//! What one valid row does to the directory, and what a snapshot does to the accounts of
//! its schools that it no longer lists.

use super::validate::Row;
use crate::config::Naming;
use crate::directory::model::{Account, AccountKey, DesiredState, RowStatus};
use crate::directory::naming::local_part;
use crate::directory::store::{Changes, StoreError};
use jiff::civil::Date;

/// What applying a row did to its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Created,
    Updated,
    Unchanged,
    /// The row says `keluar`: the account starts its grace period.
    Retiring,
    /// A `keluar` row for a person without an account: nothing to do.
    UnknownLeaver,
}

/// Applies one row; returns its effect and, when something happened that an operator
/// should read (a role change, a return), a note.
pub fn apply_row(
    changes: &mut Changes<'_>,
    naming: &Naming,
    row: &Row,
    today: Date,
) -> Result<(Effect, Option<String>), StoreError> {
    let old = changes.account(&row.key)?;
    let Some(old) = old else {
        if row.status == RowStatus::Keluar {
            return Ok((Effect::UnknownLeaver, None));
        }
        let domain = naming.domain(row.role.group(), row.key.jenjang);
        let email = changes.allocate_email(&row.full_name, &domain, &row.key)?;
        let account = Account {
            jenjang: row.key.jenjang,
            id_type: row.key.id_type,
            id: row.key.id.clone(),
            full_name: row.full_name.clone(),
            role: row.role,
            npsn: row.npsn.clone(),
            birth_date: row.birth_date.flatten(),
            personal_email: row.personal_email.clone().flatten(),
            state: DesiredState::Active,
            email,
            former_emails: Vec::new(),
            google: None,
        };
        changes.put_account(None, &account)?;
        return Ok((Effect::Created, None));
    };

    let mut new = old.clone();
    let mut note = None;
    new.full_name.clone_from(&row.full_name);
    new.npsn.clone_from(&row.npsn);
    if let Some(birth_date) = row.birth_date {
        new.birth_date = birth_date;
    }
    if let Some(personal_email) = &row.personal_email {
        new.personal_email.clone_from(personal_email);
    }
    if old.role.group() != row.role.group() {
        let domain = naming.domain(row.role.group(), row.key.jenjang);
        move_address(changes, &mut new, &domain)?;
        note = Some(format!(
            "{}: {} → {}: address {} → {} (Google is renamed by the next sync; the old address stays as an alias)",
            row.key, old.role, row.role, old.email, new.email
        ));
    }
    new.role = row.role;

    let mut effect = Effect::Updated;
    match (&old.state, row.status) {
        (DesiredState::Active, RowStatus::Keluar) => {
            new.state = DesiredState::Retiring { since: today };
            effect = Effect::Retiring;
        }
        (DesiredState::Retiring { since }, RowStatus::Aktif) => {
            new.state = DesiredState::Active;
            note = note.or(Some(format!(
                "{}: listed again after retiring since {since}: active again",
                row.key
            )));
        }
        _ => {}
    }
    if new == old {
        return Ok((Effect::Unchanged, None));
    }
    changes.put_account(Some(&old), &new)?;
    Ok((effect, note))
}

/// Moves an account's address to `domain`, keeping the local part where it is free there,
/// and keeps the old address as a former one (Google keeps it as an alias).
fn move_address(
    changes: &mut Changes<'_>,
    account: &mut Account,
    domain: &str,
) -> Result<(), StoreError> {
    let key = account.key();
    let same_local = format!("{}@{domain}", local_part(&account.email));
    let email = if changes.email_free_for(&same_local, &key)? {
        same_local
    } else {
        changes.allocate_email(&account.full_name, domain, &key)?
    };
    let old = std::mem::replace(&mut account.email, email);
    account.former_emails.retain(|e| *e != account.email);
    if !account.former_emails.contains(&old) {
        account.former_emails.push(old);
    }
    Ok(())
}

/// Starts the grace period of an active account a snapshot no longer lists. Returns
/// whether it did.
pub fn retire_absent(
    changes: &mut Changes<'_>,
    key: &AccountKey,
    today: Date,
) -> Result<bool, StoreError> {
    let Some(old) = changes.account(key)? else {
        return Ok(false);
    };
    if old.state != DesiredState::Active {
        return Ok(false);
    }
    let new = Account {
        state: DesiredState::Retiring { since: today },
        ..old.clone()
    };
    changes.put_account(Some(&old), &new)?;
    Ok(true)
}
