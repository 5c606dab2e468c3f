//! The Directory API client against the emulator over loopback: the same code production
//! runs, nothing mocked below it. Time is tokio's paused clock, so backoff waits cost
//! nothing and nothing depends on this machine's speed.

mod support;

use belajar_sync::config;
use belajar_sync::emulator::faults::Faults;
use belajar_sync::emulator::{Emulator, Options};
use belajar_sync::google::DirectoryClient;
use belajar_sync::google::errors::CallError;
use belajar_sync::google::types::User;
use support::google::{Api, start, start_with};

fn settings(emu: &Emulator, subject: &str) -> config::Google {
    config::Google {
        key_file: emu.key_file.clone(),
        subject: subject.into(),
        api_base: emu.base_url.clone(),
        requests_per_minute: Some(60_000),
        ..config::Google::default()
    }
}

async fn client(emu: &Emulator) -> DirectoryClient {
    DirectoryClient::new(&settings(emu, "admin@belajar.id"))
        .await
        .expect("client")
}

fn user(email: &str) -> User {
    support::google::new_user(email)
}

#[tokio::test(start_paused = true)]
async fn every_call_succeeds_through_thirty_percent_503s() {
    let emu = start(Options {
        faults: Faults {
            error_rate: 0.3,
            ..Faults::default()
        },
        seed: 11,
        ..Options::default()
    })
    .await;
    let client = client(&emu).await;
    let mut retried = 0;
    for i in 0..40 {
        let email = format!("murid{i}@sd.belajar.id");
        let inserted = client
            .insert_user(&user(&email))
            .await
            .expect("insert succeeds");
        let got = client.get_user(&email).await.expect("get succeeds");
        assert_eq!(got.value.id, inserted.value.id);
        retried += u32::from(inserted.attempts > 1) + u32::from(got.attempts > 1);
    }
    let counters = emu.counters();
    let errors =
        counters.count("directory.users.insert", 503) + counters.count("directory.users.get", 503);
    assert!(
        errors > 0 && retried > 0,
        "faults were injected and retried: {errors}, {retried}"
    );
    assert_eq!(
        emu.user_count(),
        41,
        "each user created once (and the admin)"
    );
}

