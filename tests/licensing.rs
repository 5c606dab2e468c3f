//! Licensing v1 of the emulator, through the daemon's own client over loopback: pools that
//! run out, a licence taken back that waits before it can be given again, archiving that
//! needs an Archived User licence and frees Fundamentals, auto-licensing, and a token
//! without the licensing scope refused.

mod support;

use belajar_sync::config;
use belajar_sync::emulator::licences::{ARCHIVED, FUNDAMENTALS};
use belajar_sync::emulator::{Emulator, Options};
use belajar_sync::google::DirectoryClient;
use belajar_sync::google::errors::CallError;
use belajar_sync::google::types::User;
use std::collections::BTreeMap;
use std::time::Duration;
use support::google::{SCOPES, start, token_for};

fn pools(fundamentals: u32, archived: u32) -> BTreeMap<String, u32> {
    BTreeMap::from([
        (FUNDAMENTALS.to_owned(), fundamentals),
        (ARCHIVED.to_owned(), archived),
    ])
}

async fn licensed_client(emu: &Emulator) -> DirectoryClient {
    let google = config::Google {
        key_file: emu.key_file.clone(),
        subject: "admin@belajar.id".into(),
        api_base: emu.base_url.clone(),
        requests_per_minute: Some(60_000),
        call_deadline: jiff::SignedDuration::from_secs(20),
        ..config::Google::default()
    };
    let licences = config::Licences {
        enabled: true,
        api_base: emu.base_url.clone(),
        ..config::Licences::default()
    };
    DirectoryClient::new(&google)
        .await
        .unwrap()
        .with_licences(&licences)
        .unwrap()
}

async fn create(client: &DirectoryClient, email: &str) {
    client
        .insert_user(&support::google::new_user(email))
        .await
        .unwrap();
}

