//! A round's plan: every account planned ([`plan_each`]) and what it calls for written to
//! the journal, with the audit lines, the conflicts, the org units the actions need and
//! the guard's verdict on suspensions ([`enqueue`]). A dry run (`plan`) counts and shows
//! the same lines and writes nothing, so it builds none of the records either.

use super::{Guard, GuardHeld, Item, Mode, PlanLine, Planned, Suspensions, Totals, plan_each};
use crate::audit::{self, HeldList};
use crate::config::Config;
use crate::directory::model::AccountKey;
use crate::google::types::User;
use crate::journal::{self, Lane, missing_org_units, org_unit_action, queue};
use crate::planner::{self, Action, ActionKind, Outcome};
use crate::remote;
use crate::store::{Changes, Store, StoreError};
use jiff::Timestamp;
use jiff::civil::Date;
use std::collections::BTreeSet;

/// Plans every account and writes the actions to the journal (with their audit lines and
/// the org units they need), the conflicts to their list, and the guard's verdict;
/// `on_line` sees each action and conflict. Suspensions are written only once the whole
/// plan shows they are not too many. In a dry run nothing is written.
pub fn enqueue(
    store: &Store,
    config: &Config,
    today: Date,
    mode: Mode,
    on_line: impl FnMut(PlanLine),
) -> Result<(Totals, Option<GuardHeld>), StoreError> {
    let writes = mode != Mode::DryRun;
    // A plan that is written is made under the write lease whole: from one moment of the
    // directory (never half an import), and its guard sees every suspension it queues.
    let _lease = writes.then(|| store.lease());
    let mut round = Round {
        store,
        today,
        writes,
        suspensions: match mode {
            Mode::DryRun => Suspensions::Guarded,
            Mode::Write(s) => s,
        },
        now: Timestamp::now(),
        totals: Totals::default(),
        guard: Guard::default(),
        org_units: remote::org_units(store).collect::<Result<_, _>>()?,
        held_back: Vec::new(),
        limit: config.sync.max_suspensions as usize,
        on_line,
    };
    plan_each(store, config, today, !writes, |items| {
        let mut changes = store.changes(!writes);
        for item in items {
            match item {
                Item::Account(planned) => round.account(&mut changes, *planned)?,
                Item::Orphan { key, user } => round.orphan(&mut changes, &key, &user)?,
            }
        }
        changes.commit()
    })?;
    round.finish(config)
}

/// What a round keeps while it plans.
struct Round<'s, F> {
    store: &'s Store,
    today: Date,
    /// Not a dry run: the records are made and written.
    writes: bool,
    suspensions: Suspensions,
    now: Timestamp,
    totals: Totals,
    guard: Guard,
    /// Org units known to exist or already queued.
    org_units: BTreeSet<String>,
    /// Suspensions kept until the guard has seen the whole plan; beyond the limit they
    /// are only counted (the guard then holds them all).
    held_back: Vec<(String, Action)>,
    limit: usize,
    on_line: F,
}

