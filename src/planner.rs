//! The planner: a pure function from one local account and what was observed of it in
//! Google to what should be done about it. No I/O and no clock (today is an argument), so
//! every decision of "Actions" table (`docs/architecture.md`) is tested from recorded fixtures.

use crate::config::Sync;
use crate::directory::model::{Account, AccountKey, DesiredState, GoogleLink};
use crate::directory::naming::google_name;
use crate::google::types::{ExternalId, Organization, User, UserName};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The `externalIds` type of the project's marker; its value is the account key.
pub const MARKER_TYPE: &str = "organization";

/// The `suspensionReason` Google gives to a suspension made through the API or the Admin
/// console; any other reason (abuse, under 13, …) was Google's own decision.
pub const ADMIN_SUSPENSION: &str = "ADMIN";

/// Who wants the plan: a scheduled run does not undo what people did in Google; a person
/// (the helpdesk's `resync`, `reinstate`) does. The account's holder asking on the public
/// Cek Akun page gets a person's repair, but what an administrator did in Google (a
/// suspension, a deletion) stays for the helpdesk to undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Asker {
    Schedule,
    Person,
    Holder,
}

impl Asker {
    /// Whether the plan may undo an administrator's act in Google: lift their
    /// suspension, restore a user they deleted, adopt a user they suspended.
    pub fn undoes_admin_acts(self) -> bool {
        self == Asker::Person
    }
}

/// What the planner needs besides the account.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub today: Date,
    pub grace_days: u32,
    pub sync: &'a Sync,
    pub asker: Asker,
    /// The licence rules, when belajar-sync manages licences.
    pub licences: Option<&'a crate::config::Licences>,
}

impl<'a> Context<'a> {
    /// The context `config` gives, today, for `asker`.
    pub fn new(config: &'a crate::config::Config, today: Date, asker: Asker) -> Context<'a> {
        Context {
            today,
            grace_days: config.lifecycle.grace_days,
            sync: &config.sync,
            asker,
            licences: config.licences.enabled.then_some(&config.licences),
        }
    }
}

/// What was observed of one account in Google.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    /// Users whose marker names this account (normally none or one).
    #[serde(default)]
    pub marked: Vec<User>,
    /// The user found at the account's address (as primary address or alias) that carries
    /// no marker of this account.
    #[serde(default)]
    pub at_address: Option<User>,
    /// Deleted users that carry this account's marker (or were linked to it), which Google
    /// may still restore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<User>,
}

/// The kind of a call, named as the "Actions" table of `docs/architecture.md` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    CreateOrgUnit,
    Create,
    Adopt,
    Relink,
    Update,
    Rename,
    Suspend,
    Unsuspend,
    Undelete,
    /// Assign the licence an active account holds (licensing v1, not the Directory).
    Licence,
    /// Archive a retired user (suspended past its grace): an Archived User licence
    /// instead of its Education Fundamentals one.
    Archive,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::CreateOrgUnit => "create_org_unit",
            ActionKind::Create => "create",
            ActionKind::Adopt => "adopt",
            ActionKind::Relink => "relink",
            ActionKind::Update => "update",
            ActionKind::Rename => "rename",
            ActionKind::Suspend => "suspend",
            ActionKind::Unsuspend => "unsuspend",
            ActionKind::Undelete => "undelete",
            ActionKind::Licence => "licence",
            ActionKind::Archive => "archive",
        }
    }

    /// Every action.
    pub const ALL: [ActionKind; 11] = [
        ActionKind::CreateOrgUnit,
        ActionKind::Create,
        ActionKind::Adopt,
        ActionKind::Relink,
        ActionKind::Update,
        ActionKind::Rename,
        ActionKind::Suspend,
        ActionKind::Unsuspend,
        ActionKind::Undelete,
        ActionKind::Licence,
        ActionKind::Archive,
    ];

    /// The action named by [`as_str`](Self::as_str).
    pub fn parse(name: &str) -> Option<ActionKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// What is to be done, for people: `create org unit`.
    pub fn verb(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// `n` such actions done, for people: `3 accounts created`.
    pub fn done(self, n: u64) -> String {
        let (one, many) = match self {
            ActionKind::CreateOrgUnit => ("org unit created", "org units created"),
            ActionKind::Create => ("account created", "accounts created"),
            ActionKind::Adopt => ("existing user adopted", "existing users adopted"),
            ActionKind::Relink => ("link mended", "links mended"),
            ActionKind::Update => ("user updated", "users updated"),
            ActionKind::Rename => ("user renamed", "users renamed"),
            ActionKind::Suspend => ("user suspended", "users suspended"),
            ActionKind::Unsuspend => ("suspension lifted", "suspensions lifted"),
            ActionKind::Undelete => ("deleted user restored", "deleted users restored"),
            ActionKind::Licence => ("licence assigned", "licences assigned"),
            ActionKind::Archive => ("user archived", "users archived"),
        };
        crate::display::count(n, one, many)
    }
}

