//! `web token`: the bearer tokens the helpdesk's ticketing system uses on the console's
//! API (`/api/v1/`). A token is printed once, kept only as a hash, and acts for an agent
//! listed in `web.helpdesk` or `web.admins` for as long as they stay listed.

use super::Failure;
use super::session::{Session, say};
use crate::web::{Web, tokens};

#[derive(Debug, clap::Args)]
pub struct WebArgs {
    #[command(subcommand)]
    pub command: WebCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum WebCommand {
    /// Tokens of the helpdesk's API.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make a token for an agent (an address in web.helpdesk or web.admins). The token is
    /// printed once, alone on standard output; only its hash is kept. The ticketing system
    /// sends it as `Authorization: Bearer TOKEN`.
    Add {
        /// The agent's belajar.id address: what the API's actions record as who acted.
        email: String,
        /// What the token is for (the ticketing system, the agent's machine), shown by
        /// `list`.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// The tokens kept: id, agent, when and by whom made, note (never the tokens).
    List,
    /// Revoke a token by the id `list` shows: the next request with it gets 401.
    Revoke { id: String },
}

pub fn run(s: &mut Session, args: &WebArgs) -> Result<u8, Failure> {
    let WebCommand::Token(command) = &args.command;
    match command {
        TokenCommand::Add { email, note } => add(s, email, note),
        TokenCommand::List => {
            let tokens = tokens::all(s.store)?;
            if tokens.is_empty() {
                say!(
                    s.err,
                    "no API tokens: make one with `belajar-sync web token add EMAIL`"
                );
            }
            for t in tokens {
                let made = crate::display::time(t.made);
                say!(
                    s.out,
                    "{}  {}  made {made} by {}  {}",
                    t.id,
                    t.email,
                    t.by,
                    t.note
                );
            }
            Ok(0)
        }
        TokenCommand::Revoke { id } => match tokens::revoke(s.store, id)? {
            Some(t) => {
                tracing::info!(
                    id = t.id,
                    email = t.email,
                    by = s.actor,
                    "API token revoked"
                );
                say!(s.out, "revoked    token {} of {}", t.id, t.email);
                Ok(0)
            }
            None => Err(Failure::BadInput(format!(
                "no API token has the id {id:?}: `belajar-sync web token list` shows them"
            ))),
        },
    }
}

fn add(s: &mut Session, email: &str, note: &str) -> Result<u8, Failure> {
    let web = &s.config.web;
    if !Web::listed(&web.helpdesk, email) && !Web::listed(&web.admins, email) {
        return Err(Failure::BadInput(format!(
            "{email} is not in web.helpdesk or web.admins of the configuration: a token of theirs would be refused. Add the address there first (and reload the daemon)"
        )));
    }
    if note.chars().count() > 200 || note.chars().any(char::is_control) {
        return Err(Failure::BadInput(
            "--note: at most 200 characters on one line".into(),
        ));
    }
    let (token, kept) = tokens::issue(s.store, email, note, &s.actor)?;
    tracing::info!(
        id = kept.id,
        email = kept.email,
        by = s.actor,
        "API token made"
    );
    say!(s.out, "{}", token.expose());
    say!(
        s.err,
        "token {} for {} made: give it to the ticketing system now, it is not shown again.\nIt is sent as `Authorization: Bearer TOKEN` to the console's /api/v1/. Revoke it with `belajar-sync web token revoke {}`.",
        kept.id,
        kept.email,
        kept.id
    );
    Ok(0)
}