fn api_error(error: &CallError) -> (u16, String) {
    match error {
        CallError::Api {
            status, message, ..
        } => (*status, message.clone()),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_pool_runs_out_and_a_licence_taken_back_waits_before_reuse() {
    let emu = start(Options {
        licences: pools(2, 0),
        ..Options::default()
    })
    .await;
    let client = licensed_client(&emu).await;
    for i in 0..3 {
        create(&client, &format!("murid{i}@sd.belajar.id")).await;
    }
    let given = client
        .assign_licence(FUNDAMENTALS, "murid0@sd.belajar.id")
        .await
        .unwrap();
    assert_eq!(given.value.sku_id, FUNDAMENTALS);
    assert_eq!(given.value.user_id, "murid0@sd.belajar.id");
    client
        .assign_licence(FUNDAMENTALS, "murid1@sd.belajar.id")
        .await
        .unwrap();
    let empty = client
        .assign_licence(FUNDAMENTALS, "murid2@sd.belajar.id")
        .await
        .unwrap_err();
    let (status, message) = api_error(&empty.error);
    assert_eq!(status, 412);
    assert!(message.contains("enough available licenses"), "{message}");
    assert_eq!(empty.attempts, 1, "an empty pool is not retried");
    let twice = client
        .assign_licence(FUNDAMENTALS, "murid0@sd.belajar.id")
        .await
        .unwrap_err();
    assert_eq!(api_error(&twice.error).0, 412);

    assert!(
        client
            .licence_held(FUNDAMENTALS, "murid0@sd.belajar.id")
            .await
            .unwrap()
    );
    assert!(
        !client
            .licence_held(FUNDAMENTALS, "murid2@sd.belajar.id")
            .await
            .unwrap()
    );

    client
        .remove_licence(FUNDAMENTALS, "murid0@sd.belajar.id")
        .await
        .unwrap();
    assert_eq!(
        emu.licences_free(FUNDAMENTALS),
        (0, 1),
        "taken back, cooling"
    );
    let cooling = client
        .assign_licence(FUNDAMENTALS, "murid2@sd.belajar.id")
        .await
        .unwrap_err();
    assert_eq!(api_error(&cooling.error).0, 412);
    emu.grant_licences(FUNDAMENTALS, 1);
    client
        .assign_licence(FUNDAMENTALS, "murid2@sd.belajar.id")
        .await
        .unwrap();

    let page = client.list_licences(FUNDAMENTALS, None).await.unwrap();
    let mut holders: Vec<String> = page.items.into_iter().map(|a| a.user_id).collect();
    holders.sort();
    assert_eq!(holders, ["murid1@sd.belajar.id", "murid2@sd.belajar.id"]);
    assert_eq!(page.next_page_token, None);
}

#[tokio::test(start_paused = true)]
async fn a_licence_taken_back_is_given_again_after_the_delay() {
    let emu = start(Options {
        licences: pools(1, 0),
        licence_reuse_delay: Duration::ZERO,
        ..Options::default()
    })
    .await;
    let client = licensed_client(&emu).await;
    create(&client, "a@sd.belajar.id").await;
    create(&client, "b@sd.belajar.id").await;
    client
        .assign_licence(FUNDAMENTALS, "a@sd.belajar.id")
        .await
        .unwrap();
    client
        .remove_licence(FUNDAMENTALS, "a@sd.belajar.id")
        .await
        .unwrap();
    client
        .assign_licence(FUNDAMENTALS, "b@sd.belajar.id")
        .await
        .unwrap();
    assert_eq!(emu.licences_free(FUNDAMENTALS), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn archiving_takes_an_archived_licence_and_frees_fundamentals() {
    let emu = start(Options {
        licences: pools(2, 1),
        ..Options::default()
    })
    .await;
    let client = licensed_client(&emu).await;
    for who in ["lulus1", "lulus2"] {
        let email = format!("{who}@sd.belajar.id");
        create(&client, &email).await;
        client.assign_licence(FUNDAMENTALS, &email).await.unwrap();
    }
    let archive = User {
        archived: Some(true),
        ..User::default()
    };
    let done = client
        .update_user("lulus1@sd.belajar.id", &archive)
        .await
        .unwrap();
    assert_eq!(done.value.archived, Some(true));
    assert_eq!(
        emu.licence_of("Google-Apps", "lulus1@sd.belajar.id"),
        None,
        "Fundamentals freed"
    );
    assert_eq!(
        emu.licence_of("101034", "lulus1@sd.belajar.id").as_deref(),
        Some(ARCHIVED)
    );
    assert_eq!(
        emu.licences_free(FUNDAMENTALS),
        (0, 1),
        "freed, within the delay"
    );
    let refused = client
        .update_user("lulus2@sd.belajar.id", &archive)
        .await
        .unwrap_err();
    let (status, message) = api_error(&refused.error);
    assert_eq!(status, 412);
    assert!(message.contains("archived user licenses"), "{message}");
    let user = client.get_user("lulus2@sd.belajar.id").await.unwrap();
    assert_eq!(user.value.archived, Some(false), "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn auto_licensing_gives_new_users_fundamentals_and_refuses_removal() {
    let emu = start(Options {
        licences: pools(1, 0),
        auto_licensing: true,
        ..Options::default()
    })
    .await;
    let client = licensed_client(&emu).await;
    create(&client, "a@sd.belajar.id").await;
    assert!(
        client
            .licence_held(FUNDAMENTALS, "a@sd.belajar.id")
            .await
            .unwrap()
    );
    let refused = client
        .remove_licence(FUNDAMENTALS, "a@sd.belajar.id")
        .await
        .unwrap_err();
    let (status, message) = api_error(&refused.error);
    assert_eq!(status, 412);
    assert!(message.contains("Auto License"), "{message}");
}

/// A token asked without the licensing scope (a client whose configuration does not
/// manage licences) is refused by licensing as Google refuses it; the client itself says
/// licences are not enabled rather than calling.
#[tokio::test(start_paused = true)]
async fn licensing_needs_its_scope() {
    let emu = start(Options {
        licences: pools(1, 0),
        ..Options::default()
    })
    .await;
    let token = token_for(&emu, "admin@belajar.id").await;
    assert!(!SCOPES.contains("apps.licensing"));
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/apps/licensing/v1/product/Google-Apps/sku/{FUNDAMENTALS}/users?customerId=my_customer",
            emu.base_url
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 403);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Request had insufficient authentication scopes."
    );

    let google = config::Google {
        key_file: emu.key_file.clone(),
        subject: "admin@belajar.id".into(),
        api_base: emu.base_url.clone(),
        ..config::Google::default()
    };
    let unlicensed = DirectoryClient::new(&google).await.unwrap();
    let error = unlicensed
        .list_licences(FUNDAMENTALS, None)
        .await
        .unwrap_err();
    assert!(
        error.error.to_string().contains("not enabled"),
        "{}",
        error.error
    );
    assert!(
        licensed_client(&emu)
            .await
            .scopes()
            .iter()
            .any(|s| s.ends_with("apps.licensing"))
    );
}
