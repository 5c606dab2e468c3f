//! A person's browser against the web console, without a browser: plain HTTP with the
//! console's cookies kept by hand (redirects followed one by one, so each step is seen),
//! and Google's sign-in played at the emulator's own form.

#![allow(dead_code)] // each test binary uses a part of it

pub use super::command::{ok, run};
use super::daemon::{start_daemon_logging, wait_for};
use super::google::{Api, KillOnDrop, spawn_emulator, token_from_key};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a browser keeps for the console: its cookies.
pub struct Browser {
    pub console: String,
    pub cookies: BTreeMap<String, String>,
    http: reqwest::Client,
}

/// One answer: status, headers, body.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> String {
        self.headers
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// The CSRF token of the page's forms.
    pub fn csrf(&self) -> String {
        self.field("csrf")
    }

    /// The value of the first field `name` of the page's forms.
    pub fn field(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let at = self.body.find(&marker).expect("a form with the field") + marker.len();
        let rest = &self.body[at..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

impl Browser {
    pub fn new(console: &str) -> Browser {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Browser {
            console: console.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, response: reqwest::Response) -> Page {
        for set in response.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let pair = set.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// GET a path of the console (or a whole URL).
    pub async fn get(&mut self, path: &str) -> Page {
        let url = self.url(path);
        let response = self
            .http
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    /// POST a form to a path of the console.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let url = self.url(path);
        let response = self
            .http
            .post(url)
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(response).await
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.console)
        }
    }

    /// Signs in as `email` with `password` at the emulator's sign-in form (choosing
    /// `new_password` when Google asks for a first password's change); the console's
    /// answer to the callback.
    pub async fn sign_in(
        &mut self,
        email: &str,
        password: &str,
        new_password: Option<&str>,
    ) -> Page {
        let start = self.get("/masuk").await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.body);
        let authorize = url::Url::parse(&start.location()).unwrap();
        let form_page = self.http.get(authorize.clone()).send().await.unwrap();
        assert_eq!(form_page.status(), 200, "the sign-in form");
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("email".into(), email.into()));
        form.push(("password".into(), password.into()));
        if let Some(new) = new_password {
            form.push(("new_password".into(), new.into()));
        }
        let post_url = format!(
            "{}://{}/o/oauth2/v2/auth",
            authorize.scheme(),
            authorize.host_str().unwrap().to_owned()
                + &authorize
                    .port()
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default()
        );
        let back = self.http.post(post_url).form(&form).send().await.unwrap();
        if back.status() != StatusCode::SEE_OTHER {
            return Page {
                status: back.status(),
                headers: back.headers().clone(),
                body: back.text().await.unwrap(),
            };
        }
        let callback = back.headers()[LOCATION].to_str().unwrap().to_owned();
        self.get(&callback).await
    }
}

pub const EXPORT: &str = "id_type,id,full_name,role,jenjang,npsn,birth_date\n\
nuptk,1000000000000001,Ani Operator,operator,sd,20100001,1985-05-05\n\
nisn,0010000001,Siti Aminah,peserta_didik,sd,20100001,2015-03-01\n\
nisn,0010000002,Agus Salim,peserta_didik,sd,20100001,2015-01-01\n\
nisn,0010000003,Dewi Lestari,peserta_didik,sd,20100001,2015-02-02\n\
nuptk,1000000000000002,Bambang Operator,operator,sd,20100002,1980-01-01\n\
nisn,0010000004,Rina Wati,peserta_didik,sd,20100002,2015-04-04\n";

pub const SECRET: &str = "konsol-rahasia-uji";
pub const AGENT: &str = "agent@belajar.id";

fn config(dir: &Path, url: &str, key: &Path, tail: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let secret = dir.join("client-secret");
    std::fs::write(&secret, SECRET).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = \"store\"\n[google]\nkey_file = {key:?}\nsubject = \"admin@belajar.id\"\napi_base = \"{url}\"\nrequests_per_minute = 100000\ncall_deadline = \"3s\"\n\
             [daemon]\ncontrol_socket = \"ctl.sock\"\nmetrics_listen = \"127.0.0.1:0\"\npush_interval = \"1s\"\n\
             [web]\nlisten = \"127.0.0.1:0\"\nissuer = \"{url}\"\nclient_id = \"konsol\"\nclient_secret_file = \"client-secret\"\nhelpdesk = [\"{AGENT}\"]\nresets_per_hour = 3\n{tail}"
        ),
    )
    .unwrap();
    path
}