/// One call to make to Google.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub kind: ActionKind,
    /// The Google user written (none for a create), or the org unit created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The address the user has once the action is done (what a create is checked by).
    pub email: String,
    /// The body of the call: only the fields that change (a create's password is added
    /// when it is sent, never stored).
    pub body: User,
    /// The fields written, by their Google names.
    pub fields: Vec<String>,
    /// Why, in words.
    pub reason: String,
    /// For a licence: the SKU to assign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
}

/// What to do about one account.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Google matches the directory.
    InStep,
    /// A call to make.
    Act(Box<Action>),
    /// Something a machine must not decide: held for a person, with what to do.
    Conflict(String),
}

/// The planner's answer for one account.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    /// The link to record locally when it is missing or wrong (no call needed).
    pub link: Option<GoogleLink>,
    /// What is wrong, one line each: what `resync` prints.
    pub problems: Vec<String>,
    /// The org unit the account belongs in (created first when missing).
    pub org_unit: String,
    /// For a retiring account: the day it is suspended.
    pub suspend_on: Option<Date>,
}

/// The marker of `key`.
pub fn marker(key: &AccountKey) -> ExternalId {
    ExternalId {
        kind: Some(MARKER_TYPE.into()),
        custom_type: None,
        value: Some(key.to_string()),
    }
}

/// The account key a user's marker names, if it carries one.
pub fn marked_key(user: &User) -> Option<AccountKey> {
    user.external_ids
        .iter()
        .flatten()
        .filter(|e| e.kind.as_deref() == Some(MARKER_TYPE))
        .find_map(|e| e.value.as_deref().and_then(AccountKey::parse))
}

/// The day a retiring account is suspended.
pub fn suspension_day(since: Date, grace_days: u32) -> Date {
    since.saturating_add(jiff::Span::new().days(i64::from(grace_days)))
}

/// Decides what to do about `account`, given what was seen of it in Google.
pub fn plan(account: &Account, seen: &Seen, ctx: &Context) -> Decision {
    let org_unit = ctx
        .sync
        .org_unit_of(account.role.group(), account.jenjang, &account.npsn);
    let suspend_on = match &account.state {
        DesiredState::Retiring { since } => Some(suspension_day(*since, ctx.grace_days)),
        _ => None,
    };
    let mut decision = Decision {
        outcome: Outcome::InStep,
        link: None,
        problems: Vec::new(),
        org_unit,
        suspend_on,
    };
    let key = account.key();
    let linked_id = account.google.as_ref().map(|g| g.id.as_str());

    if seen.marked.len() > 1 {
        let ids: Vec<_> = seen.marked.iter().map(describe).collect();
        decision.outcome = Outcome::Conflict(format!(
            "{} Google users carry this account's marker ({}): keep one, suspend or delete the others in the Admin console, then run resync",
            ids.len(),
            ids.join(", ")
        ));
        return decision;
    }
    if let Some(user) = seen.marked.first() {
        return managed(account, user, ctx, decision);
    }
    match &seen.at_address {
        Some(user) if linked_id.is_some() && user.id.as_deref() == linked_id => {
            match marked_key(user) {
                Some(other) if other != key => {
                    decision.outcome = Outcome::Conflict(format!(
                        "the linked Google user {} carries the marker of another account, {other}: find out which account it belongs to, fix the marker in the Admin console, then run resync",
                        describe(user)
                    ));
                    decision
                }
                _ => managed(account, user, ctx, decision),
            }
        }
        Some(user) => adopt(account, user, ctx, decision),
        None => match newest(&seen.deleted) {
            Some(deleted) => restore(account, deleted, ctx, decision),
            None => absent(account, decision),
        },
    }
}

/// The most recently deleted of `users`.
fn newest(users: &[User]) -> Option<&User> {
    users
        .iter()
        .max_by_key(|u| u.deletion_time.clone().unwrap_or_default())
}

