//! The console's main paths in a real browser: headless Chromium driven over WebDriver
//! (Chromium and chromedriver from the OS packages; `.ci/run` installs them). An operator
//! signs in at the emulator's Google sign-in (changing the first password), lands on
//! the school's page, resets a pupil's password (which then signs in), and is refused
//! another school's page. With `SCREENSHOTS=DIR` the pages are saved there (the README's).

mod support;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::console::{Setup, signs_in, start_console};
use support::google::KillOnDrop;
use support::smtp::SmtpServer;

/// Starts chromedriver on a free port; returns once it says it listens.
fn chromedriver() -> (KillOnDrop, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver; .ci/run installs it)");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.contains("started successfully"));
    assert!(started, "chromedriver did not start");
    // Its later output is not needed but must not fill the pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (KillOnDrop(child), format!("http://127.0.0.1:{port}"))
}

async fn save(client: &fantoccini::Client, name: &str) {
    if let Some(dir) = std::env::var_os("SCREENSHOTS") {
        let png = client.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

/// Clicks the element `id`.
async fn click(client: &fantoccini::Client, id: &str) {
    client
        .find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Types `text` into the field `id`.
async fn type_into(client: &fantoccini::Client, id: &str, text: &str) {
    let field = client.find(Locator::Id(id)).await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// Waits for the element `id` to be on the page.
async fn wait_for(client: &fantoccini::Client, id: &str) -> fantoccini::elements::Element {
    client.wait().for_element(Locator::Id(id)).await.unwrap()
}

/// Waits for the element `id` and reads its text.
async fn text_of(client: &fantoccini::Client, id: &str) -> String {
    wait_for(client, id).await.text().await.unwrap()
}

/// A session of headless Chromium with a phone's window, its profile in `profile`.
async fn chromium(webdriver: &str, profile: &std::path::Path) -> fantoccini::Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=420,900",
            format!("--user-data-dir={}", profile.display()),
        ]}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("a Chromium session")
}

/// Sets the date field `id` (typing into a date field depends on the browser's locale).
async fn set_date(client: &fantoccini::Client, id: &str, date: &str) {
    let script = format!("document.getElementById('{id}').value = '{date}'");
    client.execute(&script, vec![]).await.unwrap();
}

#[test]
fn a_pupil_finds_their_account_and_resets_a_forgotten_password_in_chromium() {
    let export = "id_type,id,full_name,role,jenjang,npsn,birth_date,personal_email\n\
nuptk,1000000000000001,Ani Operator,operator,sd,20100001,1985-05-05,\n\
nisn,0010000001,Siti Aminah,peserta_didik,sd,20100001,2015-03-01,siti.pribadi@example.com\n";
    let smtp = SmtpServer::start();
    let mail = format!(
        "[mail]\nrelay = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\n",
        smtp.port
    );
    let setup = Setup::custom(export, &[], &mail);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_daemon, console, mut log) = start_console(&runtime, &setup);
    let (_driver, webdriver) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let client = chromium(&webdriver, profile.path()).await;
        client.goto(&console).await.unwrap();
        click(&client, "cek-akun").await;
        // Cek Akun: the school, the name as the pupil writes it, the birth date.
        type_into(&client, "npsn", "20100001").await;
        type_into(&client, "nama", "siti aminah").await;
        set_date(&client, "tanggal_lahir", "2015-03-01").await;
        save(&client, "cek-akun.png").await;
        click(&client, "cek").await;
        let standing = text_of(&client, "keadaan").await;
        assert!(
            standing.contains("belum pernah digunakan untuk masuk"),
            "{standing}"
        );
        let email = client
            .find(Locator::Css("td.alamat"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        save(&client, "cek-akun-hasil.png").await;
        // The repair button answers in words.
        click(&client, "perbaiki").await;
        let repaired = text_of(&client, "hasil").await;
        assert!(
            repaired.contains("sudah sesuai dengan Google"),
            "{repaired}"
        );

        // Lupa kata sandi: the code by mail, then the password shown once.
        client.goto(&format!("{console}/lupa-sandi")).await.unwrap();
        type_into(&client, "alamat", &email).await;
        set_date(&client, "tanggal_lahir", "2015-03-01").await;
        click(&client, "minta-kode").await;
        wait_for(&client, "terkirim").await;
        log.wait_for("lupa-sandi: the code's mail handed to the relay");
        let code = smtp.received()[0]
            .data
            .lines()
            .find(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
            .expect("the code in the mail")
            .to_owned();
        type_into(&client, "kode", &code).await;
        click(&client, "kirim-kode").await;
        let password = text_of(&client, "sandi").await;
        save(&client, "lupa-sandi.png").await;
        assert!(
            signs_in(&setup.url, &email, &password).await,
            "{email} signs in"
        );
        client.close().await.unwrap();
    });
}

#[test]
fn an_operator_signs_in_resets_a_password_and_is_kept_to_their_school_in_chromium() {
    let setup = Setup::new();
    let (op, first) = setup.reset_by_shell("nuptk:1000000000000001", "1985-05-05");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_daemon, console, _log) = start_console(&runtime, &setup);
    let (_driver, webdriver) = chromedriver();
    let profile = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let client = chromium(&webdriver, profile.path()).await;
        client.goto(&console).await.unwrap();
        save(&client, "masuk.png").await;
        click(&client, "masuk").await;
        // Google's sign-in (the emulator's form).
        type_into(&client, "identifierId", &op).await;
        type_into(&client, "password", &first).await;
        save(&client, "google.png").await;
        click(&client, "next").await;
        // A first password must be changed first (the page that asks has its own field).
        let new_password = wait_for(&client, "new_password").await;
        type_into(&client, "password", &first).await;
        new_password.send_keys("sandi-baru-ani-1").await.unwrap();
        click(&client, "next").await;

        // The school's page.
        let table = wait_for(&client, "akun").await;
        assert!(table.text().await.unwrap().contains("Siti Aminah"));
        assert!(
            client
                .current_url()
                .await
                .unwrap()
                .path()
                .ends_with("/sekolah/20100001")
        );
        save(&client, "sekolah.png").await;

        // A reset of one pupil, shown once; it signs in.
        client
            .find(Locator::LinkText("Agus Salim"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let email = text_of(&client, "alamat").await;
        click(&client, "reset").await;
        let password = text_of(&client, "sandi").await;
        assert!(
            signs_in(&setup.url, &email, &password).await,
            "{email} signs in with the reset password"
        );

        // Another school's page, by editing the address: refused.
        client
            .goto(&format!("{console}/sekolah/20100002"))
            .await
            .unwrap();
        wait_for(&client, "ditolak").await;
        // A form whose token was removed in the page is refused too.
        client
            .goto(&format!("{console}/akun/sd:nisn:0010000003"))
            .await
            .unwrap();
        wait_for(&client, "reset").await;
        client
            .execute(
                "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())",
                vec![],
            )
            .await
            .unwrap();
        click(&client, "reset").await;
        wait_for(&client, "ditolak").await;
        client.close().await.unwrap();
    });
}