#[tokio::test(start_paused = true)]
async fn rate_limit_answers_slow_the_client_down() {
    let emu = start(Options {
        faults: Faults {
            quota_per_minute: Some(20),
            ..Faults::default()
        },
        ..Options::default()
    })
    .await;
    let client = client(&emu).await;
    for _ in 0..50 {
        client
            .get_user("admin@belajar.id")
            .await
            .expect("succeeds once the quota allows");
    }
    assert!(
        emu.counters().count("directory.users.get", 403) > 0,
        "the quota was hit"
    );
    assert!(
        client.limiter().rate_per_minute() < 60_000.0,
        "the limiter slowed down: {}",
        client.limiter().rate_per_minute()
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_response_on_insert_is_uncertain_and_not_repeated() {
    let emu = start_with(Faults {
        lost_response_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let client = client(&emu).await;
    let failure = client
        .insert_user(&user("hilang@sd.belajar.id"))
        .await
        .expect_err("no answer");
    assert!(failure.is_uncertain(), "{failure}");
    assert_eq!(
        failure.attempts, 1,
        "a write without an answer is not sent again blindly"
    );
    assert!(
        failure
            .to_string()
            .contains("may or may not have been applied"),
        "{failure}"
    );
    emu.set_faults(Faults::default()).unwrap();
    let found = client
        .get_user("hilang@sd.belajar.id")
        .await
        .expect("the insert was applied");
    assert_eq!(
        found.value.primary_email.as_deref(),
        Some("hilang@sd.belajar.id")
    );
}

#[tokio::test(start_paused = true)]
async fn an_expired_token_is_refreshed_once() {
    let emu = start(Options::default()).await;
    let client = client(&emu).await;
    client.get_user("admin@belajar.id").await.unwrap();
    emu.revoke_tokens();
    let got = client
        .get_user("admin@belajar.id")
        .await
        .expect("refreshed and repeated");
    assert_eq!(got.attempts, 2);
    assert!(matches!(
        got.last_error,
        Some(CallError::Api { status: 401, .. })
    ));
    assert_eq!(emu.live_tokens(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_non_admin_subject_fails_for_good_with_a_clear_message() {
    let emu = start(Options::default()).await;
    Api::admin(&emu)
        .await
        .create("guru@guru.sd.belajar.id", "Budi", "Santoso")
        .await;
    let client = DirectoryClient::new(&settings(&emu, "guru@guru.sd.belajar.id"))
        .await
        .unwrap();
    let failure = client
        .get_user("admin@belajar.id")
        .await
        .expect_err("forbidden");
    assert_eq!((failure.status(), failure.attempts), (Some(403), 1));
    assert!(
        failure
            .to_string()
            .contains("Not Authorized to access this resource/api"),
        "{failure}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_subject_without_delegation_fails_with_the_token_error() {
    let emu = start(Options::default()).await;
    let client = DirectoryClient::new(&settings(&emu, "stranger@gmail.com"))
        .await
        .unwrap();
    let failure = client
        .get_user("admin@belajar.id")
        .await
        .expect_err("no token");
    assert!(matches!(failure.error, CallError::Token(_)), "{failure}");
    assert!(
        failure.to_string().contains("unauthorized_client"),
        "{failure}"
    );
    assert!(
        !failure.to_string().contains("ya29."),
        "no token in messages"
    );
}

#[tokio::test(start_paused = true)]
async fn users_are_listed_page_by_page_with_only_the_fields_asked() {
    let emu = start(Options::default()).await;
    let client = client(&emu).await;
    for i in 0..1_050 {
        client
            .insert_user(&user(&format!("m{i:04}@smp.belajar.id")))
            .await
            .unwrap();
    }
    let mut pages = client.list_users("smp.belajar.id");
    let mut sizes = Vec::new();
    let mut emails = std::collections::BTreeSet::new();
    while let Some(users) = pages.next_page().await.unwrap() {
        sizes.push(users.len());
        for u in users {
            assert!(u.id.is_some() && u.creation_time.is_some());
            emails.insert(u.primary_email.unwrap());
        }
    }
    assert_eq!(sizes, [500, 500, 50]);
    assert_eq!(emails.len(), 1_050);
}

#[tokio::test(start_paused = true)]
async fn org_units_are_read_and_created() {
    let emu = start(Options::default()).await;
    let client = client(&emu).await;
    assert_eq!(
        client
            .get_org_unit("/")
            .await
            .unwrap()
            .value
            .org_unit_path
            .as_deref(),
        Some("/")
    );
    client.insert_org_unit("student", "/").await.unwrap();
    let sd = client
        .insert_org_unit("sd", "/student")
        .await
        .unwrap()
        .value;
    assert_eq!(sd.org_unit_path.as_deref(), Some("/student/sd"));
    assert_eq!(client.get_org_unit("/student/sd").await.unwrap().value, sd);
    assert_eq!(
        client
            .get_org_unit("/student/smp")
            .await
            .unwrap_err()
            .status(),
        Some(404)
    );
}

#[tokio::test]
async fn a_readable_key_or_a_remote_plain_http_base_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let emu = start(Options::default()).await;
    std::fs::set_permissions(&emu.key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = DirectoryClient::new(&settings(&emu, "admin@belajar.id"))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("readable by others"), "{err}");
    std::fs::set_permissions(&emu.key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let remote = config::Google {
        api_base: "http://admin.googleapis.com".into(),
        ..settings(&emu, "admin@belajar.id")
    };
    let err = DirectoryClient::new(&remote).await.err().expect("refused");
    assert!(err.to_string().contains("use https"), "{err}");
}
