//! The control socket: while the daemon runs it owns the store, so an operator command
//! is sent to it and runs there, with the same output and exit code as when it opens the
//! store itself.
//!
//! Protocol (version [`PROTOCOL`]), one connection per command: the client writes one
//! JSON line (the version, its arguments, and the length of the file that follows), then
//! for `import` exactly that many bytes of the file and a line with their SHA-256 (the
//! daemon, hardened, may not be able to open the operator's path, and never opens a path
//! a client names). An upload that ends early or arrives damaged is refused whole; one
//! over `max_upload_mb` is refused before it is read.
//! The daemon answers with JSON lines: `{"out": text}` and `{"err": text}` as the command
//! writes them, then `{"exit": code}`. A file the command makes for the operator (a
//! credentials sheet) comes as `{"file": {"path", "contents"}}`: the client writes it
//! (mode 0600, in its own folder: the daemon never writes it to disk) and answers one
//! line, `{"error": null}` or `{"error": why}`, before the daemon goes on. The daemon
//! reads the caller's Unix user from the socket's peer credentials (`SO_PEERCRED`).

use super::session::{Caller, Deliver, Session, say, user_name, write_private};
use super::{Cli, Command, Failure, Operator};
use crate::daemon::Shared;
use crate::hashing::{Hashing, hex};
use clap::Parser;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, LineWriter, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;

/// The protocol's version: a daemon answers only requests of its own.
const PROTOCOL: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// [`PROTOCOL`]; absent (0) from clients older than versioning.
    #[serde(default)]
    version: u32,
    /// The command line after the program name.
    argv: Vec<String>,
    /// The file of an `import` follows the request line: exactly `length` bytes, then a
    /// line [`Trailer`].
    upload: bool,
    #[serde(default)]
    length: Option<u64>,
}

/// Sent after an upload's bytes: a file that arrives other than it left is refused.
#[derive(Debug, Serialize, Deserialize)]
struct Trailer {
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Frame {
    Out(String),
    Err(String),
    File { path: String, contents: String },
    Exit(u8),
}

/// The client's answer to a `file` frame.
#[derive(Debug, Serialize, Deserialize)]
struct Written {
    error: Option<String>,
}

/// Sends the command to the daemon when one answers at `socket`: `None` when none does
/// (no socket, or a stale one), so the command opens the store itself.
pub fn forward(socket: &Path, upload: Option<&Path>) -> Result<Option<u8>, Failure> {
    if socket.as_os_str().is_empty() {
        return Ok(None);
    }
    let stream = match UnixStream::connect(socket) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(Failure::Runtime(format!(
                "cannot reach the daemon at {}: {e}{}",
                socket.display(),
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    " (the socket is for the service's group: ask to be added to it)"
                } else {
                    ""
                }
            )));
        }
    };
    let lost = |e: std::io::Error| {
        Failure::Runtime(format!(
            "the connection to the daemon at {} broke: {e} (see its log)",
            socket.display()
        ))
    };
    let cannot_read = |path: &Path, e: std::io::Error| {
        Failure::BadInput(format!("cannot read {}: {e}", path.display()))
    };
    let file = upload
        .map(|path| {
            let file = std::fs::File::open(path).map_err(|e| cannot_read(path, e))?;
            let length = file.metadata().map_err(|e| cannot_read(path, e))?.len();
            Ok::<_, Failure>((path, file, length))
        })
        .transpose()?;
    let request = Request {
        version: PROTOCOL,
        argv: std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        upload: file.is_some(),
        length: file.as_ref().map(|(_, _, length)| *length),
    };
    let mut writer = &stream;
    let line = serde_json::to_string(&request).expect("requests serialise");
    writeln!(writer, "{line}").map_err(lost)?;
    if let Some((path, file, length)) = file {
        let mut hashing = Hashing::new(writer);
        let sent =
            std::io::copy(&mut std::io::Read::take(file, length), &mut hashing).map_err(lost)?;
        if sent < length {
            return Err(Failure::BadInput(format!(
                "{} shrank while it was sent ({sent} of {length} bytes): nothing was imported",
                path.display()
            )));
        }
        let trailer = Trailer {
            sha256: hex(&hashing.finish().1),
        };
        let line = serde_json::to_string(&trailer).expect("trailers serialise");
        writeln!(writer, "{line}").map_err(lost)?;
    }

    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    for line in BufReader::new(&stream).lines() {
        match serde_json::from_str::<Frame>(&line.map_err(lost)?) {
            Ok(Frame::Out(text)) => {
                if out.write_all(text.as_bytes()).is_err() {
                    return Ok(Some(0)); // the reader went away (a pager closed)
                }
            }
            Ok(Frame::Err(text)) => {
                let _ = err.write_all(text.as_bytes());
            }
            Ok(Frame::File { path, contents }) => {
                let written = write_private(Path::new(&path), contents.as_bytes());
                let answer = Written {
                    error: written.err().map(|e| e.to_string()),
                };
                let line = serde_json::to_string(&answer).expect("answers serialise");
                writeln!(writer, "{line}").map_err(lost)?;
            }
            Ok(Frame::Exit(code)) => {
                let _ = out.flush();
                return Ok(Some(code));
            }
            Err(e) => return Err(Failure::Runtime(format!("the daemon's answer: {e}"))),
        }
    }
    Err(Failure::Runtime(format!(
        "the daemon at {} ended the connection without an answer (see its log)",
        socket.display()
    )))
}

