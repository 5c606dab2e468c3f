//! A small SMTP server on 127.0.0.1 for the tests: it speaks enough of RFC 5321 for a
//! client (lettre) to hand over messages, and keeps every message it accepted (a message
//! is accepted when the server answers 250 to the end of its DATA). It can hold one
//! message before answering its RCPT, until the test says, so that the test can kill the
//! sender in the middle of a message; a message whose client went away is not accepted.

#![allow(dead_code)] // each test binary uses a part of it

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed.
    pub data: String,
}

impl Received {
    /// The value of header `name` (unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = value.as_mut()
                && line.starts_with([' ', '\t'])
            {
                v.push_str(line);
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                value = Some(v.trim().to_owned());
            }
        }
        value
    }
}

/// The server: messages accepted so far, and the hold.
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    hold: Arc<Mutex<Option<Hold>>>,
    started: Arc<Mutex<usize>>,
}

/// Holds the `nth` message (counted from 1 over the server's life) before its RCPT is
/// answered: `reached` is signalled, then the server waits for `release`.
struct Hold {
    nth: usize,
    reached: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(Mutex::new(None));
        let started = Arc::new(Mutex::new(0usize));
        let (r, h, s) = (received.clone(), hold.clone(), started.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (r, h, started) = (r.clone(), h.clone(), s.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &r, &h, &started);
                });
            }
        });
        SmtpServer {
            port,
            received,
            hold,
            started,
        }
    }

    /// Messages begun so far (accepted or not).
    pub fn started(&self) -> usize {
        *self.started.lock().unwrap()
    }

    /// Messages accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Holds the `nth` message to come (counting every message started since the server
    /// started); returns (reached, release).
    pub fn hold(&self, nth: usize) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
        let (reached_tx, reached_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel();
        *self.hold.lock().unwrap() = Some(Hold {
            nth,
            reached: reached_tx,
            release: release_rx,
        });
        (reached_rx, release_tx)
    }
}

fn serve(
    stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    hold: &Mutex<Option<Hold>>,
    started: &Mutex<usize>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 test.local ESMTP\r\n")?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // the client went away
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => out.write_all(b"250-test.local\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")?,
            "HELO" => out.write_all(b"250 test.local\r\n")?,
            "MAIL" => {
                from = address_of(&command);
                to.clear();
                let n = {
                    let mut n = started.lock().unwrap();
                    *n += 1;
                    *n
                };
                // Held before the first RCPT of the nth message.
                let held = hold.lock().unwrap().take_if(|h| h.nth == n);
                out.write_all(b"250 OK\r\n")?;
                if let Some(h) = held {
                    let _ = h.reached.send(());
                    let _ = h.release.recv();
                }
            }
            "RCPT" => {
                to.push(address_of(&command));
                out.write_all(b"250 OK\r\n")?;
            }
            "DATA" => {
                out.write_all(b"354 go ahead\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(()); // cut short: not accepted
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                received.lock().unwrap().push(Received {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                out.write_all(b"250 accepted\r\n")?;
            }
            "RSET" | "NOOP" => out.write_all(b"250 OK\r\n")?,
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"502 not implemented\r\n")?,
        }
        out.flush()?;
    }
}

/// `alice@x` from `MAIL FROM:<alice@x> SIZE=1`.
fn address_of(command: &str) -> String {
    command
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}
