//! Who may do what in the console: decided from the signed-in address, the configuration
//! and the directory, for every request (an operator who leaves the school, or an agent
//! taken off the list, loses the rights at once). Pure: the tests say the rules.

use super::Web;
use crate::directory::model::{Account, DesiredState, Role as DirectoryRole};

/// What a signed-in person is to the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A ministry administrator: the helpdesk's rights, and suspend or reinstate.
    Admin,
    /// A helpdesk agent: finds any account, repairs, resets after the birth-date check,
    /// releases quarantines.
    Helpdesk,
    /// A school operator or principal (an active account): their own school only.
    Operator { npsn: String },
    /// Students, teachers, everyone else: the console is not for them.
    Other,
}

/// The role of `email`, whose account in the directory is `account` (if any).
pub fn role_of(web: &Web, email: &str, account: Option<&Account>) -> Role {
    if Web::listed(&web.admins, email) {
        return Role::Admin;
    }
    if Web::listed(&web.helpdesk, email) {
        return Role::Helpdesk;
    }
    match account {
        Some(a)
            if a.state == DesiredState::Active
                && matches!(
                    a.role,
                    DirectoryRole::Operator | DirectoryRole::KepalaSekolah
                ) =>
        {
            Role::Operator {
                npsn: a.npsn.clone(),
            }
        }
        _ => Role::Other,
    }
}

impl Role {
    /// The helpdesk's rights (admins have them too).
    pub fn is_helpdesk(&self) -> bool {
        matches!(self, Role::Admin | Role::Helpdesk)
    }

    /// The school's pages (figures, accounts, retiring ones).
    pub fn may_see_school(&self, npsn: &str) -> bool {
        match self {
            Role::Operator { npsn: own } => own == npsn,
            Role::Admin | Role::Helpdesk => true,
            Role::Other => false,
        }
    }

    /// A sheet of first passwords: the school's operator only (the helpdesk resets one
    /// person at a time, after checking who they are).
    pub fn may_take_sheet(&self, npsn: &str) -> bool {
        matches!(self, Role::Operator { npsn: own } if own == npsn)
    }

    /// One account's page, reset and repair.
    pub fn may_act_on(&self, account: &Account) -> bool {
        self.may_see_school(&account.npsn)
    }

    /// Suspend and reinstate for a terms violation.
    pub fn may_suspend(&self) -> bool {
        matches!(self, Role::Admin)
    }

    /// A reset without the birth-date check: the school's operator knows their people.
    pub fn vouches_for(&self, account: &Account) -> bool {
        matches!(self, Role::Operator { npsn } if *npsn == account.npsn)
    }

    /// In words, for the page's header and the log.
    pub fn words(&self) -> &'static str {
        match self {
            Role::Admin => "admin kementerian",
            Role::Helpdesk => "helpdesk",
            Role::Operator { .. } => "operator sekolah",
            Role::Other => "pengguna",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Web {
        Web {
            helpdesk: vec!["Agent@belajar.id".into()],
            admins: vec!["boss@belajar.id".into()],
            ..Web::default()
        }
    }

    fn account(role: DirectoryRole, npsn: &str, state: DesiredState) -> Account {
        let mut a = Account::student("0012345678", "Siti", "siti@admin.sd.belajar.id");
        a.role = role;
        a.npsn = npsn.into();
        a.state = state;
        a
    }

    #[test]
    fn roles_come_from_the_lists_then_the_directory() {
        let web = web();
        assert_eq!(role_of(&web, "agent@BELAJAR.id", None), Role::Helpdesk);
        assert_eq!(role_of(&web, "boss@belajar.id", None), Role::Admin);
        let op = account(DirectoryRole::Operator, "20100001", DesiredState::Active);
        assert_eq!(
            role_of(&web, &op.email, Some(&op)),
            Role::Operator {
                npsn: "20100001".into()
            }
        );
        let head = account(
            DirectoryRole::KepalaSekolah,
            "20100001",
            DesiredState::Active,
        );
        assert!(matches!(
            role_of(&web, "x", Some(&head)),
            Role::Operator { .. }
        ));
        let pupil = account(
            DirectoryRole::PesertaDidik,
            "20100001",
            DesiredState::Active,
        );
        assert_eq!(role_of(&web, "x", Some(&pupil)), Role::Other);
        let since = jiff::civil::date(2026, 7, 1);
        let leaving = account(
            DirectoryRole::Operator,
            "20100001",
            DesiredState::Retiring { since },
        );
        assert_eq!(role_of(&web, "x", Some(&leaving)), Role::Other);
        assert_eq!(role_of(&web, "nobody@belajar.id", None), Role::Other);
    }

    #[test]
    fn an_operator_acts_on_their_own_school_only() {
        let op = Role::Operator {
            npsn: "20100001".into(),
        };
        let mine = account(
            DirectoryRole::PesertaDidik,
            "20100001",
            DesiredState::Active,
        );
        let theirs = account(
            DirectoryRole::PesertaDidik,
            "20100002",
            DesiredState::Active,
        );
        assert!(op.may_see_school("20100001") && !op.may_see_school("20100002"));
        assert!(op.may_take_sheet("20100001") && !op.may_take_sheet("20100002"));
        assert!(op.may_act_on(&mine) && !op.may_act_on(&theirs));
        assert!(op.vouches_for(&mine) && !op.vouches_for(&theirs));
        assert!(!op.may_suspend() && !op.is_helpdesk());
        // The helpdesk sees everyone but takes no sheets and vouches for nobody.
        assert!(Role::Helpdesk.may_act_on(&theirs) && !Role::Helpdesk.may_take_sheet("20100002"));
        assert!(!Role::Helpdesk.vouches_for(&theirs) && !Role::Helpdesk.may_suspend());
        assert!(Role::Admin.may_suspend());
        assert!(!Role::Other.may_see_school("20100001") && !Role::Other.may_act_on(&mine));
    }
}