/// Serves operator commands on `listener` until `shutdown`, each on a blocking thread of
/// the runtime beside the daemon's loop; then waits for those running.
pub async fn serve(
    listener: tokio::net::UnixListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    sessions.spawn_blocking(move || {
                        let uid = stream.peer_cred().map(|c| c.uid());
                        match uid.and_then(|uid| {
                            let stream = stream.into_std()?;
                            stream.set_nonblocking(false)?;
                            Ok((stream, uid))
                        }) {
                            Ok((stream, uid)) => answer(&stream, &shared, user_name(uid)),
                            Err(e) => tracing::warn!(error = %e, "control socket: cannot use a connection"),
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "control socket: accept failed"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    // A sync asked through the socket stops with the daemon's control; others are short.
    while sessions.join_next().await.is_some() {}
}

/// Writes a command's output to the socket as frames of one kind.
struct FrameWriter<'a> {
    stream: &'a UnixStream,
    err: bool,
}

impl Write for FrameWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf).into_owned();
        send(
            self.stream,
            &if self.err {
                Frame::Err(text)
            } else {
                Frame::Out(text)
            },
        )?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn send(mut stream: &UnixStream, frame: &Frame) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(frame).expect("frames serialise");
    line.push(b'\n');
    stream.write_all(&line)
}

/// Sends a file to the client and waits for it to say whether it wrote it.
struct ToClient<'a> {
    stream: &'a UnixStream,
}

impl Deliver for ToClient<'_> {
    fn deliver(&mut self, path: &Path, contents: &[u8]) -> Result<(), String> {
        let frame = Frame::File {
            path: path.to_string_lossy().into_owned(),
            contents: String::from_utf8_lossy(contents).into_owned(),
        };
        let gone = |e: std::io::Error| format!("the client went away: {e}");
        send(self.stream, &frame).map_err(gone)?;
        let mut line = String::new();
        BufReader::new(self.stream)
            .read_line(&mut line)
            .map_err(gone)?;
        match serde_json::from_str::<Written>(&line) {
            Ok(Written { error: None }) => Ok(()),
            Ok(Written { error: Some(why) }) => Err(why),
            Err(_) => Err("the client did not say whether it wrote the file".into()),
        }
    }
}

