//! The emulator's Directory API over real HTTP on loopback: Google's behaviours, every
//! fault knob, and the contract with the official discovery document.

mod support;

use belajar_sync::emulator::faults::Faults;
use belajar_sync::emulator::{Options, ROUTES};
use serde_json::{Value, json};
use std::time::Duration;
use support::google::{Api, start, start_with};

#[tokio::test]
async fn rename_keeps_the_old_address_as_an_alias_and_get_resolves_it() {
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    let user = api
        .create("dewi.lestari@guru.sd.belajar.id", "Dewi", "Lestari")
        .await;
    let (status, renamed) = api
        .ok(
            "PUT",
            "users/dewi.lestari@guru.sd.belajar.id",
            Some(json!({"primaryEmail": "dewi.lestari@admin.sd.belajar.id"})),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(
        renamed["aliases"],
        json!(["dewi.lestari@guru.sd.belajar.id"])
    );
    let (status, by_alias) = api
        .ok("GET", "users/dewi.lestari@guru.sd.belajar.id", None)
        .await;
    assert_eq!((status, by_alias["id"].clone()), (200, user["id"].clone()));
    // The alias is taken: nobody else can have it.
    let (status, body) = api
        .ok(
            "POST",
            "users",
            Some(
                json!({"primaryEmail": "dewi.lestari@guru.sd.belajar.id", "password": "x",
                                          "name": {"givenName": "D", "familyName": "L"}}),
            ),
        )
        .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].clone()),
        (409, json!("duplicate"))
    );
    assert_eq!(body["error"]["message"], "Entity already exists.");
}

#[tokio::test]
async fn patch_suspends_with_reason_admin_and_delete_undelete_round_trips() {
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    let user = api.create("ani@sd.belajar.id", "Ani", "Lestari").await;
    let id = user["id"].as_str().unwrap();
    let (_, suspended) = api
        .ok(
            "PATCH",
            "users/ani@sd.belajar.id",
            Some(json!({"suspended": true})),
        )
        .await;
    assert_eq!(suspended["suspensionReason"], "ADMIN");
    assert_ne!(suspended["etag"], user["etag"]);
    let (status, body) = api.ok("DELETE", "users/ani@sd.belajar.id", None).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(api.ok("GET", "users/ani@sd.belajar.id", None).await.0, 404);
    let (status, _) = api
        .ok(
            "POST",
            &format!("users/{id}/undelete"),
            Some(json!({"orgUnitPath": "/"})),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        api.ok("GET", "users/ani@sd.belajar.id", None).await.1["id"],
        user["id"]
    );
}

