//! `belajar-sync check`: does the configuration reach Google? Reads the key, obtains a
//! token, lists one user of each managed domain, reads the root org unit, and says for
//! whatever fails what the likely cause is, in plain words.

use super::Failure;
use crate::config::Config;
use crate::google::DirectoryClient;
use crate::google::errors::CallError;
use crate::google::licensing::LICENSING_SCOPE;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Google's default quota of calls a minute for one admin acting through one Cloud
/// project (it can be raised on the project's quotas page).
const DEFAULT_QUOTA: u32 = 2_400;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

/// The likely cause of `error`, for an operator.
pub fn explain(error: &CallError, config: &Config, client_id: Option<&str>) -> String {
    let google = &config.google;
    let mut scopes = crate::google::SCOPES.to_vec();
    if config.licences.enabled {
        scopes.push(LICENSING_SCOPE);
    }
    let client = client_id.unwrap_or("(see the key file's client_id)");
    match error {
        CallError::Token(text) if text.contains("unauthorized_client") => format!(
            "domain-wide delegation is not granted to client id {client} for scope(s) {}: in the Admin console, Security > Access and data control > API controls > Domain-wide delegation, add client id {client} with these scopes; also check that {} is a user of the domain",
            scopes.join(","),
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
            format!("the scopes {} are refused", scopes.join(","))
        }
        CallError::Token(text) => format!("no access token: {text}"),
        CallError::Api {
            status: 403,
            reason,
            ..
        } if reason == "forbidden" => format!(
            "{} is not an admin allowed to use the Admin SDK (or the domain is not this customer's): make it a super admin or give it a role with the Users and Organizational Units privileges",
            google.subject
        ),
        CallError::Api {
            status: 403,
            message,
            ..
        } if message.contains("insufficient authentication scopes") => format!(
            "the token lacks a scope: in the Admin console's domain-wide delegation, give client id {client} the scopes {}",
            scopes.join(",")
        ),
        CallError::Api {
            status: 403,
            reason,
            message,
            ..
        } if reason == "accessNotConfigured" => format!(
            "an API is not enabled in the service account's Cloud project: enable it in the Cloud console (Google says: {message})"
        ),
        CallError::Api {
            status: 400,
            reason,
            ..
        } if reason == "badRequest" => format!(
            "Google refused the request: check google.customer ({}) and the domains in [naming]",
            google.customer
        ),
        CallError::Api {
            status,
            reason,
            message,
            ..
        } => format!("Google answered {status} {reason}: {message}"),
        CallError::Unreachable(text) => format!(
            "cannot reach {}: check the network, a proxy or a firewall ({text})",
            google.api_base
        ),
        CallError::NoAnswer(text) => format!("{} did not answer: {text}", google.api_base),
        CallError::Unreadable(text) => {
            format!("unexpected answer from {}: {text}", google.api_base)
        }
    }
}

pub async fn check(config: &Config) -> Result<ExitCode, Failure> {
    let google = &config.google;
    println!("key file     {}", google.key_file.display());
    println!("subject      {}", google.subject);
    println!("api base     {}", google.api_base);
    let client = DirectoryClient::for_config(config)
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
        token.map(|()| format!("scopes {}", client.scopes().join(" "))),
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
        if config.licences.enabled {
            let sku = &config.licences.sku;
            let page = client.list_licences(sku, None).await.map_err(|f| f.error);
            report(
                &format!("licences of SKU {sku}"),
                page.map(|p| format!("listed ({} on the first page)", p.items.len())),
            );
        }
    }
    if config.mail.enabled() {
        let mail = &config.mail;
        match crate::notices::check_relay(mail).await {
            Ok(()) => println!(
                "ok    mail relay: {}:{} answers ({:?})",
                mail.relay, mail.port, mail.security
            ),
            Err(error) => {
                failed += 1;
                println!(
                    "FAIL  mail relay {}:{}: {error}; fix [mail]",
                    mail.relay, mail.port
                );
            }
        }
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

/// Warnings for configurations that act as the same admin as `ours` (at `path`): they
/// share that admin's quota, so unset ceilings compete and set ones must add up to no
/// more than it. `others` are the other configurations of the folder. Pure.
pub fn shared_subject_warnings(
    path: &Path,
    ours: &Config,
    others: &[(PathBuf, Config)],
) -> Vec<String> {
    let sharing: Vec<&(PathBuf, Config)> = others
        .iter()
        .filter(|(p, c)| p != path && c.google.subject.eq_ignore_ascii_case(&ours.google.subject))
        .collect();
    if sharing.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = sharing
        .iter()
        .map(|(p, _)| p.display().to_string())
        .collect();
    let ceilings: Vec<Option<u32>> = std::iter::once(ours.google.requests_per_minute)
        .chain(sharing.iter().map(|(_, c)| c.google.requests_per_minute))
        .collect();
    let how = "give each partition an admin of its own (google.subject), or set requests_per_minute in each so that they add up to no more than the quota";
    let subject = &ours.google.subject;
    if ceilings.iter().any(Option::is_none) {
        return vec![format!(
            "{subject} is also the subject of {}: they share one quota of Google (2,400 calls a minute unless raised) and the ones without requests_per_minute compete for it: {how}",
            names.join(", ")
        )];
    }
    let total: u32 = ceilings.iter().flatten().sum();
    if total > DEFAULT_QUOTA {
        return vec![format!(
            "{subject} is also the subject of {}: they share one quota of Google, and their requests_per_minute add up to {total}, more than the default quota of {DEFAULT_QUOTA} (fine only if the project's quota was raised): {how}",
            names.join(", ")
        )];
    }
    Vec::new()
}

/// The configurations in the folder of `path` (the partitions of this host), those that
/// load.
fn neighbours(path: &Path) -> Vec<(PathBuf, Config)> {
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| Config::load(&p).ok().map(|c| (p, c)))
        .collect()
}

pub fn run(path: &Path, config: &Config) -> Result<ExitCode, Failure> {
    let ours = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let others: Vec<(PathBuf, Config)> = neighbours(path)
        .into_iter()
        .map(|(p, c)| (std::fs::canonicalize(&p).unwrap_or(p), c))
        .collect();
    for warning in shared_subject_warnings(&ours, config, &others) {
        println!("WARN  {warning}");
    }
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
    fn partitions_acting_as_one_admin_are_warned_of_their_shared_quota() {
        let config = |subject: &str, ceiling: Option<u32>| {
            let mut c = Config::default();
            c.google.subject = subject.into();
            c.google.requests_per_minute = ceiling;
            c
        };
        let ours = Path::new("/etc/belajar-sync/jawa-barat.toml");
        let me = config("admin@belajar.id", Some(1_200));
        let other = |subject: &str, ceiling| {
            vec![(
                PathBuf::from("/etc/belajar-sync/bali.toml"),
                config(subject, ceiling),
            )]
        };
        assert!(shared_subject_warnings(ours, &me, &other("ops@belajar.id", None)).is_empty());
        assert!(
            shared_subject_warnings(ours, &me, &other("admin@belajar.id", Some(1_200))).is_empty()
        );
        let over = shared_subject_warnings(ours, &me, &other("Admin@belajar.id", Some(2_000)));
        assert!(over[0].contains("add up to 3200"), "{over:?}");
        assert!(over[0].contains("bali.toml"), "{over:?}");
        let unset = shared_subject_warnings(ours, &me, &other("admin@belajar.id", None));
        assert!(unset[0].contains("compete"), "{unset:?}");
        let itself = vec![(ours.to_owned(), me.clone())];
        assert!(shared_subject_warnings(ours, &me, &itself).is_empty());
    }

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