/// A password for `id` from the shell's helpdesk reset (birth date checked).
fn reset_by_shell(config: &Path, id: &str, birth: &str) -> (String, String) {
    let out = ok(&run(
        config,
        &["reset-password", id, "--birth-date", birth, "--json"],
    ));
    let reset: Value = serde_json::from_str(&out).unwrap();
    (
        reset["email"].as_str().unwrap().to_owned(),
        reset["password"].as_str().unwrap().to_owned(),
    )
}

/// Whether `password` signs in to the emulator as `email` (its test route).
pub async fn signs_in(url: &str, email: &str, password: &str) -> bool {
    reqwest::Client::new()
        .post(format!("{url}/emulator/signin"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        == 200
}

/// Two schools imported and synced to an emulator process, and the helpdesk agent made
/// in Google with a password of their own.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub config: PathBuf,
    /// The emulator's service-account key file.
    pub key: PathBuf,
    pub emulator: KillOnDrop,
}

impl Setup {
    pub fn new() -> Setup {
        Setup::with_export(EXPORT)
    }

    /// The same with another export (it must keep the operators and pupils above).
    pub fn with_export(text: &str) -> Setup {
        Setup::custom(text, &[], "")
    }

    /// The same with the emulator started with `emulator_args`, and `tail` added to the
    /// configuration (its first lines are in `[web]`; it may open other sections;
    /// `{emulator}` in it is the emulator's URL).
    pub fn custom(text: &str, emulator_args: &[&str], tail: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (emulator, url, key) = spawn_emulator(emulator_args);
        let emulator = KillOnDrop(emulator);
        let config = config(dir.path(), &url, &key, &tail.replace("{emulator}", &url));
        let export = dir.path().join("export.csv");
        std::fs::write(&export, text).unwrap();
        ok(&run(&config, &["import", export.to_str().unwrap()]));
        ok(&run(&config, &["sync"]));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let api = Api::new(&url, token_from_key(&key, "admin@belajar.id").await);
            let agent = json!({"primaryEmail": AGENT, "name": {"givenName": "Agen", "familyName": "Bantuan"}, "password": "sandi-agen-123"});
            assert_eq!(api.ok("POST", "users", Some(agent)).await.0, 200);
        });
        Setup {
            dir,
            url,
            config,
            key,
            emulator,
        }
    }

    pub fn reset_by_shell(&self, id: &str, birth: &str) -> (String, String) {
        reset_by_shell(&self.config, id, birth)
    }
}

/// The daemon's log, read on a thread of its own.
pub struct Log {
    lines: Vec<String>,
    received: std::sync::mpsc::Receiver<String>,
}

impl Log {
    /// Every line so far.
    pub fn so_far(&mut self) -> String {
        self.lines.extend(self.received.try_iter());
        self.lines.join("\n")
    }

    /// The daemon's metrics now (read where its log says they are served).
    pub fn metrics(&mut self, runtime: &tokio::runtime::Runtime) -> String {
        let url = self
            .so_far()
            .lines()
            .find_map(|l| {
                l.split("metrics served at ")
                    .nth(1)
                    .map(|u| u.trim().to_owned())
            })
            .expect("the metrics are served");
        super::daemon::fetch_metrics(runtime, &url)
    }

    /// Waits for a line containing `needle` (panics if the daemon's log ends first).
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self.received.recv().expect("the daemon's log ended");
            self.lines.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }
}

/// Starts the daemon (logging at `trace`), reads where its console is served, and
/// registers the console's OAuth client with the emulator. The daemon, the console's URL,
/// and its log.
pub fn start_console(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
) -> (KillOnDrop, String, Log) {
    start_console_logging(runtime, setup, "trace")
}

/// [`start_console`] with the log filter `filter` (the benchmarks log as production does).
pub fn start_console_logging(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    filter: &str,
) -> (KillOnDrop, String, Log) {
    let (daemon, mut lines) = start_daemon_logging(&setup.config, filter);
    let lines_so_far = wait_for(&mut lines, "web console served at ");
    let console = lines_so_far
        .last()
        .and_then(|l| l.split("web console served at ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let (sender, received) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    runtime.block_on(async {
        let registered = reqwest::Client::new()
            .post(format!("{}/emulator/oauth-clients", setup.url))
            .json(&json!({"client_id": "konsol", "client_secret": SECRET, "redirect_uris": [format!("{console}/masuk/selesai")]}))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), 200);
    });
    let log = Log {
        lines: lines_so_far,
        received,
    };
    (daemon, console, log)
}