/// Runs one client's command and sends its output and exit code.
fn answer(stream: &UnixStream, shared: &Shared, actor: String) {
    let mut out = LineWriter::new(FrameWriter { stream, err: false });
    let mut err = LineWriter::new(FrameWriter { stream, err: true });
    let code = match run_request(stream, shared, actor.clone(), &mut out, &mut err) {
        Ok(code) => code,
        Err(failure) => {
            // The operator sees it; the service's log keeps it (a cut upload, a refusal).
            tracing::warn!(%actor, code = failure.code(), error = failure.message(), "control socket: command failed");
            say!(err, "belajar-sync: {}", failure.message());
            failure.code()
        }
    };
    let _ = out.flush();
    let _ = err.flush();
    if send(stream, &Frame::Exit(code)).is_err() {
        tracing::info!("control socket: the client left before the answer");
    }
}

fn run_request(
    stream: &UnixStream,
    shared: &Shared,
    actor: String,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u8, Failure> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| Failure::Runtime(format!("control socket: {e}")))?;
    let request: Request = serde_json::from_str(&line)
        .map_err(|e| Failure::BadInput(format!("control socket: not a request: {e}")))?;
    if request.version != PROTOCOL {
        return Err(Failure::BadInput(format!(
            "the daemon speaks control protocol {PROTOCOL} and this request is of version {}: run the belajar-sync the daemon runs (restart the service after an upgrade)",
            request.version
        )));
    }
    let cli = Cli::try_parse_from(std::iter::once("belajar-sync".to_owned()).chain(request.argv))
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    let Command::Operator(command) = &cli.command else {
        return Err(Failure::BadInput(
            "only operator commands run through the control socket".into(),
        ));
    };
    tracing::info!(command = command.name(), %actor, "control socket: command");
    let config = shared.config();
    let upload = match (request.upload, request.length) {
        (true, Some(length)) => Some(receive(&mut reader, length, &config)?),
        (true, None) => {
            return Err(Failure::BadInput(
                "control socket: an upload must say its length".into(),
            ));
        }
        (false, _) if matches!(command, Operator::Import(_)) => {
            // The daemon may read what the operator may not: it opens no path it is told.
            return Err(Failure::BadInput(
                "an import through the control socket sends its file: the daemon opens no path named by a client".into(),
            ));
        }
        (false, _) => None,
    };
    let store = shared.store();
    let caller = Caller {
        upload: upload.as_deref(),
        progress: !cli.quiet,
        actor,
        files: Box::new(ToClient { stream }),
    };
    let mut session = Session::in_daemon(shared, &store, &config, out, err, caller);
    super::execute(&mut session, command)
}

/// What an operator command run for the web console wrote, and its exit code.
#[derive(Debug, Default)]
pub struct Ran {
    pub code: u8,
    pub out: String,
    pub err: String,
    /// Files the command made for the person (a credentials sheet): never on disk.
    pub files: Vec<(std::path::PathBuf, Vec<u8>)>,
}

/// Keeps the files a command makes, in memory, for the console to send.
struct Keep<'a>(&'a mut Vec<(std::path::PathBuf, Vec<u8>)>);

impl Deliver for Keep<'_> {
    fn deliver(&mut self, path: &Path, contents: &[u8]) -> Result<(), String> {
        self.0.push((path.to_owned(), contents.to_vec()));
        Ok(())
    }
}

/// Runs an operator command in the daemon for the web console, as `actor` (who signed
/// in, from where, for which ticket: it goes into the history of what the command
/// changes). `argv` is built by the console from checked values, never a person's text
/// where a flag could be. Runs on a blocking thread.
pub fn run_for_console(shared: &Shared, argv: Vec<String>, actor: String) -> Ran {
    let mut ran = Ran::default();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = match Cli::try_parse_from(
        ["belajar-sync".to_owned(), "--quiet".to_owned()]
            .into_iter()
            .chain(argv),
    ) {
        Ok(Cli {
            command: Command::Operator(command),
            ..
        }) => {
            let config = shared.config();
            let store = shared.store();
            let caller = Caller {
                upload: None,
                progress: false,
                actor,
                files: Box::new(Keep(&mut ran.files)),
            };
            let mut session =
                Session::in_daemon(shared, &store, &config, &mut out, &mut err, caller);
            super::execute(&mut session, &command).unwrap_or_else(|failure| {
                say!(session.err, "{}", failure.message());
                failure.code()
            })
        }
        Ok(_) => 2,
        Err(e) => {
            let _ = write!(err, "{e}");
            2
        }
    };
    ran.code = code;
    ran.out = String::from_utf8_lossy(&out).into_owned();
    ran.err = String::from_utf8_lossy(&err).into_owned();
    ran
}

