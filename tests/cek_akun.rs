//! Cek Akun and Lupa kata sandi through the real daemon, the emulator process and a test
//! SMTP server, over HTTP as a person's browser speaks it (cookies kept, forms posted).

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use std::path::Path;
use support::console::{Browser, Page, Setup, ok, run, signs_in, start_console};
use support::google::{Api, token_from_key};
use support::smtp::SmtpServer;

const EXPORT: &str = "id_type,id,full_name,role,jenjang,npsn,status,birth_date,personal_email\n\
nuptk,1000000000000001,Ani Operator,operator,sd,20100001,aktif,1985-05-05,\n\
nisn,0010000001,Siti Aminah,peserta_didik,sd,20100001,aktif,2015-03-01,siti.pribadi@example.com\n\
nisn,0010000002,Agus Salim,peserta_didik,sd,20100001,aktif,2015-01-01,\n\
nisn,0010000003,Dewi Lestari,peserta_didik,sd,20100001,aktif,2015-02-02,\n\
nuptk,1000000000000002,Bambang Operator,operator,sd,20100002,aktif,1980-01-01,\n\
nisn,0010000004,Rina Wati,peserta_didik,sd,20100002,aktif,2015-04-04,\n\
nisn,0010000005,Budi Santoso,peserta_didik,sd,20100001,aktif,2014-06-06,\n\
nisn,0010000006,Tono Wibowo,peserta_didik,sd,20100001,aktif,2013-07-07,\n\
nisn,0010000007,Joko Susilo,peserta_didik,sd,20100001,aktif,2014-08-08,\n\
nisn,0010000008,Lina Marlina,peserta_didik,sd,20100001,aktif,2014-09-09,\n";

/// The mail relay of the configuration: the test SMTP server.
fn mail(smtp: &SmtpServer) -> String {
    format!(
        "[mail]\nrelay = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        smtp.port
    )
}

fn shown(config: &Path, key: &str) -> Value {
    serde_json::from_str(&ok(&run(config, &["show", key, "--json"]))).unwrap()
}

fn email_of(config: &Path, key: &str) -> String {
    shown(config, key)["email"].as_str().unwrap().to_owned()
}

/// The token the page's forms carry.
fn token(page: &Page) -> String {
    page.field("token")
}

/// Asserts that the daemon's metrics hold each of `samples`.
fn assert_metrics(
    log: &mut support::console::Log,
    runtime: &tokio::runtime::Runtime,
    samples: &[&str],
) {
    let metrics = log.metrics(runtime);
    for sample in samples {
        assert!(metrics.contains(sample), "{sample} in\n{metrics}");
    }
}

/// Asks Cek Akun (the form's token taken from the page first).
async fn cek(browser: &mut Browser, npsn: &str, name: &str, birth: &str) -> Page {
    let form = browser.get("/cek-akun").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = token(&form);
    browser
        .post(
            "/cek-akun",
            &[
                ("token", &token),
                ("npsn", npsn),
                ("nama", name),
                ("tanggal_lahir", birth),
                ("peran", ""),
            ],
        )
        .await
}

/// Asks Lupa kata sandi for a code: the answer, and the token of the page's forms.
async fn ask(browser: &mut Browser, address: &str, birth: &str) -> (Page, String) {
    let token = token(&browser.get("/lupa-sandi").await);
    let page = browser
        .post(
            "/lupa-sandi",
            &[
                ("token", &token),
                ("alamat", address),
                ("tanggal_lahir", birth),
            ],
        )
        .await;
    (page, token)
}

/// Sends a code to Lupa kata sandi.
async fn send_code(browser: &mut Browser, token: &str, address: &str, code: &str) -> Page {
    browser
        .post(
            "/lupa-sandi/kode",
            &[("token", token), ("alamat", address), ("kode", code)],
        )
        .await
}

/// The code in the mail.
fn code_in(mail: &support::smtp::Received) -> String {
    mail.data
        .lines()
        .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .expect("the code in the mail")
        .to_owned()
}