/// The account's Google user was deleted and Google may still restore it: it is brought
/// back (with its mail and files) when a person asks, and never replaced by a new, empty
/// user while it can be; a scheduled run holds the account for a person.
fn restore(account: &Account, deleted: &User, ctx: &Context, mut decision: Decision) -> Decision {
    if account.state != DesiredState::Active {
        return decision; // nobody needs it back
    }
    let id = deleted.id.clone().unwrap_or_default();
    let when = deleted
        .deletion_time
        .as_deref()
        .map_or_else(|| "at an unknown time".to_owned(), |t| format!("at {t}"));
    decision.problems.push(format!(
        "the Google user {id} of this account was deleted in Google {when}"
    ));
    if !ctx.asker.undoes_admin_acts() {
        decision.outcome = Outcome::Conflict(format!(
            "deleted in Google {when} (user {id}); `belajar-sync resync` restores it with its mail and files (a new user would lose them)"
        ));
        return decision;
    }
    let body = User {
        org_unit_path: Some(decision.org_unit.clone()),
        ..User::default()
    };
    decision.outcome = Outcome::Act(Box::new(Action {
        kind: ActionKind::Undelete,
        target: Some(id),
        email: account.email.clone(),
        fields: vec!["orgUnitPath".into()],
        body,
        reason: format!("deleted in Google {when}: restored with its mail and files"),
        sku: None,
    }));
    decision
}

/// No Google user is known for the account: create it when it should be active.
fn absent(account: &Account, mut decision: Decision) -> Decision {
    if let Some(link) = &account.google {
        decision.problems.push(format!(
            "the linked Google user {} is gone from Google and is not among the users it can restore (deleted for good, or its marker and address were both changed): a new user is created",
            link.id
        ));
    } else {
        decision
            .problems
            .push("no Google user has this account's address or marker".into());
    }
    if account.state != DesiredState::Active {
        // Nothing to suspend, and no point creating an account for someone who left.
        decision.problems.clear();
        return decision;
    }
    let name = google_name(&account.full_name);
    let body = User {
        primary_email: Some(account.email.clone()),
        name: Some(UserName {
            given_name: Some(name.given_name),
            family_name: Some(name.family_name),
            display_name: Some(name.display_name),
            ..UserName::default()
        }),
        change_password_at_next_login: Some(true),
        org_unit_path: Some(decision.org_unit.clone()),
        external_ids: Some(vec![marker(&account.key())]),
        organizations: Some(vec![school(&account.npsn)]),
        ..User::default()
    };
    decision.outcome = Outcome::Act(Box::new(Action {
        kind: ActionKind::Create,
        target: None,
        email: account.email.clone(),
        fields: body.fields_set(),
        body,
        reason: "active here and absent from Google".into(),
        sku: None,
    }));
    decision
}

/// A Google user holds the account's address but carries no marker of it and is not
/// linked: take it over only when it is plainly the same person.
fn adopt(account: &Account, user: &User, ctx: &Context, mut decision: Decision) -> Decision {
    let who = describe(user);
    let primary = user.primary_email.as_deref().unwrap_or_default();
    let conflict = if !primary.eq_ignore_ascii_case(&account.email) {
        Some(format!(
            "the address {} is an alias of the Google user {who}, which belajar-sync does not manage: remove the alias in the Admin console (or link the user by hand), then run resync",
            account.email
        ))
    } else if user.is_admin == Some(true) {
        Some(format!(
            "the address belongs to the Google admin {who}: belajar-sync never takes over admins; give the admin another address, then run resync"
        ))
    } else if let Some(marked) = marked_key(user) {
        Some(format!(
            "the address belongs to the Google user {who}, which carries the marker of another account, {marked}: find out which account it belongs to"
        ))
    } else if !same_person(&account.full_name, user) {
        Some(format!(
            "the address belongs to an unmanaged Google user named {:?}, not {:?}: check who uses it; if it is this person, correct the name in the Admin console and run resync",
            display_name(user),
            account.full_name
        ))
    } else if user.suspended == Some(true)
        && !wants_suspended(account, ctx)
        && !ctx.asker.undoes_admin_acts()
    {
        Some(format!(
            "the address belongs to the Google user {who}, suspended by an administrator before belajar-sync managed it: ask the school why; `belajar-sync resync` adopts and reinstates it"
        ))
    } else {
        None
    };
    if let Some(reason) = conflict {
        decision.outcome = Outcome::Conflict(reason);
        return decision;
    }
    decision
        .problems
        .push(format!("the Google user {who} is not managed yet"));
    let mut decision = managed(account, user, ctx, decision);
    if let Outcome::Act(action) = &mut decision.outcome
        && matches!(action.kind, ActionKind::Relink | ActionKind::Update)
    {
        action.kind = ActionKind::Adopt;
        action.reason = format!("adopt the existing Google user {who}: {}", action.reason);
    }
    decision
}