#[tokio::test]
async fn list_needs_a_customer_or_domain_and_pages_with_fields() {
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    for i in 0..7 {
        api.create(
            &format!("murid{i}@sd.belajar.id"),
            "Murid",
            &format!("Ke{i}"),
        )
        .await;
    }
    let (status, body) = api.ok("GET", "users", None).await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].clone()),
        (400, json!("badRequest"))
    );
    assert_eq!(api.ok("GET", "users?domain=gmail.com", None).await.0, 403);
    assert_eq!(
        api.ok("GET", "users?customer=my_customer&maxResults=501", None)
            .await
            .0,
        400
    );

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path = format!(
            "users?domain=sd.belajar.id&maxResults=3&fields=nextPageToken,users(id,primaryEmail)&pageToken={token}"
        );
        let (status, page) = api.ok("GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for user in page["users"].as_array().unwrap() {
            assert_eq!(
                user.as_object().unwrap().len(),
                2,
                "only the selected fields: {user}"
            );
            seen.push(user["primaryEmail"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(next) => token = next.to_owned(),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..7)
            .map(|i| format!("murid{i}@sd.belajar.id"))
            .collect::<Vec<_>>()
    );
    let (_, found) = api
        .ok(
            "GET",
            "users?customer=my_customer&query=email:murid3*",
            None,
        )
        .await;
    assert_eq!(found["users"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn org_units_nest_and_users_must_name_an_existing_one() {
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    for (name, parent) in [
        ("student", "/"),
        ("sd", "/student"),
        ("20100001", "/student/sd"),
    ] {
        let (status, unit) = api
            .ok(
                "POST",
                "customer/my_customer/orgunits",
                Some(json!({"name": name, "parentOrgUnitPath": parent})),
            )
            .await;
        assert_eq!(status, 200, "{unit}");
    }
    let (status, unit) = api
        .ok(
            "GET",
            "customer/my_customer/orgunits/student/sd/20100001",
            None,
        )
        .await;
    assert_eq!(
        (status, unit["orgUnitPath"].clone()),
        (200, json!("/student/sd/20100001"))
    );
    let (status, body) = api
        .ok("POST", "users", Some(json!({"primaryEmail": "x@sd.belajar.id", "password": "x", "orgUnitPath": "/student/smp",
                                          "name": {"givenName": "X", "familyName": "Y"}})))
        .await;
    assert_eq!(
        (status, body["error"]["message"].clone()),
        (400, json!("Invalid Input: INVALID_OU_ID"))
    );
}

#[tokio::test]
async fn error_rate_answers_503_and_applies_nothing() {
    let emu = start_with(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let (status, body) = api
        .ok("POST", "users", Some(json!({"primaryEmail": "a@sd.belajar.id", "password": "x", "name": {"givenName": "A", "familyName": "B"}})))
        .await;
    assert_eq!(
        (status, body["error"]["errors"][0]["reason"].clone()),
        (503, json!("backendError"))
    );
    assert_eq!(emu.user_count(), 1, "only the admin");
    assert_eq!(emu.counters().count("directory.users.insert", 503), 1);
    emu.set_faults(Faults::default()).unwrap();
    api.create("a@sd.belajar.id", "A", "B").await;
}

#[tokio::test]
async fn quota_per_subject_answers_user_rate_limit_exceeded() {
    let emu = start_with(Faults {
        quota_per_minute: Some(3),
        ..Faults::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(api.ok("GET", "users/admin@belajar.id", None).await);
    }
    assert_eq!(
        statuses.iter().map(|s| s.0).collect::<Vec<_>>(),
        [200, 200, 200, 403, 403]
    );
    assert_eq!(
        statuses[3].1["error"]["errors"][0]["reason"],
        "userRateLimitExceeded"
    );
    assert_eq!(statuses[3].1["error"]["errors"][0]["domain"], "usageLimits");
}

#[tokio::test]
async fn a_lost_response_applies_the_write_and_closes_the_connection() {
    let emu = start_with(Faults {
        lost_response_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let answer = api
        .call("POST", "users", Some(json!({"primaryEmail": "lost@sd.belajar.id", "password": "x", "name": {"givenName": "L", "familyName": "R"}})))
        .await;
    assert!(answer.is_err(), "no answer: {answer:?}");
    assert_eq!(emu.counters().count("directory.users.insert", 0), 1);
    let (status, user) = api.ok("GET", "users/lost@sd.belajar.id", None).await;
    assert_eq!(
        (status, user["primaryEmail"].clone()),
        (200, json!("lost@sd.belajar.id")),
        "the write was applied"
    );
}

#[tokio::test(start_paused = true)]
async fn latency_delays_every_call() {
    let emu = start_with(Faults {
        latency_ms: 5_000,
        ..Faults::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let before = tokio::time::Instant::now();
    assert_eq!(api.ok("GET", "users/admin@belajar.id", None).await.0, 200);
    assert!(before.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn concurrency_over_the_limit_answers_quota_exceeded() {
    let faults = Faults {
        max_concurrent: Some(1),
        latency_ms: 10_000,
        ..Faults::default()
    };
    let emu = start(Options {
        faults,
        ..Options::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let get = || api.ok("GET", "users/admin@belajar.id", None);
    let (a, b, c) = tokio::join!(get(), get(), get());
    let statuses = [a.0, b.0, c.0];
    assert!(statuses.contains(&403), "{statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(
        emu.counters().count("directory.users.get", 403),
        statuses.iter().filter(|s| **s == 403).count() as u64
    );
}

#[tokio::test(start_paused = true)]
async fn propagation_delay_hides_new_users_and_refuses_early_writes() {
    let emu = start_with(Faults {
        propagation_delay_ms: 60_000,
        ..Faults::default()
    })
    .await;
    let api = Api::admin(&emu).await;
    let user = api.create("baru@sd.belajar.id", "Baru", "Saja").await;
    let id = user["id"].as_str().unwrap();
    let (_, page) = api.ok("GET", "users?domain=sd.belajar.id", None).await;
    assert!(page.get("users").is_none(), "not listed yet: {page}");
    assert_eq!(api.ok("GET", &format!("users/{id}"), None).await.0, 404);
    let (status, body) = api
        .ok(
            "PATCH",
            "users/baru@sd.belajar.id",
            Some(json!({"suspended": true})),
        )
        .await;
    assert_eq!(status, 412);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("User creation is not complete")
    );
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(api.ok("GET", &format!("users/{id}"), None).await.0, 200);
    let (_, page) = api.ok("GET", "users?domain=sd.belajar.id", None).await;
    assert_eq!(page["users"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn faults_change_at_run_time_through_the_control_route() {
    let emu = start(Options::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/emulator/faults", emu.base_url);
    let set = client
        .put(&url)
        .json(&json!({"error_rate": 0.25, "seed_is_not_a_knob": 1}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_client_error(), "unknown knobs are refused");
    let set = client
        .put(&url)
        .json(&json!({"error_rate": 0.25, "latency_ms": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(
        emu.faults(),
        Faults {
            error_rate: 0.25,
            latency_ms: 3,
            ..Faults::default()
        }
    );
    let counters: Value = client
        .get(format!("{}/emulator/counters", emu.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counters["calls"].is_object());
}

// --- contract with the discovery document ---

fn discovery() -> Value {
    serde_json::from_str(include_str!("fixtures/admin.directory_v1.json")).unwrap()
}

/// `{user_key}` and `{userKey}`, `{*path}` and `{+orgUnitPath}` are the same placeholder.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.trim_start_matches('/').chars() {
        match c {
            '{' => {
                inside = true;
                out.push('{');
            }
            '}' => {
                inside = false;
                out.push('}');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn every_route_is_a_method_of_the_discovery_document_with_its_verb_and_path() {
    let doc = discovery();
    for (verb, path, id) in ROUTES {
        let parts: Vec<&str> = id.split('.').collect();
        let method = &doc["resources"][parts[1]]["methods"][parts[2]];
        assert_eq!(method["id"], *id, "{id} is in the document");
        assert_eq!(method["httpMethod"], *verb, "{id}");
        assert_eq!(shape(method["path"].as_str().unwrap()), shape(path), "{id}");
    }
}

/// Fails when `value` has a field that `schema` (by name) does not define, looking into
/// nested objects and arrays of schemas.
fn check_fields(value: &Value, schema: &str, doc: &Value, at: &str) {
    let properties = &doc["schemas"][schema]["properties"];
    for (field, inner) in value.as_object().unwrap() {
        let property = &properties[field];
        assert!(
            !property.is_null(),
            "{at}.{field} is not in schema {schema}"
        );
        let target = property["$ref"]
            .as_str()
            .or_else(|| property["items"]["$ref"].as_str());
        if let Some(target) = target {
            match inner {
                Value::Array(items) => items
                    .iter()
                    .for_each(|i| check_fields(i, target, doc, &format!("{at}.{field}[]"))),
                Value::Object(_) => check_fields(inner, target, doc, &format!("{at}.{field}")),
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn answers_carry_only_fields_the_schemas_define() {
    let doc = discovery();
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    api.ok(
        "POST",
        "customer/my_customer/orgunits",
        Some(json!({"name": "student", "parentOrgUnitPath": "/"})),
    )
    .await;
    let user = api.create("siti@sd.belajar.id", "Siti", "Aminah").await;
    check_fields(&user, "User", &doc, "insert");
    let (_, renamed) = api
        .ok(
            "PUT",
            "users/siti@sd.belajar.id",
            Some(json!({"primaryEmail": "siti@admin.sd.belajar.id", "suspended": true})),
        )
        .await;
    check_fields(&renamed, "User", &doc, "update");
    check_fields(
        &api.ok("GET", "users?customer=my_customer", None).await.1,
        "Users",
        &doc,
        "list",
    );
    check_fields(
        &api.ok("GET", "customer/my_customer/orgunits/student", None)
            .await
            .1,
        "OrgUnit",
        &doc,
        "orgunits.get",
    );
    check_fields(
        &api.ok("GET", "customer/my_customer/orgunits?type=all", None)
            .await
            .1,
        "OrgUnits",
        &doc,
        "orgunits.list",
    );
}

#[tokio::test]
async fn booleans_are_read_as_google_reads_them_and_unknown_paths_answer_googles_404() {
    let emu = start(Options::default()).await;
    let api = Api::admin(&emu).await;
    api.create("gone@sd.belajar.id", "Gone", "Away").await;
    assert_eq!(
        api.ok("DELETE", "users/gone@sd.belajar.id", None).await.0,
        204
    );
    for spelling in ["true", "True", "TRUE"] {
        let (status, page) = api
            .ok(
                "GET",
                &format!("users?domain=sd.belajar.id&showDeleted={spelling}"),
                None,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            page["users"][0]["primaryEmail"], "gone@sd.belajar.id",
            "showDeleted={spelling}: {page}"
        );
    }
    let (status, body) = api.ok("GET", "userz", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], 404, "Google's error body: {body}");
    assert_eq!(body["error"]["errors"][0]["reason"], "notFound");
}
