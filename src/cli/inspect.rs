//! `belajar-sync show` and `belajar-sync status`: read-only views of the directory.

use super::Failure;
use crate::config::Config;
use crate::directory::model::{Account, AccountKey, DesiredState, IdType, Jenjang};
use crate::directory::store::Store;
use serde_json::json;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// sd:nisn:0012345678, siti.aminah@sd.belajar.id, nisn:0012345678 or 0012345678.
    pub account: String,
    /// The level, when the person has accounts on several.
    #[arg(long, value_parser = parse_jenjang)]
    pub jenjang: Option<Jenjang>,
    /// Print the account as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the status as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_jenjang(text: &str) -> Result<Jenjang, String> {
    Jenjang::parse(text).ok_or_else(|| format!("expected one of {}", Jenjang::names()))
}

/// Finds the one account `text` names.
pub fn resolve(store: &Store, text: &str, jenjang: Option<Jenjang>) -> Result<Account, Failure> {
    let text = text.trim();
    let not_found = || Failure::BadInput(format!("no account {text:?} in the directory"));
    if text.contains('@') {
        return store.account_by_email(text)?.ok_or_else(not_found);
    }
    if let Some(key) = AccountKey::parse(text) {
        return store.account(&key)?.ok_or_else(not_found);
    }
    let (types, id): (Vec<IdType>, &str) = match text.split_once(':') {
        Some((t, id)) => {
            let t = IdType::parse(t).ok_or_else(|| {
                Failure::BadInput(format!(
                    "{text:?} is not an account: expected an account key (sd:nisn:0012345678), an address, or ID_TYPE:ID with ID_TYPE one of {}",
                    IdType::names()
                ))
            })?;
            (vec![t], id)
        }
        None => (IdType::ALL.to_vec(), text),
    };
    let mut found = Vec::new();
    for t in types.into_iter().filter(|t| t.digits() == id.len()) {
        found.extend(store.accounts_of_person(t, id)?);
    }
    found.retain(|a| jenjang.is_none_or(|j| a.jenjang == j));
    match found.len() {
        0 => Err(not_found()),
        1 => Ok(found.remove(0)),
        _ => Err(Failure::BadInput(format!(
            "{text:?} has several accounts: {}; name one by its key",
            found
                .iter()
                .map(|a| a.key().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

pub fn show(store: &Store, config: &Config, args: &ShowArgs) -> Result<ExitCode, Failure> {
    let account = resolve(store, &args.account, args.jenjang)?;
    let grace_ends = match &account.state {
        DesiredState::Retiring { since } => Some(
            since.saturating_add(jiff::Span::new().days(i64::from(config.lifecycle.grace_days))),
        ),
        _ => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&account).expect("accounts serialise");
        value["key"] = json!(account.key().to_string());
        value["group"] = json!(account.role.group());
        if let Some(end) = grace_ends {
            value["grace_ends"] = json!(end);
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    let state = match &account.state {
        DesiredState::Active => "active".to_owned(),
        DesiredState::Retiring { since } => format!(
            "retiring since {since}: suspended after {} unless listed again",
            grace_ends.expect("set for retiring")
        ),
        DesiredState::Suspended { reason, since } => format!("suspended since {since}: {reason}"),
    };
    let mut lines = vec![
        ("account", account.key().to_string()),
        ("email", account.email.clone()),
        ("name", account.full_name.clone()),
        (
            "role",
            format!("{} ({})", account.role, account.role.group()),
        ),
        ("jenjang", account.jenjang.to_string()),
        ("school", account.npsn.clone()),
        ("state", state),
    ];
    if !account.former_emails.is_empty() {
        lines.push(("former", account.former_emails.join(", ")));
    }
    if let Some(date) = account.birth_date {
        lines.push(("birth date", date.to_string()));
    }
    if let Some(email) = &account.personal_email {
        lines.push(("personal email", email.clone()));
    }
    let link = account
        .google
        .as_ref()
        .map_or_else(|| "not linked yet".to_owned(), |g| g.id.clone());
    lines.push(("google", link));
    for (label, value) in lines {
        println!("{label:<15}{value}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(store: &Store, args: &StatusArgs) -> Result<ExitCode, Failure> {
    let counts = store.counts()?;
    let interrupted = store.import_marker()?;
    if args.json {
        let value = json!({
            "accounts": counts,
            "store": store.path(),
            "interrupted_import": interrupted,
        });
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("store     {}", store.path().display());
    println!(
        "accounts  {} total: {} active, {} retiring, {} suspended",
        counts.total, counts.active, counts.retiring, counts.suspended
    );
    if let Some(marker) = interrupted {
        println!(
            "warning   the import of {} started at {} did not finish: run it again to finish it",
            marker.file, marker.started
        );
    }
    Ok(ExitCode::SUCCESS)
}