/// The account's Google user is known: repair whatever drifted.
fn managed(account: &Account, user: &User, ctx: &Context, mut decision: Decision) -> Decision {
    if user.is_admin == Some(true) {
        decision.outcome = Outcome::Conflict(format!(
            "the Google user {} is an admin: belajar-sync never changes admins; remove the admin role or the marker in the Admin console",
            describe(user)
        ));
        return decision;
    }
    let id = user.id.clone().unwrap_or_default();
    let suspended_by_us = check_link(account, &id, &mut decision);
    let mut fix = Fix {
        body: User::default(),
        kind: ActionKind::Update,
        reasons: Vec::new(),
    };
    fix.identity(account, user, &mut decision);
    fix.placement(account, user, &mut decision);
    if let Err(conflict) = fix.suspension(account, user, ctx, suspended_by_us, &mut decision) {
        decision.outcome = Outcome::Conflict(conflict);
        return decision;
    }
    if fix.reasons.is_empty() {
        if let Some(action) = archive(account, user, ctx, &mut decision) {
            decision.outcome = Outcome::Act(Box::new(action));
            return decision;
        }
        return licence(account, &id, ctx, decision);
    }
    decision.outcome = Outcome::Act(Box::new(Action {
        kind: fix.kind,
        target: Some(id),
        email: account.email.clone(),
        fields: fix.body.fields_set(),
        body: fix.body,
        reason: fix.reasons.join(", "),
        sku: None,
    }));
    decision
}

/// A retired account suspended in Google past its grace period is archived when the
/// licence rules say so (`retired = "archive"`): its data stays, and its Education
/// Fundamentals licence goes back to the pool. An account suspended here for a terms
/// violation is not archived (the helpdesk may lift that suspension).
fn archive(
    account: &Account,
    user: &User,
    ctx: &Context,
    decision: &mut Decision,
) -> Option<Action> {
    let licences = ctx.licences?;
    let retired =
        matches!(account.state, DesiredState::Retiring { .. }) && wants_suspended(account, ctx);
    if licences.retired != crate::config::RetiredLicence::Archive
        || !retired
        || user.suspended != Some(true)
        || user.archived == Some(true)
    {
        return None;
    }
    decision
        .problems
        .push("retired and suspended, not archived yet".into());
    let body = User {
        archived: Some(true),
        ..User::default()
    };
    Some(Action {
        kind: ActionKind::Archive,
        target: user.id.clone(),
        email: account.email.clone(),
        fields: body.fields_set(),
        body,
        reason: "retired: archived, its Education Fundamentals licence freed".into(),
        sku: Some(crate::config::ARCHIVED_SKU.to_owned()),
    })
}

/// An active account in step with Google holds the licence of its role (when licences are
/// managed): assigned when the account is not known to hold it. Retiring and suspended
/// accounts keep whatever they hold until they are archived.
fn licence(account: &Account, id: &str, ctx: &Context, mut decision: Decision) -> Decision {
    let Some(licences) = ctx.licences else {
        return decision;
    };
    if let Some((problem, action)) = licence_action(account, id, licences) {
        decision.problems.push(problem);
        decision.outcome = Outcome::Act(Box::new(action));
    }
    decision
}

/// The assignment an account of Google user `id` needs, with what is wrong; `None` when
/// it is not active or is known to hold the licence of its role. Also what follows a
/// create at once (so a new account is usable without waiting for the next round).
pub fn licence_action(
    account: &Account,
    id: &str,
    licences: &crate::config::Licences,
) -> Option<(String, Action)> {
    if account.state != DesiredState::Active {
        return None;
    }
    let wanted = licences.sku_for(account.role.group());
    let held = account
        .google
        .as_ref()
        .filter(|link| link.id == id)
        .and_then(|link| link.licence.as_deref());
    if held == Some(wanted) {
        return None;
    }
    let problem = match held {
        None => format!("not known to hold its licence (SKU {wanted})"),
        Some(other) => format!("holds licence SKU {other}, its role gets {wanted}"),
    };
    let action = Action {
        kind: ActionKind::Licence,
        target: Some(id.to_owned()),
        email: account.email.clone(),
        body: User::default(),
        fields: Vec::new(),
        reason: format!("an active account holds a licence (SKU {wanted})"),
        sku: Some(wanted.to_owned()),
    };
    Some((problem, action))
}

