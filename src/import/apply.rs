//! What one valid row does to the directory, and what a snapshot does to the accounts of
//! its schools that it no longer lists.

use super::validate::Row;
use crate::config::Naming;
use crate::directory::model::{Account, AccountKey, DesiredState, RowStatus};
use crate::directory::naming::{local_part, local_part_base};
use crate::store::{Changes, StoreError};
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

/// An address a row needs: a new account's, or the new domain's after a role change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressRequest {
    pub domain: String,
    /// The base of the local part, from the name.
    pub base: String,
    /// For a role change: the local part to keep where it is free in the new domain.
    pub keep: Option<String>,
}

/// Whether applying `row` to the stored account `old` needs a new address, and which.
pub fn address_request(
    old: Option<&Account>,
    row: &Row,
    naming: &Naming,
) -> Option<AddressRequest> {
    let domain = || naming.domain(row.role.group(), row.key.jenjang);
    match old {
        None if row.status == RowStatus::Aktif => Some(AddressRequest {
            domain: domain(),
            base: local_part_base(&row.full_name),
            keep: None,
        }),
        Some(old) if old.role.group() != row.role.group() => Some(AddressRequest {
            domain: domain(),
            base: local_part_base(&row.full_name),
            keep: Some(local_part(&old.email).to_owned()),
        }),
        _ => None,
    }
}

/// Gives `key` the address `request` asks for: the kept local part where free, else the
/// base or the next numbered candidate; the address is reserved in the index at once.
pub fn allocate(
    changes: &mut Changes<'_>,
    request: &AddressRequest,
    key: &AccountKey,
) -> Result<String, StoreError> {
    if let Some(keep) = &request.keep {
        let email = format!("{keep}@{}", request.domain);
        if changes.email_free_for(&email, key)? {
            changes.reserve_email(&email, key);
            return Ok(email);
        }
    }
    let email = changes.allocate_email(&request.base, &request.domain, key)?;
    changes.reserve_email(&email, key);
    Ok(email)
}

/// What applying a row did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub effect: Effect,
    /// Something an operator should read (a role change, a return).
    pub note: Option<String>,
    /// Whether the account is active afterwards (a snapshot's retirements count them
    /// without reading the account again).
    pub active: bool,
}

/// Applies one row to the stored account `old` (read by the caller), with the address
/// allocated for it when it needed one.
pub fn apply_row(
    changes: &mut Changes<'_>,
    old: Option<Account>,
    row: &Row,
    address: Option<String>,
    today: Date,
) -> Result<Applied, StoreError> {
    let Some(old) = old else {
        if row.status == RowStatus::Keluar {
            return Ok(Applied {
                effect: Effect::UnknownLeaver,
                note: None,
                active: false,
            });
        }
        let email = address.expect("an address was allocated for a new account");
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
        changes.put_account_reserved(None, &account, Some(&account.email))?;
        return Ok(Applied {
            effect: Effect::Created,
            note: None,
            active: true,
        });
    };

    let reserved = address.clone();
    let (new, effect, note) = merge(&old, row, address, today);
    if effect != Effect::Unchanged {
        changes.put_account_reserved(Some(&old), &new, reserved.as_deref())?;
    }
    Ok(Applied {
        effect,
        note,
        active: new.state == DesiredState::Active,
    })
}

/// What `row` makes of the stored account `old` (with the address allocated for a role
/// change, if any): the new account, the effect, and a note worth reading. Pure.
pub fn merge(
    old: &Account,
    row: &Row,
    address: Option<String>,
    today: Date,
) -> (Account, Effect, Option<String>) {
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
        let email = address.expect("an address was allocated for the role change");
        let moved_from = std::mem::replace(&mut new.email, email);
        new.former_emails.retain(|e| *e != new.email);
        if !new.former_emails.contains(&moved_from) {
            new.former_emails.push(moved_from);
        }
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
    if new == *old {
        return (new, Effect::Unchanged, None);
    }
    (new, effect, note)
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
