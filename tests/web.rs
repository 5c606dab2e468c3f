//! The web console through the real daemon and the emulator's Google sign-in: an operator
//! signs in with their belajar.id account, sees and acts on their own school only, takes
//! the sheet (whose every password signs in), resets a password; the helpdesk repairs
//! with a ticket; students are turned away politely; forms without their token, edited
//! or expired cookies and too many resets are refused; nothing secret reaches the log.

mod support;

use serde_json::{Value, json};
use support::console::{AGENT, Browser, SECRET, Setup, ok, run, signs_in, start_console};

#[test]
fn operators_and_the_helpdesk_work_in_the_console_and_nobody_else_does() {
    let setup = Setup::new();
    let (config, url, dir) = (&setup.config, &setup.url, setup.dir.path());
    let (op_a, op_a_first) = setup.reset_by_shell("nuptk:1000000000000001", "1985-05-05");
    let (op_b, op_b_first) = setup.reset_by_shell("nuptk:1000000000000002", "1980-01-01");
    let (pupil, pupil_first) = setup.reset_by_shell("nisn:0010000004", "2015-04-04");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, mut log) = start_console(&runtime, &setup);
    runtime.block_on(async {
        // Not signed in: the sign-in page, and 401 for a school's page.
        let mut nobody = Browser::new(&console);
        assert!(nobody.get("/").await.body.contains("Masuk dengan akun belajar.id"));
        assert_eq!(nobody.get("/sekolah/20100001").await.status, 401);

        // The operator of school A signs in (Google asks for a new password first).
        let mut a = Browser::new(&console);
        let signed = a.sign_in(&op_a, &op_a_first, Some("sandi-baru-ani-1")).await;
        assert_eq!(signed.status, 303, "{}", signed.body);
        let cookie = signed
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|c| c.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("sesi="))
            .expect("a session cookie");
        for attribute in ["HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        let home = a.get("/").await;
        assert_eq!(home.location(), "/sekolah/20100001");
        let school = a.get("/sekolah/20100001").await;
        assert_eq!(school.status, 200);
        assert!(school.body.contains("Siti Aminah") && !school.body.contains("Rina Wati"));
        assert_eq!(school.headers["cache-control"], "no-store");
        assert!(school.headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));

        // School B's pages, sheet and accounts, by editing the URL: 403 each.
        let token = school.csrf();
        assert_eq!(a.get("/sekolah/20100002").await.status, 403);
        assert_eq!(a.get("/sekolah/20100002/lembar").await.status, 403);
        let sheet_b = a
            .post("/sekolah/20100002/lembar", &[("csrf", &token), ("confirm", "yes"), ("format", "csv")])
            .await;
        assert_eq!(sheet_b.status, 403);
        assert_eq!(a.get("/akun/sd:nisn:0010000004").await.status, 403);
        let reset_b = a.post("/akun/sd:nisn:0010000004/reset", &[("csrf", &token)]).await;
        assert_eq!(reset_b.status, 403);
        assert_eq!(a.get("/bantuan?q=0010000004").await.status, 403);
        assert!(signs_in(url, &pupil, &pupil_first).await, "school B's pupil untouched");

        // A form without its token is refused.
        let no_token = a
            .post("/sekolah/20100001/lembar", &[("confirm", "yes"), ("format", "csv")])
            .await;
        assert_eq!(no_token.status, 403);

        // The sheet: every password on it signs in.
        let form = a.get("/sekolah/20100001/lembar").await;
        assert_eq!(form.status, 200);
        let sheet = a
            .post("/sekolah/20100001/lembar", &[("csrf", &form.csrf()), ("confirm", "yes"), ("format", "csv")])
            .await;
        assert_eq!(sheet.status, 200, "{}", sheet.body);
        assert_eq!(sheet.headers["cache-control"], "no-store");
        assert!(sheet.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
        let text = sheet.body.trim_start_matches('\u{feff}').to_owned();
        let mut issued = Vec::new();
        for record in csv::Reader::from_reader(text.as_bytes()).records() {
            let record = record.unwrap();
            if !record[7].is_empty() {
                issued.push((record[6].to_owned(), record[7].to_owned()));
            }
        }
        assert_eq!(issued.len(), 3, "the three pupils of school A: {text}");
        for (email, password) in &issued {
            assert!(signs_in(url, email, password).await, "{email} signs in");
        }

        // A reset of one pupil: shown once, the old password no longer signs in.
        let siti = issued.iter().find(|(e, _)| e.starts_with("siti")).unwrap().clone();
        let page = a.get("/akun/sd:nisn:0010000001").await;
        let reset = a.post("/akun/sd:nisn:0010000001/reset", &[("csrf", &page.csrf())]).await;
        assert_eq!(reset.status, 200, "{}", reset.body);
        assert_eq!(reset.headers["cache-control"], "no-store");
        let at = reset.body.find(r#"id="sandi">"#).unwrap() + r#"id="sandi">"#.len();
        let new_password = reset.body[at..].split('<').next().unwrap().to_owned();
        assert!(!signs_in(url, &siti.0, &siti.1).await, "the old password fails");
        assert!(signs_in(url, &siti.0, &new_password).await, "the new one signs in");
        // Three resets an hour: the fourth waits.
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(a.post("/akun/sd:nisn:0010000002/reset", &[("csrf", &page.csrf())]).await.status.as_u16());
        }
        assert_eq!(statuses, [200, 200, 429]);

        // An edited cookie is refused; so is an expired one signed with the console's key.
        let mut edited = Browser::new(&console);
        edited.cookies = a.cookies.clone();
        let session = edited.cookies.get_mut("sesi").unwrap();
        let last = session.pop().unwrap();
        session.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(edited.get("/sekolah/20100001").await.status, 401);
        let key_bytes = std::fs::read(dir.join("store/web-cookie.key")).unwrap();
        let jar = axum_extra::extract::cookie::SignedCookieJar::new(axum_extra::extract::cookie::Key::from(&key_bytes));
        let expired = json!({"value": {"email": op_a, "csrf": "x"}, "expires": jiff::Timestamp::now().as_second() - 1}).to_string();
        let jar = jar.add(axum_extra::extract::cookie::Cookie::new("sesi", expired));
        // The signed value is what the jar would set in an answer.
        let answer = axum::response::IntoResponse::into_response((jar, ()));
        let set = answer.headers()["set-cookie"].to_str().unwrap();
        let signed_value = set.split(';').next().unwrap().split_once('=').unwrap().1;
        let mut stale = Browser::new(&console);
        stale.cookies.insert("sesi".into(), signed_value.to_owned());
        assert_eq!(stale.get("/sekolah/20100001").await.status, 401);

        // A pupil is told politely that the console is not for them.
        let mut pupil_browser = Browser::new(&console);
        let signed = pupil_browser.sign_in(&pupil, &pupil_first, Some("sandi-baru-rina-1")).await;
        assert_eq!(signed.status, 303);
        let home = pupil_browser.get("/").await;
        assert!(home.body.contains("bukan untuk Anda"), "{}", home.body);
        assert_eq!(pupil_browser.get("/sekolah/20100002").await.status, 403);

        // Operator B sees school B, not A.
        let mut b = Browser::new(&console);
        assert_eq!(b.sign_in(&op_b, &op_b_first, Some("sandi-baru-bambang")).await.status, 303);
        assert_eq!(b.get("/sekolah/20100002").await.status, 200);
        assert_eq!(b.get("/sekolah/20100001").await.status, 403);

        // The helpdesk finds a pupil by NISN and repairs with a ticket.
        let mut agent = Browser::new(&console);
        assert_eq!(agent.sign_in(AGENT, "sandi-agen-123", None).await.status, 303);
        let found = agent.get("/bantuan?q=0010000003").await;
        assert!(found.body.contains("Dewi Lestari"), "{}", found.body);
        let page = agent.get("/akun/sd:nisn:0010000003").await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Dewi Lestari") && !page.body.contains("2015-02-02"), "the agent asks for the birth date, never reads it");
        let no_ticket = agent.post("/akun/sd:nisn:0010000003/perbaiki", &[("csrf", &page.csrf())]).await;
        assert_eq!(no_ticket.status, 400);
        let repaired = agent
            .post("/akun/sd:nisn:0010000003/perbaiki", &[("csrf", &page.csrf()), ("ticket", "T-2026-123")])
            .await;
        assert_eq!(repaired.status, 200, "{}", repaired.body);
        // The helpdesk's reset checks the birth date.
        let wrong = agent
            .post("/akun/sd:nisn:0010000003/reset", &[("csrf", &page.csrf()), ("ticket", "T-2026-124"), ("birth_date", "2015-02-03")])
            .await;
        assert_eq!(wrong.status, 409);
        // Not an administrator: no suspension.
        let suspend = agent
            .post("/akun/sd:nisn:0010000003/tangguhkan", &[("csrf", &page.csrf()), ("ticket", "T-1"), ("reason", "spam")])
            .await;
        assert_eq!(suspend.status, 403);
    });

    // The metrics count what the console did.
    let metrics = log.metrics(&runtime);
    for sample in [
        r#"belajar_sync_console_total{what="sign_in",who="operator"} 2"#,
        r#"belajar_sync_console_total{what="sign_in",who="helpdesk"} 1"#,
        r#"belajar_sync_console_total{what="sign_in",who="other"} 1"#,
        r#"belajar_sync_console_total{what="reset",who="operator"} 3"#,
        r#"belajar_sync_console_total{what="sheet",who="operator"} 1"#,
        r#"belajar_sync_console_total{what="repair",who="helpdesk"} 1"#,
        r#"belajar_sync_console_total{what="limited",who="operator"} 1"#,
    ] {
        assert!(metrics.contains(sample), "{sample} in\n{metrics}");
    }
    drop(daemon);
    let log = log.so_far();
    // (The daemon is gone: the shell opens the store.) The history records who asked, from where, for which ticket.
    let shown: Value =
        serde_json::from_str(&ok(&run(config, &["show", "sd:nisn:0010000003", "--json"]))).unwrap();
    let history = shown.to_string();
    assert!(
        history.contains("T-2026-123") && history.contains(AGENT),
        "{history}"
    );
    let shown = ok(&run(config, &["show", "sd:nisn:0010000001"]));
    assert!(
        shown.contains(&op_a) && shown.contains("127.0.0.1"),
        "{shown}"
    );

    assert!(log.contains("console: refused"), "refusals are logged");
    for (email, password) in [(&op_a, &op_a_first), (&pupil, &pupil_first)] {
        assert!(
            !log.contains(password.as_str()),
            "{email}'s password is in the log"
        );
    }
    assert!(!log.contains(SECRET), "the client secret is in the log");
    assert!(
        !log.contains("sandi-baru"),
        "a chosen password is in the log"
    );
}