/// Notes a link to another user, or none, and links to user `id`; whether belajar-sync
/// suspended that user itself.
fn check_link(account: &Account, id: &str, decision: &mut Decision) -> bool {
    let link = account.google.as_ref();
    if link.is_none_or(|l| l.id != id) {
        let problem = match link {
            Some(old) => format!(
                "linked to Google user {}, but the account's user is {id}",
                old.id
            ),
            None => format!("not linked to its Google user {id}"),
        };
        decision.problems.push(problem);
        decision.link = Some(GoogleLink {
            id: id.to_owned(),
            suspended_by_us: false,
            licence: None,
            licence_freed: None,
        });
    }
    link.is_some_and(|l| l.id == id && l.suspended_by_us)
}

/// The repair of a managed user being put together: the body to send, the kind of
/// action it makes, and why.
struct Fix {
    body: User,
    kind: ActionKind,
    reasons: Vec<&'static str>,
}

impl Fix {
    /// Who the user is: the marker, the address, the name.
    fn identity(&mut self, account: &Account, user: &User, decision: &mut Decision) {
        let key = account.key();
        if marked_key(user).as_ref() != Some(&key) {
            let mut ids: Vec<ExternalId> = user.external_ids.clone().unwrap_or_default();
            ids.retain(|e| e.kind.as_deref() != Some(MARKER_TYPE) || marked_key_of(e).is_none());
            ids.push(marker(&key));
            self.body.external_ids = Some(ids);
            decision
                .problems
                .push("the marker (externalIds organization = account key) is missing".into());
            self.reasons.push("write the marker");
            self.kind = ActionKind::Relink;
        }
        let primary = user.primary_email.as_deref().unwrap_or_default();
        if !primary.eq_ignore_ascii_case(&account.email) {
            decision.problems.push(format!(
                "the address in Google is {primary}, the account's is {}",
                account.email
            ));
            self.body.primary_email = Some(account.email.clone());
            self.reasons.push("rename to the account's address");
            self.kind = ActionKind::Rename;
        }
        let name = google_name(&account.full_name);
        let current = user.name.clone().unwrap_or_default();
        // A display name Google lacks (users made before belajar-sync set one) is not
        // drift on its own: it comes with the next name correction.
        let display_drifted = current
            .display_name
            .as_deref()
            .is_some_and(|shown| !same_text(Some(shown), &name.display_name));
        if !same_text(current.given_name.as_deref(), &name.given_name)
            || !same_text(current.family_name.as_deref(), &name.family_name)
            || display_drifted
        {
            decision.problems.push(format!(
                "the name in Google is {:?}, the account's is {:?}",
                display_name(user),
                format!("{} {}", name.given_name, name.family_name)
            ));
            self.body.name = Some(UserName {
                given_name: Some(name.given_name),
                family_name: Some(name.family_name),
                display_name: Some(name.display_name),
                ..UserName::default()
            });
            self.reasons.push("correct the name");
            self.kind = self.kind.max(ActionKind::Update);
        }
    }

    /// Where the user is: the org unit and the school.
    fn placement(&mut self, account: &Account, user: &User, decision: &mut Decision) {
        if user.org_unit_path.as_deref() != Some(decision.org_unit.as_str()) {
            decision.problems.push(format!(
                "the org unit in Google is {}, the account's is {}",
                user.org_unit_path.as_deref().unwrap_or("(none)"),
                decision.org_unit
            ));
            self.body.org_unit_path = Some(decision.org_unit.clone());
            self.reasons.push("move to the account's org unit");
            self.kind = self.kind.max(ActionKind::Update);
        }
        let orgs = user.organizations.clone().unwrap_or_default();
        if !orgs
            .iter()
            .any(|o| o.cost_center.as_deref() == Some(account.npsn.as_str()))
        {
            decision.problems.push(format!(
                "the school (organization cost centre) in Google is not {}",
                account.npsn
            ));
            let mut orgs: Vec<Organization> = orgs
                .into_iter()
                .filter(|o| o.cost_center.is_none())
                .collect();
            orgs.push(school(&account.npsn));
            self.body.organizations = Some(orgs);
            self.reasons.push("set the school");
            self.kind = self.kind.max(ActionKind::Update);
        }
    }