impl<F: FnMut(PlanLine)> Round<'_, F> {
    /// A managed Google user whose account is not in the directory: a conflict.
    fn orphan(
        &mut self,
        changes: &mut Changes,
        key: &AccountKey,
        user: &User,
    ) -> Result<(), StoreError> {
        self.totals.orphans += 1;
        let subject = key.to_string();
        let reason = planner::orphan(user, key);
        (self.on_line)(PlanLine::new(&subject, "conflict", "", &[], &reason));
        if self.writes && audit::held(changes, HeldList::Conflicts, &subject)?.is_none() {
            audit::hold(changes, HeldList::Conflicts, &subject, self.now, &reason);
            audit::log(changes, &subject, self.now, "conflict", reason)?;
        }
        Ok(())
    }

    /// One account: counted, shown, and what its decision calls for written.
    fn account(&mut self, changes: &mut Changes, planned: Planned) -> Result<(), StoreError> {
        self.totals.accounts += 1;
        let Planned {
            account,
            decision,
            managed,
            waiting,
            quarantined,
            conflicted,
            notices,
        } = planned;
        let subject = account.key().to_string();
        let due = decision
            .suspend_on
            .map(|day| audit::Notices::new(&account.email, day));
        if self.writes && due != notices {
            audit::set_notices(changes, &subject, due.as_ref());
        }
        if let Some(due) = &due
            && let Some(days) = crate::notices::unqueued_due(self.store, &subject, due, self.today)?
        {
            *self.totals.notices_due.entry(days).or_default() += 1;
        }
        if managed {
            self.guard.managed(&account.email);
        }
        if quarantined.is_some() {
            self.totals.quarantined += 1;
            return Ok(());
        }
        if let Some(link) = &decision.link
            && !matches!(decision.outcome, Outcome::Conflict(_))
        {
            self.totals.relinked += 1;
            if self.writes {
                let mut relinked = account.clone();
                relinked.google = Some(link.clone());
                changes.put_account(Some(&account), &relinked)?;
                let line = format!("linked to Google user {}", link.id);
                audit::log(changes, &subject, self.now, "relinked", line)?;
            }
        }
        let release_conflict = |changes: &mut Changes| {
            if self.writes && conflicted.is_some() {
                audit::release(changes, HeldList::Conflicts, &subject);
            }
        };
        match decision.outcome {
            Outcome::InStep => {
                self.totals.in_step += 1;
                release_conflict(changes);
            }
            Outcome::Conflict(reason) => {
                self.totals.conflicts += 1;
                let line = PlanLine::new(&subject, "conflict", &account.email, &[], &reason);
                (self.on_line)(line);
                if self.writes && conflicted.as_deref() != Some(reason.as_str()) {
                    audit::hold(changes, HeldList::Conflicts, &subject, self.now, &reason);
                    audit::log(changes, &subject, self.now, "conflict", reason)?;
                }
            }
            Outcome::Act(action) => {
                release_conflict(changes);
                if waiting {
                    self.totals.waiting += 1;
                    return Ok(());
                }
                self.act(changes, subject, &account.email, *action)?;
            }
        }
        Ok(())
    }

    /// An action for `subject`: the org units it needs first, then the action itself (a
    /// suspension waits for the guard's verdict).
    fn act(
        &mut self,
        changes: &mut Changes,
        subject: String,
        email: &str,
        action: Action,
    ) -> Result<(), StoreError> {
        let line = PlanLine::new(
            &subject,
            action.kind.as_str(),
            email,
            &action.fields,
            &action.reason,
        );
        (self.on_line)(line);
        if let Some(path) = &action.body.org_unit_path {
            for missing in missing_org_units(path, &self.org_units) {
                (self.on_line)(PlanLine::new(
                    &missing,
                    "create_org_unit",
                    "",
                    &[],
                    "needed by the accounts placed in it",
                ));
                if self.writes {
                    let create = org_unit_action(&missing);
                    journal::enqueue(changes, Lane::OrgUnit, &missing, create, self.now)?;
                }
                self.org_units.insert(missing);
                self.totals.org_units += 1;
            }
        }
        if action.kind == ActionKind::Suspend {
            self.guard.suspension(email);
            if self.suspensions == Suspensions::Guarded {
                if self.held_back.len() <= self.limit {
                    self.held_back.push((subject, action));
                }
                return Ok(());
            }
        }
        self.totals.count(action.kind);
        if self.writes {
            queue(changes, Lane::Bulk, &subject, action, self.now)?;
        }
        Ok(())
    }

    /// The guard's verdict on the suspensions held back: queued, or all held.
    fn finish(mut self, config: &Config) -> Result<(Totals, Option<GuardHeld>), StoreError> {
        let mut changes = self.store.changes(!self.writes);
        let verdict = self.guard.verdict(
            config.sync.max_suspensions,
            config.sync.max_suspension_share,
        );
        let held = match verdict {
            Some(reason) if self.suspensions == Suspensions::Guarded => {
                let suspensions = self.guard.total();
                self.totals.suspensions_held = suspensions;
                if self.writes {
                    tracing::warn!(suspensions, %reason, "mass-suspension guard held");
                }
                Some(GuardHeld {
                    at: self.now,
                    suspensions,
                    reason,
                })
            }
            _ => {
                for (subject, action) in std::mem::take(&mut self.held_back) {
                    self.totals.count(action.kind);
                    if self.writes {
                        queue(&mut changes, Lane::Bulk, &subject, action, self.now)?;
                    }
                }
                None
            }
        };
        if self.writes {
            audit::set_guard(&mut changes, held.as_ref());
            changes.commit()?;
        }
        Ok((self.totals, held))
    }
}