/// Presses the repair button of the answer `page` for the account `key`.
async fn press_repair(browser: &mut Browser, page: &Page, key: &str) -> Page {
    let form = &page.body[page
        .body
        .find("/cek-akun/perbaiki")
        .expect("a repair button")..];
    let field = |name: &str| {
        let marker = format!(r#"name="{name}" value=""#);
        let at = form.find(&marker).unwrap() + marker.len();
        form[at..at + form[at..].find('"').unwrap()].to_owned()
    };
    assert_eq!(field("akun"), key);
    let fields: Vec<(String, String)> = ["token", "npsn", "nama", "tanggal_lahir", "peran", "akun"]
        .iter()
        .map(|name| (name.to_string(), field(name)))
        .collect();
    let fields: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    browser.post("/cek-akun/perbaiki", &fields).await
}

/// Each state told to the person it applies to; a stranger learns nothing; the repair
/// fixes what drifted in Google and leaves an administrator's suspension to the helpdesk.
#[test]
fn cek_akun_tells_each_person_where_their_account_stands() {
    let smtp = SmtpServer::start();
    let setup = Setup::custom(EXPORT, &[], &mail(&smtp));
    let config = &setup.config;
    let dir = setup.dir.path();
    // Budi is listed as keluar; Tono moved up to an SMP; Joko is suspended for the terms.
    let moved = EXPORT
        .replace("20100001,aktif,2014-06-06", "20100001,keluar,2014-06-06")
        .replace(
            "nisn,0010000006,Tono Wibowo,peserta_didik,sd,20100001",
            "nisn,0010000006,Tono Wibowo,peserta_didik,smp,30100001",
        );
    std::fs::write(dir.join("second.csv"), moved).unwrap();
    ok(&run(
        config,
        &["import", dir.join("second.csv").to_str().unwrap()],
    ));
    ok(&run(config, &["sync"]));
    let suspended = run(
        config,
        &[
            "suspend",
            "sd:nisn:0010000007",
            "--reason=berbagi konten terlarang",
        ],
    );
    ok(&suspended);
    // Dewi has signed in (the next scan sees it).
    let (dewi, first) = setup.reset_by_shell("sd:nisn:0010000003", "2015-02-02");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let signed = reqwest::Client::new()
            .post(format!("{}/emulator/signin", setup.url))
            .json(&json!({"email": dewi, "password": first, "new_password": "sandi-dewi-baru-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signed.status(), 200);
    });
    ok(&run(config, &["sync", "--scan"]));
    // Then, unseen by belajar-sync: an admin suspends Agus in Google, and Lina is moved
    // to the top org unit and renamed there.
    let (agus, lina) = (
        email_of(config, "sd:nisn:0010000002"),
        email_of(config, "sd:nisn:0010000008"),
    );
    let api = runtime.block_on(async {
        Api::new(
            &setup.url,
            token_from_key(&setup.key, "admin@belajar.id").await,
        )
    });
    runtime.block_on(async {
        let (status, _) = api
            .ok(
                "PUT",
                &format!("users/{agus}"),
                Some(json!({"suspended": true})),
            )
            .await;
        assert_eq!(status, 200);
        let drift =
            json!({"orgUnitPath": "/", "name": {"givenName": "Lina", "familyName": "Keliru"}});
        assert_eq!(
            api.ok("PUT", &format!("users/{lina}"), Some(drift)).await.0,
            200
        );
    });

    let (daemon, console, mut log) = start_console(&runtime, &setup);
    let siti = email_of(config, "sd:nisn:0010000001");
    let tono_smp = email_of(config, "smp:nisn:0010000006");
    runtime.block_on(async {
        let mut browser = Browser::new(&console);
        let home = browser.get("/").await;
        assert!(
            home.body.contains(r#"href="/cek-akun""#),
            "the sign-in page leads to Cek Akun"
        );

        // Ready, never signed in: the operator has the card.
        let page = cek(&mut browser, "20100001", "  siti   AMINAH ", "01-03-2015").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains(&siti), "{}", page.body);
        assert!(
            page.body.contains("belum pernah digunakan untuk masuk"),
            "{}",
            page.body
        );
        assert!(page.body.contains("operator sekolah"));
        // Active.
        let page = cek(&mut browser, "20100001", "Dewi Lestari", "2015-02-02").await;
        assert!(
            page.body.contains(&dewi) && page.body.contains("aktif dan sudah pernah dipakai"),
            "{}",
            page.body
        );
        // Retiring: listed as keluar, on a day.
        let page = cek(&mut browser, "20100001", "Budi Santoso", "2014-06-06").await;
        assert!(page.body.contains("berstatus keluar"), "{}", page.body);
        assert!(
            page.body.contains("akan dinonaktifkan pada"),
            "{}",
            page.body
        );
        // Retiring: moved up, with the account on the new level.
        let page = cek(&mut browser, "20100001", "Tono Wibowo", "2013-07-07").await;
        assert!(page.body.contains("tidak lagi tercantum"), "{}", page.body);
        assert!(
            page.body.contains(&tono_smp),
            "the new level's account: {}",
            page.body
        );
        // Suspended for the terms: only the helpdesk.
        let page = cek(&mut browser, "20100001", "Joko Susilo", "2014-08-08").await;
        assert!(
            page.body.contains("berbagi konten terlarang"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("hanya dapat dicabut oleh helpdesk"),
            "{}",
            page.body
        );
        assert!(
            !page.body.contains("/cek-akun/perbaiki"),
            "no repair for a terms suspension"
        );

        // No match: one answer, whatever did not match; nothing about Budi's keluar.
        let strangers = [
            ("20100001", "Siti Aminah", "2015-03-02"), // a wrong birth date
            ("20100001", "Nama Tidak Ada", "2015-03-01"), // nobody of that name
            ("20100002", "Siti Aminah", "2015-03-01"), // another school
            ("99999999", "Siti Aminah", "2015-03-01"), // no such school
            ("20100001", "Budi Santoso", "2014-06-07"), // keluar, a wrong date
        ];
        let mut answers = Vec::new();
        for (npsn, name, birth) in strangers {
            let page = cek(&mut browser, npsn, name, birth).await;
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.body.contains(r#"id="tidak-ditemukan""#),
                "{}",
                page.body
            );
            assert!(
                !page.body.contains("belajar.id</td>") && !page.body.contains("keluar"),
                "{}",
                page.body
            );
            answers.push(
                page.body
                    .replace(npsn, "N")
                    .replace(name, "X")
                    .replace(birth, "D"),
            );
        }
        assert!(
            answers.windows(2).all(|w| w[0] == w[1]),
            "the same answer, word for word"
        );

        // A form without its token, or with another, is refused.
        let missing = browser
            .post(
                "/cek-akun",
                &[
                    ("npsn", "20100001"),
                    ("nama", "Siti Aminah"),
                    ("tanggal_lahir", "2015-03-01"),
                ],
            )
            .await;
        assert_eq!(missing.status, StatusCode::FORBIDDEN);
        let forged = browser
            .post(
                "/cek-akun",
                &[
                    ("token", "0123"),
                    ("npsn", "20100001"),
                    ("nama", "Siti Aminah"),
                    ("tanggal_lahir", "2015-03-01"),
                ],
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN);
        assert!(!forged.body.contains(&siti));
        // The form's cookie edited (its token put in as the value): refused too.
        let mut edited = Browser::new(&console);
        let token = token(&edited.get("/cek-akun").await);
        let cookie = edited
            .cookies
            .get_mut("formulir")
            .expect("the form's cookie");
        *cookie = cookie.replacen(&token[..4], "0000", 1);
        let form = [
            ("token", token.as_str()),
            ("npsn", "20100001"),
            ("nama", "Siti Aminah"),
            ("tanggal_lahir", "2015-03-01"),
        ];
        let refused = edited.post("/cek-akun", &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        // Bad input says what is wrong.
        let bad = cek(&mut browser, "2010", "Siti Aminah", "2015-03-01").await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("8 angka"), "{}", bad.body);

        // Lina, out of step: the repair puts her back and says so in words.
        let page = cek(&mut browser, "20100001", "Lina Marlina", "2014-09-09").await;
        let repaired = press_repair(&mut browser, &page, "sd:nisn:0010000008").await;
        assert_eq!(repaired.status, StatusCode::OK, "{}", repaired.body);
        assert!(
            repaired.body.contains("sudah diperbaiki"),
            "{}",
            repaired.body
        );
        assert!(
            repaired
                .body
                .contains("dipindahkan ke unit organisasi sekolahnya"),
            "{}",
            repaired.body
        );
        assert!(
            repaired.body.contains("nama diperbaiki"),
            "{}",
            repaired.body
        );
        let (_, user) = api.ok("GET", &format!("users/{lina}"), None).await;
        assert_eq!(user["orgUnitPath"], "/student/sd/20100001", "{user}");
        assert_eq!(user["name"]["familyName"], "Marlina", "{user}");

        // Agus, suspended by an admin in Google: the repair leaves it to the helpdesk.
        let page = cek(&mut browser, "20100001", "Agus Salim", "2015-01-01").await;
        let repaired = press_repair(&mut browser, &page, "sd:nisn:0010000002").await;
        assert!(
            repaired.body.contains("ditangguhkan oleh admin di Google"),
            "{}",
            repaired.body
        );
        assert!(
            repaired.body.contains("hanya dapat dicabut oleh helpdesk"),
            "{}",
            repaired.body
        );
        let (_, user) = api.ok("GET", &format!("users/{agus}"), None).await;
        assert_eq!(user["suspended"], true, "still suspended: {user}");

        // A repair for an account the question does not match is the no-match answer.
        let page = cek(&mut browser, "20100001", "Dewi Lestari", "2015-02-02").await;
        let forged = page
            .body
            .replace("sd:nisn:0010000003", "sd:nisn:0010000001");
        let forged = Page {
            status: page.status,
            headers: page.headers.clone(),
            body: forged,
        };
        let refused = press_repair(&mut browser, &forged, "sd:nisn:0010000001").await;
        assert!(
            refused.body.contains(r#"id="tidak-ditemukan""#),
            "{}",
            refused.body
        );
    });

    assert_metrics(
        &mut log,
        &runtime,
        &[
            r#"belajar_sync_cek_akun_total{what="match"} 8"#,
            r#"belajar_sync_cek_akun_total{what="repair"} 2"#,
            r#"belajar_sync_cek_akun_total{what="refused"} 3"#,
        ],
    );
    let log = log.so_far();
    drop(daemon);
    for birth in ["2015-03-01", "01-03-2015", "2014-06-06", "2015-03-02"] {
        assert!(!log.contains(birth), "a birth date ({birth}) in the log");
    }
    let history = shown(config, "sd:nisn:0010000001")["history"].to_string();
    assert!(
        history.contains(
            "found on the Cek Akun page by the account's holder (cek-akun, dari 127.0.0.1)"
        ),
        "{history}"
    );
    let agus_held = shown(config, "sd:nisn:0010000002");
    assert!(
        agus_held["conflict"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("administrator"),
        "left for the helpdesk: {agus_held}"
    );
}

/// The code of Lupa kata sandi arrives by mail and sets a password that signs in; a code
/// used, guessed or asked too often is refused, also after a restart.
#[test]
fn lupa_sandi_mails_a_code_that_sets_a_new_password_once() {
    let smtp = SmtpServer::start();
    let setup = Setup::custom(EXPORT, &[], &mail(&smtp));
    let config = &setup.config;
    let (siti, old) = setup.reset_by_shell("sd:nisn:0010000001", "2015-03-01");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, mut log) = start_console(&runtime, &setup);
    let agus = email_of(config, "sd:nisn:0010000002");
    let mut browser = Browser::new(&console);
    let url = setup.url.clone();
    let (new_password, code) = runtime.block_on(async {
        let b = &mut browser;
        // No personal email recorded: ask the school's operator.
        let (page, _) = ask(b, &agus, "2015-01-01").await;
        assert!(page.body.contains(r#"id="tanpa-email""#), "{}", page.body);
        // An unknown address and a wrong birth date: the same answer.
        let (unknown, _) = ask(b, "tidak.ada@sd.belajar.id", "2015-03-01").await;
        let (wrong, _) = ask(b, &agus, "2015-03-01").await;
        assert!(
            unknown.body.contains(r#"id="tidak-ditemukan""#),
            "{}",
            unknown.body
        );
        assert_eq!(unknown.status, wrong.status);
        assert_eq!(
            unknown.body.replace("tidak.ada@sd.belajar.id", "A"),
            wrong.body.replace(&agus, "A"),
            "the same answer, word for word"
        );

        // Siti: the code goes to her personal email.
        let (page, token) = ask(b, &siti, "2015-03-01").await;
        assert!(page.body.contains("s***@example.com"), "{}", page.body);
        log.wait_for("lupa-sandi: the code's mail handed to the relay");
        let mail = smtp.received();
        assert_eq!(mail.len(), 1);
        assert_eq!(mail[0].to, ["siti.pribadi@example.com"]);
        let code = code_in(&mail[0]);
        // A guessed code is refused; the right one sets a password shown once.
        let guess = if code == "12345678" {
            "87654321"
        } else {
            "12345678"
        };
        let refused = send_code(b, &token, &siti, guess).await;
        assert_eq!(refused.status, StatusCode::CONFLICT);
        assert!(refused.body.contains(r#"id="kode-ditolak""#));
        let reset = send_code(b, &token, &siti, &code).await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.body);
        let at =
            reset.body.find(r#"id="sandi">"#).expect("the new password") + r#"id="sandi">"#.len();
        let new_password = reset.body[at..at + reset.body[at..].find('<').unwrap()].to_owned();
        assert!(
            signs_in(&url, &siti, &new_password).await,
            "the new password signs in"
        );
        assert!(!signs_in(&url, &siti, &old).await, "the old one does not");
        // The code again: refused (this is Siti's fourth try in the hour).
        let again = send_code(b, &token, &siti, &code).await;
        assert_eq!(again.status, StatusCode::CONFLICT);
        assert!(again.body.contains(r#"id="kode-ditolak""#));
        // The fifth (a wrong birth date), then the sixth: refused, whatever it is.
        let (fifth, _) = ask(b, &siti, "2015-03-02").await;
        assert!(
            fifth.body.contains(r#"id="tidak-ditemukan""#),
            "{}",
            fifth.body
        );
        let (sixth, _) = ask(b, &siti, "2015-03-01").await;
        assert_eq!(
            sixth.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            sixth.body
        );
        assert!(sixth.headers.contains_key("retry-after"));
        (new_password, code)
    });
    assert_eq!(smtp.received().len(), 1, "no code mailed past the limit");
    assert_metrics(
        &mut log,
        &runtime,
        &[
            r#"belajar_sync_cek_akun_total{what="code"} 1"#,
            r#"belajar_sync_cek_akun_total{what="reset"} 1"#,
            r#"belajar_sync_cek_akun_total{what="limited"} 1"#,
        ],
    );
    let first_log = log.so_far();
    drop(daemon);

    // A restart gives nobody a fresh hour.
    let (daemon, console, mut log) = start_console(&runtime, &setup);
    browser.console = console; // the same browser, its cookies kept; a new port
    runtime.block_on(async {
        let (after, _) = ask(&mut browser, &siti, "2015-03-01").await;
        assert_eq!(
            after.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            after.body
        );
    });
    let log = first_log + &log.so_far();
    drop(daemon);
    for secret in [
        code.as_str(),
        new_password.as_str(),
        "2015-03-01",
        "2015-01-01",
    ] {
        assert!(!log.contains(secret), "a secret or birth date in the log");
    }
    let history = shown(config, "sd:nisn:0010000001")["history"].to_string();
    assert!(
        history.contains("a reset code mailed to the personal email Dapodik records (s***@example.com), asked by the account's holder (lupa-sandi, dari 127.0.0.1)"),
        "{history}"
    );
    assert!(
        history.contains("first password reset, asked by the account's holder (lupa-sandi, dari 127.0.0.1) (the holder, with the code mailed to their personal email)"),
        "{history}"
    );
}

/// Not in Google yet (queued, with the next round), created but waiting for a licence,
/// and a code past its validity.
#[test]
fn cek_akun_tells_who_waits_for_google_or_a_licence() {
    let export = "id_type,id,full_name,role,jenjang,npsn,status,birth_date,personal_email\n\
nuptk,1000000000000001,Ani Operator,operator,sd,20100001,aktif,1985-05-05,\n\
nisn,0010000001,Siti Aminah,peserta_didik,sd,20100001,aktif,2015-03-01,siti.pribadi@example.com\n";
    let smtp = SmtpServer::start();
    let tail = format!(
        "reset_code_seconds = 2\npublic_per_address_per_hour = 6\n[licences]\nenabled = true\napi_base = \"{{emulator}}\"\n{}",
        mail(&smtp)
    );
    // Licences for the two accounts there are, none more.
    let mut setup = Setup::custom(export, &["--licences", "1010070001=2"], &tail);
    let config = setup.config.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, mut log) = start_console(&runtime, &setup);
    let mut browser = Browser::new(&console);
    let siti = email_of(&config, "sd:nisn:0010000001");
    let more = |file: &str, row: &str| {
        let path = setup.dir.path().join(file);
        std::fs::write(&path, format!("{}{row}\n", export)).unwrap();
        ok(&run(&config, &["import", path.to_str().unwrap()]));
    };
    more(
        "ratna.csv",
        "nisn,0010000009,Ratna Sari,peserta_didik,sd,20100001,aktif,2015-05-05,",
    );
    log.wait_for(r#"applied account=sd:nisn:0010000009 action="create""#);
    runtime.block_on(async {
        let page = cek(&mut browser, "20100001", "Ratna Sari", "2015-05-05").await;
        assert!(page.body.contains("menunggu lisensi"), "{}", page.body);
    });
    // Google cannot be reached: a new account waits for the next round.
    setup.emulator.0.kill().unwrap();
    more(
        "ratna-yudi.csv",
        "nisn,0010000009,Ratna Sari,peserta_didik,sd,20100001,aktif,2015-05-05,\n\
         nisn,0010000010,Yudi Pratama,peserta_didik,sd,20100001,aktif,2015-06-06,",
    );
    runtime.block_on(async {
        let page = cek(&mut browser, "20100001", "Yudi Pratama", "2015-06-06").await;
        assert!(page.body.contains("belum ada di Google"), "{}", page.body);
        assert!(
            page.body
                .contains("Putaran pembuatan berikutnya diperkirakan pukul")
                || page.body.contains("sedang berjalan sekarang"),
            "{}",
            page.body
        );
        // A code used after its validity (two seconds here, fifteen minutes by default).
        let (page, _) = ask(&mut browser, &siti, "2015-03-01").await;
        assert!(page.body.contains(r#"id="terkirim""#), "{}", page.body);
    });
    log.wait_for("lupa-sandi: the code's mail handed to the relay");
    let code = code_in(&smtp.received()[0]);
    // Time passes: the code's validity is what is tested.
    std::thread::sleep(std::time::Duration::from_secs(3));
    runtime.block_on(async {
        let form = token(&browser.get("/lupa-sandi").await);
        let late = send_code(&mut browser, &form, &siti, &code).await;
        assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
        assert!(late.body.contains(r#"id="kode-ditolak""#));
        // Six tries from this address in the hour (two more names here), then 429, for
        // any name; a forged X-Forwarded-For is not believed (no proxy is trusted).
        for name in ["Nama Satu", "Nama Dua"] {
            let page = cek(&mut browser, "20100001", name, "2015-01-01").await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        }
        let page = cek(&mut browser, "20100001", "Nama Tiga", "2015-01-01").await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "{}", page.body);
        let fresh = token(&browser.get("/cek-akun").await);
        let forged = reqwest::Client::new()
            .post(format!("{console}/cek-akun"))
            .header("cookie", browser.cookie_header())
            .header("x-forwarded-for", "198.51.100.7")
            .form(&[
                ("token", fresh.as_str()),
                ("npsn", "20100001"),
                ("nama", "Nama Empat"),
                ("tanggal_lahir", "2015-01-01"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    });
    drop(daemon);
}

/// With `public_pages = false` the console serves no public page and links to none.
#[test]
fn the_public_pages_can_be_turned_off() {
    let setup = Setup::custom(EXPORT, &[], "public_pages = false\n");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (daemon, console, _log) = start_console(&runtime, &setup);
    runtime.block_on(async {
        let mut browser = Browser::new(&console);
        for path in ["/cek-akun", "/lupa-sandi"] {
            assert_eq!(
                browser.get(path).await.status,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }
        let home = browser.get("/").await;
        assert_eq!(home.status, StatusCode::OK);
        assert!(!home.body.contains("/cek-akun"), "{}", home.body);
    });
    drop(daemon);
}
