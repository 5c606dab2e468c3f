//! A person's browser against the web console, without a browser: plain HTTP with the
//! console's cookies kept by hand (redirects followed one by one, so each step is seen),
//! and Google's sign-in played at the emulator's own form.

#![allow(dead_code)] // each test binary uses a part of it

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::collections::BTreeMap;

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
        let at = self
            .body
            .find(r#"name="csrf" value=""#)
            .expect("a form with its token");
        let rest = &self.body[at + r#"name="csrf" value=""#.len()..];
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

    fn cookie_header(&self) -> String {
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