#[tokio::test]
async fn id_tokens_with_a_wrong_audience_issuer_domain_or_signature_are_refused() {
    use base64::Engine;
    use belajar_sync::emulator::sign_id_token;
    use belajar_sync::web::oidc::{Provider, check_claims};
    let emu = support::google::start(belajar_sync::emulator::Options::default()).await;
    let provider = Provider::discover(
        reqwest::Client::new(),
        &emu.base_url,
        "konsol".into(),
        SECRET.into(),
        "http://127.0.0.1:1/masuk/selesai".into(),
    )
    .await
    .unwrap();
    let now = jiff::Timestamp::now().as_second();
    let good = json!({"iss": emu.base_url, "aud": "konsol", "azp": "konsol", "sub": "1",
        "email": "op@admin.sd.belajar.id", "email_verified": true, "hd": "admin.sd.belajar.id",
        "nonce": "n", "iat": now, "exp": now + 3600});
    let domains = vec!["admin.sd.belajar.id".to_owned()];
    let claims = provider.verify(&sign_id_token(&good)).await.unwrap();
    assert_eq!(
        check_claims(claims, "n", &domains).unwrap().email,
        "op@admin.sd.belajar.id"
    );
    // Google's legacy issuer (no scheme) is accepted.
    let mut legacy = good.clone();
    legacy["iss"] = json!(emu.base_url.trim_start_matches("http://"));
    assert!(provider.verify(&sign_id_token(&legacy)).await.is_ok());
    for (field, value) in [
        ("aud", json!("another-client")),
        ("iss", json!("https://accounts.evil.example")),
        ("exp", json!(now - 3600)),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        let refused = provider.verify(&sign_id_token(&bad)).await;
        assert!(
            refused.is_err(),
            "a token with a wrong {field} was accepted"
        );
    }
    // Signed right, but for another Workspace (or none).
    for hd in [json!("evil.example"), Value::Null] {
        let mut other = good.clone();
        other["hd"] = hd.clone();
        let claims = provider.verify(&sign_id_token(&other)).await.unwrap();
        assert!(check_claims(claims, "n", &domains).is_err(), "hd {hd}");
    }
    // Another token's signature on these claims; no signature at all.
    let token = sign_id_token(&good);
    let forged = sign_id_token(&json!({"sub": "2"}));
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = forged.split('.').nth(2).unwrap();
    assert!(
        provider.verify(&parts.join(".")).await.is_err(),
        "a swapped signature"
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let unsigned = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1]
    );
    assert!(provider.verify(&unsigned).await.is_err(), "alg none");
}