    /// Whether the user is suspended as the account wants; a suspension belajar-sync
    /// may not lift (Google's own, or an admin's when no person asks) is a conflict.
    fn suspension(
        &mut self,
        account: &Account,
        user: &User,
        ctx: &Context,
        suspended_by_us: bool,
        decision: &mut Decision,
    ) -> Result<(), String> {
        let google_suspended = user.suspended == Some(true);
        let want_suspended = wants_suspended(account, ctx);
        if want_suspended && !google_suspended {
            let why = match &account.state {
                DesiredState::Suspended { reason, .. } => format!("suspended here: {reason}"),
                _ => format!(
                    "left, grace period ended on {}",
                    decision.suspend_on.unwrap_or(ctx.today)
                ),
            };
            decision.problems.push(format!("active in Google, {why}"));
            self.body.suspended = Some(true);
            self.reasons.push("suspend");
            self.kind = ActionKind::Suspend;
        } else if !want_suspended && google_suspended {
            let reason = user
                .suspension_reason
                .as_deref()
                .unwrap_or(ADMIN_SUSPENSION);
            if reason != ADMIN_SUSPENSION {
                return Err(format!(
                    "suspended by Google itself (reason {reason}): belajar-sync never lifts such a suspension; the school's admin can appeal to Google"
                ));
            }
            if !suspended_by_us && !ctx.asker.undoes_admin_acts() {
                return Err(
                    "suspended in Google by an administrator while active here: ask the school whether that was meant; `belajar-sync resync` (a person asking) lifts it".to_owned(),
                );
            }
            decision
                .problems
                .push("suspended in Google, active here".into());
            self.body.suspended = Some(false);
            self.reasons.push("lift the suspension");
            self.kind = ActionKind::Unsuspend;
        }
        if !want_suspended && user.archived == Some(true) {
            // Listed again: back from the archive (its licence is assigned next).
            decision
                .problems
                .push("archived in Google, active here".into());
            self.body.archived = Some(false);
            self.reasons.push("unarchive");
        }
        Ok(())
    }
}

/// The reason held for a managed Google user whose account is not in the directory.
pub fn orphan(user: &User, key: &AccountKey) -> String {
    format!(
        "the Google user {} carries the marker of {key}, which is not in the directory: import the export that lists it, or remove the marker in the Admin console",
        describe(user)
    )
}

/// Whether the account should be suspended in Google today.
fn wants_suspended(account: &Account, ctx: &Context) -> bool {
    match &account.state {
        DesiredState::Active => false,
        DesiredState::Retiring { since } => ctx.today >= suspension_day(*since, ctx.grace_days),
        DesiredState::Suspended { .. } => true,
    }
}

fn marked_key_of(entry: &ExternalId) -> Option<AccountKey> {
    entry.value.as_deref().and_then(AccountKey::parse)
}

fn school(npsn: &str) -> Organization {
    Organization {
        cost_center: Some(npsn.to_owned()),
        primary: Some(true),
        ..Organization::default()
    }
}

/// A user named for a person: address and id.
fn describe(user: &User) -> String {
    format!(
        "{} ({})",
        user.primary_email.as_deref().unwrap_or("?"),
        user.id.as_deref().unwrap_or("no id")
    )
}

fn display_name(user: &User) -> String {
    let name = user.name.clone().unwrap_or_default();
    name.full_name.or(name.display_name).unwrap_or_else(|| {
        format!(
            "{} {}",
            name.given_name.unwrap_or_default(),
            name.family_name.unwrap_or_default()
        )
        .trim()
        .to_owned()
    })
}

/// Compares names as people read them: case and runs of spaces do not matter.
fn same_text(found: Option<&str>, wanted: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    found.is_some_and(|f| norm(f) == norm(wanted))
}

/// Whether an unmanaged user's name is the account holder's: the same given and family
/// names as belajar-sync would write, or the same full name.
fn same_person(full_name: &str, user: &User) -> bool {
    let name = google_name(full_name);
    let theirs = user.name.clone().unwrap_or_default();
    (same_text(theirs.given_name.as_deref(), &name.given_name)
        && same_text(theirs.family_name.as_deref(), &name.family_name))
        || same_text(Some(&display_name(user)), &name.display_name)
}

#[cfg(test)]
mod tests;