/// Receives an upload of `length` bytes and its trailer into a file of the data folder
/// (the daemon's), kept while the command reads it. An upload cut short or damaged is
/// refused whole: the command never sees part of a file.
fn receive(
    reader: &mut impl BufRead,
    length: u64,
    config: &crate::config::Config,
) -> Result<tempfile::TempPath, Failure> {
    let cap = config.daemon.max_upload_mb.saturating_mul(1024 * 1024);
    if length > cap {
        return Err(Failure::BadInput(format!(
            "the file is {} MB, over the daemon's max_upload_mb = {}: nothing was imported",
            length.div_ceil(1024 * 1024),
            config.daemon.max_upload_mb
        )));
    }
    let file = tempfile::NamedTempFile::new_in(&config.data_dir)
        .map_err(|e| Failure::Runtime(format!("cannot keep the uploaded file: {e}")))?;
    let mut hashing = Hashing::new(std::io::BufWriter::new(file));
    let received = std::io::copy(&mut std::io::Read::take(&mut *reader, length), &mut hashing)
        .map_err(|e| Failure::Runtime(format!("receiving the file: {e}")))?;
    let cut = || {
        Failure::BadInput(format!(
            "the upload was cut short ({received} of {length} bytes arrived): nothing was imported"
        ))
    };
    if received < length {
        return Err(cut());
    }
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| Failure::Runtime(format!("receiving the file: {e}")))?;
    let trailer: Trailer = serde_json::from_str(&line).map_err(|_| cut())?;
    let (writer, digest) = hashing.finish();
    if trailer.sha256 != hex(&digest) {
        return Err(Failure::BadInput(
            "the upload arrived damaged (its checksum differs): nothing was imported".into(),
        ));
    }
    let file = writer
        .into_inner()
        .map_err(|e| Failure::Runtime(format!("cannot keep the uploaded file: {}", e.error())))?;
    Ok(file.into_temp_path())
}

/// Binds the control socket at `path` (mode 0660), replacing one no daemon answers at.
pub fn bind(path: &Path) -> Result<Option<tokio::net::UnixListener>, Failure> {
    use std::os::unix::fs::PermissionsExt;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    let bad = |what: &str, e: std::io::Error| {
        Failure::BadInput(format!(
            "daemon.control_socket {}: {what}: {e}",
            path.display()
        ))
    };
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder).map_err(|e| bad("cannot create its folder", e))?;
    }
    if UnixStream::connect(path).is_ok() {
        return Err(Failure::BadInput(format!(
            "daemon.control_socket {}: another daemon answers there",
            path.display()
        )));
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad("cannot remove the old socket", e)),
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(|e| bad("cannot listen", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| bad("cannot set its mode", e))?;
    Ok(Some(listener))
}

impl Operator {
    fn name(&self) -> &'static str {
        match self {
            Operator::Import(_) => "import",
            Operator::Show(_) => "show",
            Operator::Status(_) => "status",
            Operator::List(_) => "list",
            Operator::Plan(_) => "plan",
            Operator::Sync(_) => "sync",
            Operator::Resync(_) => "resync",
            Operator::Suspend(_) => "suspend",
            Operator::Reinstate(_) => "reinstate",
            Operator::Credentials(_) => "credentials",
            Operator::ResetPassword(_) => "reset-password",
            Operator::Report(_) => "report",
            Operator::Release(_) => "release",
            Operator::Rebuild(_) => "rebuild",
            Operator::Backup(_) => "backup",
            Operator::Web(_) => "web",
        }
    }
}