#[test]
fn the_helpdesk_api_works_with_a_listed_agents_token_only() {
    let setup = Setup::new();
    let (config, url) = (&setup.config, &setup.url);
    // Only a listed agent gets a token.
    let refused = run(config, &["web", "token", "add", "guru@belajar.id"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("web.helpdesk"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, mut log) = start_console(&runtime, &setup);
    // Made through the running daemon's control socket; printed once, listed without it.
    let token = ok(&run(
        config,
        &["web", "token", "add", AGENT, "--note", "Zammad"],
    ))
    .trim()
    .to_owned();
    let list = ok(&run(config, &["web", "token", "list"]));
    assert!(
        list.contains(AGENT) && list.contains("Zammad") && !list.contains(&token),
        "{list}"
    );
    let id = list.split_whitespace().next().unwrap().to_owned();
    let api = |path: &str| format!("{console}/api/v1{path}");
    let http = reqwest::Client::new();
    runtime.block_on(async {
        // No token, an edited one, a session cookie: 401 with how to authenticate.
        let none = http
            .get(api("/accounts?q=0010000003"))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 401);
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let mut edited = token.clone();
        let last = edited.pop().unwrap();
        edited.push(if last == 'A' { 'B' } else { 'A' });
        let answer = http
            .get(api("/accounts?q=0010000003"))
            .bearer_auth(&edited)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(
            answer.json::<Value>().await.unwrap()["error"],
            "unauthorized"
        );

        // The search and one account, never with the birth date.
        let found = http
            .get(api("/accounts?q=0010000003"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(found.status(), 200);
        let found: Value = found.json().await.unwrap();
        assert_eq!(found["accounts"][0]["full_name"], "Dewi Lestari", "{found}");
        assert_eq!(found["accounts"][0]["state"], "active");
        let one: Value = http
            .get(api("/accounts/sd:nisn:0010000003"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            one["show"].as_str().unwrap().contains("Dewi Lestari"),
            "{one}"
        );
        for seen in [&found, &one] {
            assert!(
                !seen.to_string().contains("2015-02-02"),
                "a birth date in {seen}"
            );
        }

        let post =
            |path: &str, body: Value| http.post(api(path)).bearer_auth(&token).json(&body).send();
        // A repair needs a ticket, and JSON.
        let no_ticket = post("/accounts/sd:nisn:0010000003/resync", json!({}))
            .await
            .unwrap();
        assert_eq!(no_ticket.status(), 400);
        let form = http
            .post(api("/accounts/sd:nisn:0010000003/resync"))
            .bearer_auth(&token)
            .body("ticket=T-1")
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 400);
        // (A forged X-Forwarded-For from a peer that is no trusted proxy is not believed:
        // the history below says 127.0.0.1.)
        let repaired = http
            .post(api("/accounts/sd:nisn:0010000003/resync"))
            .bearer_auth(&token)
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({"ticket": "T-API-7"}))
            .send()
            .await
            .unwrap();
        assert_eq!(repaired.status(), 200);
        let repaired: Value = repaired.json().await.unwrap();
        assert_eq!(repaired["outcome"], "done", "{repaired}");

        // A reset: the birth date is checked; the password given signs in.
        let wrong = post(
            "/accounts/sd:nisn:0010000003/reset",
            json!({"ticket": "T-API-8", "birth_date": "2015-02-03"}),
        )
        .await
        .unwrap();
        assert_eq!(wrong.status(), 409);
        let reset = post(
            "/accounts/sd:nisn:0010000003/reset",
            json!({"ticket": "T-API-8", "birth_date": "2015-02-02"}),
        )
        .await
        .unwrap();
        assert_eq!(reset.status(), 200);
        assert_eq!(reset.headers()["cache-control"], "no-store");
        let reset: Value = reset.json().await.unwrap();
        let (email, password) = (
            reset["account"]["email"].as_str().unwrap(),
            reset["password"].as_str().unwrap(),
        );
        assert!(
            signs_in(url, email, password).await,
            "the API's password signs in"
        );

        // An agent is no administrator; an unknown action or account is 404.
        let suspend = post(
            "/accounts/sd:nisn:0010000003/suspend",
            json!({"ticket": "T-1", "reason": "spam"}),
        )
        .await
        .unwrap();
        assert_eq!(suspend.status(), 403);
        assert_eq!(suspend.json::<Value>().await.unwrap()["error"], "forbidden");
        assert_eq!(
            post(
                "/accounts/sd:nisn:0010000003/delete",
                json!({"ticket": "T-1"})
            )
            .await
            .unwrap()
            .status(),
            404
        );
        assert_eq!(
            post(
                "/accounts/sd:nisn:0099999999/resync",
                json!({"ticket": "T-1"})
            )
            .await
            .unwrap()
            .status(),
            404
        );
    });

    // Taken off the helpdesk list (a SIGHUP), the agent's token is refused; put back, it
    // works again.
    let listed = std::fs::read_to_string(config).unwrap();
    let search = || {
        runtime.block_on(async {
            let answer = http
                .get(api("/accounts?q=0010000003"))
                .bearer_auth(&token)
                .send()
                .await;
            answer.unwrap().status().as_u16()
        })
    };
    for (text, status) in [
        (listed.replace(AGENT, "someone-else@belajar.id"), 403),
        (listed.clone(), 200),
    ] {
        std::fs::write(config, text).unwrap();
        support::daemon::signal(daemon.0.id(), "-HUP");
        log.wait_for("configuration reloaded");
        assert_eq!(search(), status);
    }

    // Revoked (through the socket), the token is refused at once.
    let revoked = ok(&run(config, &["web", "token", "revoke", &id]));
    assert!(revoked.contains(&id), "{revoked}");
    runtime.block_on(async {
        let after = http
            .get(api("/accounts?q=0010000003"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), 401);
        // Guessing tokens from one address: each failure spends the address's hour (600).
        let mut tries = 0;
        let limited = loop {
            tries += 1;
            let guess = format!("bsapi_{tries:043}");
            let answer = http
                .get(api("/accounts"))
                .bearer_auth(&guess)
                .send()
                .await
                .unwrap();
            if answer.status() != 401 || tries > 700 {
                break answer;
            }
        };
        assert_eq!(limited.status(), 429, "after {tries} guesses");
        assert!(limited.headers().contains_key("retry-after"));
    });
    assert!(!ok(&run(config, &["web", "token", "list"])).contains(&id));
    let metrics = log.metrics(&runtime);
    for sample in [
        r#"belajar_sync_console_total{what="repair",who="api"} 1"#,
        r#"belajar_sync_console_total{what="reset",who="api"} 1"#,
        r#"belajar_sync_console_total{what="refused",who="api"} 3"#,
        r#"belajar_sync_console_total{what="limited",who="unknown"} 1"#,
    ] {
        assert!(metrics.contains(sample), "{sample} in\n{metrics}");
    }
    drop(daemon);
    let log = log.so_far();
    assert!(!log.contains(&token), "the token is in the log");
    let history = ok(&run(config, &["show", "sd:nisn:0010000003"]));
    assert!(
        history.contains(&format!(
            "{AGENT} (api, token {id}, dari 127.0.0.1, tiket T-API-7)"
        )),
        "{history}"
    );

    // The limits are kept in the store: a restarted daemon still refuses the address.
    let (_daemon, console, _log) = start_console(&runtime, &setup);
    runtime.block_on(async {
        let again = http
            .get(format!("{console}/api/v1/accounts"))
            .bearer_auth("bsapi_after_the_restart")
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 429, "the hour is still spent");
    });
}

#[test]
fn the_console_serves_https_with_its_certificate_and_refuses_a_key_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let setup = Setup::new();
    let dir = setup.dir.path();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let (cert, key) = (dir.join("console.crt"), dir.join("console.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut text = std::fs::read_to_string(&setup.config).unwrap();
    text.push_str("tls_cert = \"console.crt\"\ntls_key = \"console.key\"\n");
    std::fs::write(&setup.config, text).unwrap();

    // A key others can read: the daemon does not start, and says what to do.
    let refused = run(&setup.config, &["run", "--allow-root"]);
    assert_ne!(refused.status.code(), Some(0));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("console.key") && said.contains("chmod 600"),
        "{said}"
    );

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_daemon, console, _) = start_console(&runtime, &setup);
    assert!(console.starts_with("https://127.0.0.1:"), "{console}");
    runtime.block_on(async {
        let trusting = reqwest::Client::builder()
            .tls_certs_merge([reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).unwrap()])
            .build()
            .unwrap();
        let home = trusting.get(format!("{console}/")).send().await.unwrap();
        assert_eq!(home.status(), 200);
        assert!(
            home.text()
                .await
                .unwrap()
                .contains("Masuk dengan akun belajar.id")
        );
        // Plain HTTP on the TLS port, and a client that does not trust the certificate.
        let plain = console.replace("https://", "http://");
        let answered = reqwest::get(format!("{plain}/")).await;
        assert!(
            !answered.is_ok_and(|a| a.status() == 200),
            "plain HTTP on the TLS port"
        );
        assert!(
            reqwest::Client::new()
                .get(format!("{console}/"))
                .send()
                .await
                .is_err()
        );
    });
}
