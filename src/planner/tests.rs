//! Table-driven tests over recorded fixtures (`tests/fixtures/planner.json`): a local
//! record and the Google users seen for it, and what the planner must decide.

use super::*;
use serde_json::Value;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    account: Account,
    seen: Seen,
    asker: Asker,
    /// The licence rules, when the case manages licences.
    #[serde(default)]
    licences: Option<crate::config::Licences>,
    expect: Value,
}

fn context<'a>(
    asker: Asker,
    sync: &'a Sync,
    licences: Option<&'a crate::config::Licences>,
) -> Context<'a> {
    Context {
        today: jiff::civil::date(2026, 11, 29),
        grace_days: 30,
        sync,
        asker,
        licences,
    }
}

#[test]
fn every_recorded_case_is_decided_as_expected() {
    let fixture: Fixture =
        serde_json::from_str(include_str!("../../tests/fixtures/planner.json")).unwrap();
    assert!(fixture.cases.len() >= 25);
    let sync = Sync::default();
    for case in fixture.cases {
        let ctx = context(case.asker, &sync, case.licences.as_ref());
        let decision = plan(&case.account, &case.seen, &ctx);
        let expect = &case.expect;
        let name = &case.name;
        let (outcome, reason, fields, body) = match &decision.outcome {
            Outcome::InStep => ("in_step", String::new(), vec![], Value::Null),
            Outcome::Conflict(reason) => ("conflict", reason.clone(), vec![], Value::Null),
            Outcome::Act(action) => (
                action.kind.as_str(),
                action.reason.clone(),
                action.fields.clone(),
                serde_json::to_value(&action.body).unwrap(),
            ),
        };
        assert_eq!(outcome, expect["outcome"], "{name}: {decision:?}");
        if let Some(wanted) = expect["reason"].as_str() {
            assert!(reason.contains(wanted), "{name}: reason {reason:?}");
        }
        if let Some(wanted) = expect["fields"].as_array() {
            let mut got = fields.clone();
            got.sort();
            let mut wanted: Vec<&str> = wanted.iter().map(|f| f.as_str().unwrap()).collect();
            wanted.sort();
            assert_eq!(got, wanted, "{name}");
        }
        if let Some(wanted) = expect["body"].as_object() {
            for (field, value) in wanted {
                assert_eq!(&body[field], value, "{name}: body.{field}");
            }
        }
        if let Some(link) = expect.get("link") {
            assert_eq!(
                decision.link.as_ref().map(|l| l.id.as_str()),
                link.as_str(),
                "{name}: link"
            );
        }
        if let Some(wanted) = expect["problem"].as_str() {
            assert!(
                decision.problems.iter().any(|p| p.contains(wanted)),
                "{name}: problems {:?}",
                decision.problems
            );
        }
        if outcome == "in_step" && expect.get("link").is_none() {
            assert!(
                decision.problems.is_empty(),
                "{name}: {:?}",
                decision.problems
            );
        }
        if let Some(day) = expect["suspend_on"].as_str() {
            assert_eq!(decision.suspend_on.unwrap().to_string(), day, "{name}");
        }
    }
}

#[test]
fn a_create_never_carries_a_password_and_always_the_marker() {
    let account: Account = serde_json::from_value(serde_json::json!({
        "jenjang": "smp", "id_type": "nisn", "id": "0012345678", "full_name": "Ani",
        "role": "peserta_didik", "npsn": "20200002", "state": "active",
        "email": "ani@smp.belajar.id"
    }))
    .unwrap();
    let sync = Sync::default();
    let decision = plan(
        &account,
        &Seen::default(),
        &context(Asker::Schedule, &sync, None),
    );
    let Outcome::Act(action) = decision.outcome else {
        panic!("expected a create")
    };
    assert_eq!(action.body.password, None);
    assert_eq!(marked_key(&action.body), Some(account.key()));
    assert_eq!(
        action.body.org_unit_path.as_deref(),
        Some("/student/smp/20200002")
    );
}
