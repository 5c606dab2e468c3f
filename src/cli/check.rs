//! `belajar-sync check`: does the configuration reach Google? Reads the key, obtains a
//! token, lists one user of each managed domain, reads the root org unit, and says for
//! whatever fails what the likely cause is, in plain words.

use super::Failure;
use crate::config::Config;
use crate::google::errors::CallError;
use crate::google::{DirectoryClient, SCOPES};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

/// The likely cause of `error`, for an operator.
pub fn explain(error: &CallError, config: &Config, client_id: Option<&str>) -> String {
    let google = &config.google;
    let client = client_id.unwrap_or("(see the key file's client_id)");
    match error {
        CallError::Token(text) if text.contains("unauthorized_client") => format!(
            "domain-wide delegation is not granted to client id {client} for scope(s) {}: in the Admin console, Security > Access and data control > API controls > Domain-wide delegation, add client id {client} with these scopes; also check that {} is a user of the domain",
            SCOPES.join(","),
            google.subject
        ),
        CallError::Token(text) if text.contains("Invalid JWT Signature") => format!(
            "Google does not accept the key {}: it was deleted or disabled, or belongs to another service account; create a new key",
            google.key_file.display()
        ),
        CallError::Token(text) if text.contains("short-lived") => {
            "Google finds this machine's clock wrong: check time synchronisation (NTP)".to_owned()
        }
        CallError::Token(text) if text.contains("invalid_scope") => {
            format!("the scopes {} are refused", SCOPES.join(","))
        }
        CallError::Token(text) => format!("no access token: {text}"),
        CallError::Api { status: 403, reason, .. } if reason == "forbidden" => format!(
            "{} is not an admin allowed to use the Admin SDK (or the domain is not this customer's): make it a super admin or give it a role with the Users and Organizational Units privileges",
            google.subject
        ),
        CallError::Api { status: 403, reason, .. } if reason == "accessNotConfigured" => {
            "the Admin SDK API is not enabled in the service account's Cloud project: enable it in the Cloud console".to_owned()
        }
        CallError::Api { status: 400, reason, .. } if reason == "badRequest" => format!(
            "Google refused the request: check google.customer ({}) and the domains in [naming]",
            google.customer
        ),
        CallError::Api { status, reason, message, .. } => format!("Google answered {status} {reason}: {message}"),
        CallError::Unreachable(text) => format!(
            "cannot reach {}: check the network, a proxy or a firewall ({text})",
            google.api_base
        ),
        CallError::NoAnswer(text) => format!("{} did not answer: {text}", google.api_base),
        CallError::Unreadable(text) => format!("unexpected answer from {}: {text}", google.api_base),
    }
}

pub async fn check(config: &Config) -> Result<ExitCode, Failure> {
    let google = &config.google;
    println!("key file     {}", google.key_file.display());
    println!("subject      {}", google.subject);
    println!("api base     {}", google.api_base);
    let client = DirectoryClient::new(google)
        .await
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let client_id = client.client_id.clone();
    let mut failed = 0;
    let mut report = |what: &str, result: Result<String, CallError>| match result {
        Ok(detail) => println!("ok    {what}: {detail}"),
        Err(error) => {
            failed += 1;
            println!(
                "FAIL  {what}: {}",
                explain(&error, config, client_id.as_deref())
            );
        }
    };
    let token = client.check_token().await;
    let token_ok = token.is_ok();
    report(
        "access token",
        token.map(|()| format!("scopes {}", SCOPES.join(" "))),
    );
    if token_ok {
        for domain in config.naming.domains() {
            let mut pages = client.list_users(&domain);
            let listed = pages.next_page().await.map_err(|f| f.error);
            report(
                &format!("users of {domain}"),
                listed.map(|users| {
                    format!(
                        "listed ({} on the first page)",
                        users.unwrap_or_default().len()
                    )
                }),
            );
        }
        let root = client.get_org_unit("/").await.map_err(|f| f.error);
        report(
            "root org unit",
            root.map(|u| u.value.org_unit_id.unwrap_or_default()),
        );
    }
    if failed == 0 {
        println!("everything works");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failed} check(s) failed");
        Ok(ExitCode::from(1))
    }
}

/// The longest `check` takes as a whole, whatever Google does.
const CHECK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

pub fn run(config: &Config) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Runtime(format!("cannot start tokio: {e}")))?;
    let deadline = config
        .google
        .call_deadline
        .unsigned_abs()
        .min(CHECK_DEADLINE);
    runtime.block_on(async {
        match tokio::time::timeout(deadline, check(config)).await {
            Ok(checked) => checked,
            Err(_) => {
                println!(
                    "FAIL  Google did not finish answering within {}s: {} hangs or is very slow (network, proxy, firewall)",
                    deadline.as_secs(),
                    config.google.api_base
                );
                Ok(ExitCode::from(1))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delegation_errors_name_the_client_id_and_the_scopes() {
        let mut config = Config::default();
        config.google.subject = "admin@belajar.id".into();
        let error = CallError::Token(
            "unauthorized_client: Client is unauthorized to retrieve access tokens".into(),
        );
        let text = explain(&error, &config, Some("102851967901799660408"));
        assert!(text.contains("client id 102851967901799660408"), "{text}");
        assert!(text.contains("admin.directory.user"), "{text}");
        let forbidden = CallError::Api {
            status: 403,
            reason: "forbidden".into(),
            message: "Not Authorized".into(),
            retry_after: None,
        };
        assert!(explain(&forbidden, &config, None).contains("admin@belajar.id is not an admin"));
    }
}
