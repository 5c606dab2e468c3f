//! The SMTP relay notices go through (lettre, rustls): built from `[mail]`, with the
//! relay's credentials read from a file only its owner can read.

use super::letter::Letter;
use crate::config::{Mail, MailSecurity};
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// How long one message may take to hand over.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// A relay ready to take messages.
pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

/// Why a message was not handed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    pub reason: String,
    /// The relay refused it for good (a bad address): trying again cannot help.
    pub permanent: bool,
}

/// The transport's settings from `[mail]`, credentials read; nothing built or connected
/// (building starts lettre's connection pool, which needs a runtime).
fn settings(mail: &Mail) -> Result<(AsyncSmtpTransportBuilder, Mailbox), String> {
    let builder = match mail.security {
        MailSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&mail.relay),
        MailSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&mail.relay),
        MailSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            &mail.relay,
        )),
    }
    .map_err(|e| format!("mail.relay {:?}: {e}", mail.relay))?;
    let mut builder = builder.port(mail.port).timeout(Some(SEND_TIMEOUT));
    if !mail.credentials_file.as_os_str().is_empty() {
        builder = builder.credentials(read_credentials(&mail.credentials_file)?);
    }
    let from = mail
        .from
        .parse()
        .map_err(|e| format!("mail.from {:?}: {e}", mail.from))?;
    Ok((builder, from))
}

/// Checks `[mail]` and reads the credentials file, without connecting.
pub fn check(mail: &Mail) -> Result<(), String> {
    settings(mail).map(drop)
}

impl Relay {
    /// A relay to send through (within a tokio runtime); connects on the first message.
    pub fn new(mail: &Mail) -> Result<Relay, String> {
        let (builder, from) = settings(mail)?;
        Ok(Relay {
            transport: builder.build(),
            from,
        })
    }

    /// Whether the relay answers (connects, greets, and with credentials logs in).
    pub async fn answers(&self) -> Result<(), String> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err("the relay did not answer the greeting".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Hands one message over; `id` becomes its Message-ID (the same for every attempt,
    /// so a mail system that got it twice can tell).
    pub async fn send(&self, to: &[String], letter: &Letter, id: &str) -> Result<(), SendError> {
        let permanent = |reason: String| SendError {
            reason,
            permanent: true,
        };
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(letter.subject.clone())
            .message_id(Some(format!("<{id}>")))
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| permanent(format!("{address:?} is not an address: {e}")))?;
            message = message.to(mailbox);
        }
        let message = message
            .body(letter.body.clone())
            .map_err(|e| permanent(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| SendError {
                permanent: e.is_permanent(),
                reason: e.to_string(),
            })
    }
}

/// The relay's user name (first line) and password (second line) from `path`, refused
/// when group or others may read it. The password is never put in a message.
fn read_credentials(path: &std::path::Path) -> Result<Credentials, String> {
    let shown = path.display();
    match crate::secret_file::readable_by_others(path) {
        Ok(None) => {}
        Ok(Some(mode)) => {
            return Err(format!(
                "mail.credentials_file {shown} is readable by others (mode {mode:o}): run chmod 600 {shown}"
            ));
        }
        Err(e) => return Err(format!("cannot read mail.credentials_file {shown}: {e}")),
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read mail.credentials_file {shown}: {e}"))?;
    let mut lines = text.lines();
    match (lines.next(), lines.next()) {
        (Some(user), Some(password)) if !user.trim().is_empty() && !password.is_empty() => Ok(
            Credentials::new(user.trim().to_owned(), password.to_owned()),
        ),
        _ => Err(format!(
            "mail.credentials_file {shown}: expected the user name on the first line and the password on the second"
        )),
    }
}
