//! Reading Dapodik exports: CSV (header row, optional BOM, CRLF or LF, RFC 4180 quoting)
//! and JSON Lines. Both give the same raw rows, each with its line number; a row that
//! cannot be read is an invalid row, a file that cannot be read at all is a file error.

use super::Invalid;
use std::cell::Cell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The columns of an export, in the order the CSV header of a template lists them.
pub const COLUMNS: [&str; 9] = [
    "id_type",
    "id",
    "full_name",
    "role",
    "jenjang",
    "npsn",
    "status",
    "birth_date",
    "personal_email",
];

/// The columns every export must have.
pub const REQUIRED: [&str; 6] = ["id_type", "id", "full_name", "role", "jenjang", "npsn"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// The format a file's extension names (`.csv`, `.jsonl`, `.ndjson`), if any.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            _ => None,
        }
    }
}

/// Where a row lies in its file, so it can be read again on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: u64,
    pub len: u32,
}

impl Span {
    /// Where the row ends in the file.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// One row as read: each column's text, `None` when the file has no such column (or the
/// JSON object no such key), the empty string when the cell is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    pub line: u64,
    pub span: Span,
    /// The cells' texts one after the other: one allocation a row, not one a cell (an
    /// import reads millions of rows, twice).
    text: String,
    /// Where each column's cell lies in `text` (in the order of [`COLUMNS`]).
    cells: [Option<(u32, u32)>; COLUMNS.len()],
}

impl RawRow {
    /// A row with no cell yet, with room for `bytes` of text.
    pub fn new(line: u64, span: Span, bytes: usize) -> RawRow {
        RawRow {
            line,
            span,
            text: String::with_capacity(bytes),
            cells: Default::default(),
        }
    }

    pub fn cell(&self, column: &str) -> Option<&str> {
        let i = COLUMNS.iter().position(|c| *c == column)?;
        let (start, end) = self.cells[i]?;
        Some(&self.text[start as usize..end as usize])
    }

    /// Sets the cell of the `i`th column (of [`COLUMNS`]); a row's text stays under 4 GiB
    /// (lines are at most 64 KiB).
    pub fn set(&mut self, i: usize, value: &str) {
        let start = self.text.len() as u32;
        self.text.push_str(value);
        self.cells[i] = Some((start, self.text.len() as u32));
    }
}

/// Why a whole file cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path}: cannot tell the format from the extension: name it .csv or .jsonl, or pass --format csv|jsonl"
    )]
    UnknownFormat { path: PathBuf },
    #[error("{path}: the header lacks the column(s) {missing} (found: {found})")]
    MissingColumns {
        path: PathBuf,
        missing: String,
        found: String,
    },
    #[error("{path}: the header row is not valid CSV: {detail}")]
    BadHeader { path: PathBuf, detail: String },
    #[error("{path} is empty: an export needs at least a header row")]
    Empty { path: PathBuf },
    #[error("{path} changed while it was imported ({detail}): import it again once it is complete")]
    Changed { path: PathBuf, detail: String },
    #[error(
        "{path}: line {line} is longer than {} KiB (a row of an export is a few hundred bytes): is this an export of accounts? Nothing was imported",
        MAX_LINE_BYTES / 1024
    )]
    LongLine { path: PathBuf, line: u64 },
    #[error("{path} is larger than {} GiB, the most an import takes: split it by level or province", limit >> 30)]
    TooBig { path: PathBuf, limit: u64 },
}

/// The longest line an export may have: a longer one makes the whole file refused, read
/// no further (memory stays bounded whatever the file holds).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Passes bytes through, counting lines, until a line grows past [`MAX_LINE_BYTES`]:
/// then it fails, and records the line in `long_line`.
struct LineLimit<R> {
    inner: R,
    /// Bytes of the current line so far.
    current: usize,
    /// The current line's number.
    line: u64,
    long_line: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(line) = self.long_line.get() {
            return Err(long_line_error(line));
        }
        let n = self.inner.read(buf)?;
        for segment in buf[..n].split_inclusive(|b| *b == b'\n') {
            self.current += segment.len();
            if self.current > MAX_LINE_BYTES + 1 {
                self.long_line.set(Some(self.line));
                return Err(long_line_error(self.line));
            }
            if segment.ends_with(b"\n") {
                self.line += 1;
                self.current = 0;
            }
        }
        Ok(n)
    }
}

fn long_line_error(line: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("line {line} is longer than {} KiB", MAX_LINE_BYTES / 1024),
    )
}

/// An export file and its format, read from the start each time `rows` is called.
pub struct Source {
    /// Where the file is read.
    path: PathBuf,
    /// What messages call it: its path, or for a file the daemon received through its
    /// control socket, the path the operator gave.
    pub name: PathBuf,
    pub format: Format,
}

/// Rows of an export, with the columns the file has that the import does not know.
pub struct Rows {
    /// Ends early at a line too long ([`Rows::finished`] then says so).
    pub rows: Box<dyn Iterator<Item = Result<RawRow, Invalid>>>,
    pub unknown_columns: BTreeSet<String>,
    /// How to read a row again by its span.
    pub layout: Layout,
    long_line: Rc<Cell<Option<u64>>>,
    name: PathBuf,
}

impl Rows {
    /// A reader of the rows' end: whether the file was read to its end, or refused for a
    /// line too long. Call once the rows are read.
    pub fn finished(&self) -> impl Fn() -> Result<(), FileError> + use<> {
        let (long_line, path) = (self.long_line.clone(), self.name.clone());
        move || match long_line.get() {
            Some(line) => Err(FileError::LongLine {
                path: path.clone(),
                line,
            }),
            None => Ok(()),
        }
    }
}

/// What reading one row on its own needs: for CSV, which file column holds each known
/// column.
#[derive(Debug, Clone)]
pub enum Layout {
    Csv(Vec<Option<usize>>),
    Jsonl,
}

impl Source {
    pub fn new(path: &Path, format: Option<Format>) -> Result<Source, FileError> {
        Source::named(path, path, format)
    }

    /// The file at `path`, called `name` in messages (its format told by `name`).
    pub fn named(path: &Path, name: &Path, format: Option<Format>) -> Result<Source, FileError> {
        let format = format
            .or_else(|| Format::from_path(name))
            .ok_or_else(|| FileError::UnknownFormat { path: name.into() })?;
        Ok(Source {
            path: path.into(),
            name: name.into(),
            format,
        })
    }

    /// The file's size in bytes, for progress.
    pub fn size_bytes(&self) -> Result<u64, FileError> {
        std::fs::metadata(&self.path)
            .map(|m| m.len())
            .map_err(|source| self.unreadable(source))
    }

    /// How many lines the file has (at least as many as its rows), read at disk speed.
    pub fn count_lines(&self) -> Result<u64, FileError> {
        Ok(self.lines_at(&[u64::MAX])?[0])
    }

    /// The line of the file each of `offsets` (in increasing order) lies on, from 1, read
    /// at disk speed.
    pub fn lines_at(&self, offsets: &[u64]) -> Result<Vec<u64>, FileError> {
        let mut lines = Vec::with_capacity(offsets.len());
        if offsets.is_empty() {
            return Ok(lines);
        }
        let mut file = File::open(&self.path).map_err(|e| self.unreadable(e))?;
        let mut buffer = vec![0u8; 1 << 18];
        let (mut line, mut at) = (1, 0u64);
        let mut wanted = offsets.iter().peekable();
        // Newlines counted a slice at a time (which the compiler vectorises).
        let newlines = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        loop {
            let read = file.read(&mut buffer).map_err(|e| self.unreadable(e))?;
            let mut from = 0;
            while let Some(&offset) = wanted.next_if(|&&o| o < at + read as u64) {
                let upto = offset.saturating_sub(at).max(from as u64) as usize;
                line += newlines(&buffer[from..upto]);
                from = upto;
                lines.push(line);
            }
            line += newlines(&buffer[from..read]);
            at += read as u64;
            if read == 0 || wanted.peek().is_none() {
                lines.extend(wanted.map(|_| line));
                return Ok(lines);
            }
        }
    }

    fn unreadable(&self, source: std::io::Error) -> FileError {
        FileError::Unreadable {
            path: self.name.clone(),
            source,
        }
    }

    /// Opens the file and reads its rows; `wrap` sees every byte read (progress).
    pub fn rows(&self, wrap: impl FnOnce(File) -> Box<dyn Read>) -> Result<Rows, FileError> {
        let file = File::open(&self.path).map_err(|e| self.unreadable(e))?;
        let long_line = Rc::new(Cell::new(None));
        let limited: Box<dyn Read> = Box::new(LineLimit {
            inner: wrap(file),
            current: 0,
            line: 1,
            long_line: long_line.clone(),
        });
        let mut reader = BufReader::with_capacity(1 << 16, limited);
        let start = skip_bom(&mut reader).map_err(|e| self.unreadable(e))?;
        let too_long = |e: &dyn fmt::Display| match long_line.get() {
            Some(line) => FileError::LongLine {
                path: self.name.clone(),
                line,
            },
            None => FileError::BadHeader {
                path: self.name.clone(),
                detail: e.to_string(),
            },
        };
        let (rows, unknown_columns, layout) = match self.format {
            Format::Csv => self.csv_rows(reader, start, long_line.clone(), too_long)?,
            Format::Jsonl => jsonl_rows(reader, start, long_line.clone()),
        };
        Ok(Rows {
            rows,
            unknown_columns,
            layout,
            long_line,
            name: self.name.clone(),
        })
    }

    /// Opens the file for reading rows one by one at their spans.
    pub fn row_reader(&self, layout: Layout) -> Result<RowReader, FileError> {
        let file = File::open(&self.path).map_err(|e| self.unreadable(e))?;
        Ok(RowReader {
            file,
            layout,
            csv: None,
            record: csv::StringRecord::new(),
            buf: Vec::new(),
        })
    }

    fn csv_rows(
        &self,
        reader: BufReader<Box<dyn Read>>,
        start: u64,
        long_line: Rc<Cell<Option<u64>>>,
        too_long: impl Fn(&dyn fmt::Display) -> FileError,
    ) -> Result<RowsRead, FileError> {
        // Records end at `\n` only, and the `\r` of a CRLF file is cut from the last cell:
        // with CRLF as terminator, csv reports the line before the record's first line.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(reader);
        let header = csv.headers().map_err(|e| too_long(&e))?;
        if header.is_empty() {
            return Err(FileError::Empty {
                path: self.name.clone(),
            });
        }
        let names: Vec<String> = header
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let missing: Vec<&str> = REQUIRED
            .into_iter()
            .filter(|r| !names.iter().any(|n| n == r))
            .collect();
        if !missing.is_empty() {
            return Err(FileError::MissingColumns {
                path: self.name.clone(),
                missing: missing.join(", "),
                found: super::summarised(&names.join(", ")),
            });
        }
        // For each known column, the index of the file's column that holds it.
        let index: Vec<Option<usize>> = COLUMNS
            .iter()
            .map(|c| names.iter().position(|n| n == c))
            .collect();
        let unknown_columns = names
            .iter()
            .filter(|n| !COLUMNS.contains(&n.as_str()))
            .cloned()
            .collect();
        let layout = Layout::Csv(index.clone());
        let mut record = csv::StringRecord::new();
        let rows = std::iter::from_fn(move || match csv.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => {
                let position = record
                    .position()
                    .cloned()
                    .unwrap_or_else(csv::Position::new);
                let span = Span {
                    offset: start + position.byte(),
                    len: u32::try_from(csv.position().byte() - position.byte()).unwrap_or(u32::MAX),
                };
                Some(Ok(csv_row(&record, &index, position.line(), span)))
            }
            // A line too long ends the file (see `Rows::finished`).
            Err(_) if long_line.get().is_some() => None,
            Err(e) => Some(Err(csv_error(&e))),
        });
        Ok((Box::new(rows), unknown_columns, layout))
    }
}

fn csv_row(record: &csv::StringRecord, index: &[Option<usize>], line: u64, span: Span) -> RawRow {
    let mut row = RawRow::new(line, span, record.as_slice().len());
    for (column, i) in index.iter().enumerate() {
        if let Some(i) = i {
            let text = record.get(*i).unwrap_or_default();
            row.set(column, text.strip_suffix('\r').unwrap_or(text));
        }
    }
    row
}

/// Reads single rows of an export by their spans (the second pass of an import).
pub struct RowReader {
    file: File,
    layout: Layout,
    /// One CSV reader for every row (building one costs more than reading a row).
    csv: Option<csv::Reader<File>>,
    record: csv::StringRecord,
    buf: Vec<u8>,
}

impl RowReader {
    pub fn read(&mut self, line: u64, span: Span) -> Result<RawRow, Invalid> {
        let cannot = |e: &dyn fmt::Display| Invalid::row(line, format!("cannot read again: {e}"));
        let mut row = match &self.layout {
            Layout::Jsonl => {
                use std::os::unix::fs::FileExt;
                self.buf.resize(span.len as usize, 0);
                self.file
                    .read_exact_at(&mut self.buf, span.offset)
                    .map_err(|e| cannot(&e))?;
                jsonl_row(line, &self.buf)?
            }
            Layout::Csv(index) => {
                let csv = match &mut self.csv {
                    Some(csv) => csv,
                    None => {
                        let file = self.file.try_clone().map_err(|e| cannot(&e))?;
                        self.csv.insert(
                            csv::ReaderBuilder::new()
                                .has_headers(false)
                                .buffer_capacity(512)
                                .terminator(csv::Terminator::Any(b'\n'))
                                .from_reader(file),
                        )
                    }
                };
                let mut position = csv::Position::new();
                position.set_byte(span.offset).set_line(line);
                csv.seek_raw(std::io::SeekFrom::Start(span.offset), position)
                    .map_err(|e| cannot(&e))?;
                match csv.read_record(&mut self.record) {
                    Ok(true) => csv_row(&self.record, index, line, span),
                    Ok(false) => {
                        return Err(Invalid::row(line, "the row has gone from the file".into()));
                    }
                    Err(e) => return Err(csv_error(&e)),
                }
            }
        };
        row.span = span;
        Ok(row)
    }
}

/// A CSV record that cannot be read, as an invalid row.
fn csv_error(error: &csv::Error) -> Invalid {
    let line = error.position().map_or(0, |p| p.line());
    let reason = match error.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("the row has {len} fields, the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_owned(),
        _ => format!("the row cannot be read: {error}"),
    };
    Invalid::row(line, reason)
}

/// Skips a UTF-8 byte order mark; returns how many bytes were skipped.
fn skip_bom(reader: &mut impl BufRead) -> std::io::Result<u64> {
    if reader.fill_buf()?.starts_with(b"\xEF\xBB\xBF") {
        reader.consume(3);
        return Ok(3);
    }
    Ok(0)
}

/// The rows, the unknown columns and the layout of a file being read.
type RowsRead = (
    Box<dyn Iterator<Item = Result<RawRow, Invalid>>>,
    BTreeSet<String>,
    Layout,
);

fn jsonl_rows(
    mut reader: BufReader<Box<dyn Read>>,
    start: u64,
    long_line: Rc<Cell<Option<u64>>>,
) -> RowsRead {
    let mut line = 0u64;
    let mut offset = start;
    let mut buf = Vec::new();
    let rows = std::iter::from_fn(move || {
        loop {
            buf.clear();
            line += 1;
            let len = match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return None,
                Ok(len) => len,
                Err(_) if long_line.get().is_some() => return None,
                Err(e) => return Some(Err(Invalid::row(line, format!("cannot read: {e}")))),
            };
            let span = Span {
                offset,
                len: u32::try_from(len).unwrap_or(u32::MAX),
            };
            offset += len as u64;
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(jsonl_row(line, &buf).map(|row| RawRow { span, ..row }));
        }
    });
    // JSON Lines name their keys per row; unknown keys are ignored row by row.
    (Box::new(rows), BTreeSet::new(), Layout::Jsonl)
}

fn jsonl_row(line: u64, bytes: &[u8]) -> Result<RawRow, Invalid> {
    let object: HashMap<String, serde_json::Value> =
        serde_json::from_slice(bytes).map_err(|e| {
            Invalid::row(
                line,
                format!("not a JSON object: {}", super::summarised(&e.to_string())),
            )
        })?;
    let mut row = RawRow::new(line, Span::default(), bytes.len());
    for (i, column) in COLUMNS.iter().enumerate() {
        match object.get(*column) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) => row.set(i, s),
            Some(other) => {
                return Err(Invalid::new(
                    line,
                    column,
                    &other.to_string(),
                    "must be a JSON string (numbers lose leading zeros)",
                ));
            }
        }
    }
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<Result<RawRow, Invalid>>, BTreeSet<String>);

    fn read(name: &str, text: &[u8]) -> Result<Read, FileError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let rows = Source::new(&path, None)?.rows(|f| Box::new(f))?;
        let finished = rows.finished();
        let read = rows.rows.collect();
        finished()?;
        Ok((read, rows.unknown_columns))
    }

    #[test]
    fn the_line_of_a_place_in_the_file_is_counted_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "ab\ncd\n\nef").unwrap();
        let source = Source::new(&path, None).unwrap();
        assert_eq!(
            source.lines_at(&[0, 2, 3, 5, 6, 7, 99]).unwrap(),
            [1, 1, 2, 2, 3, 4, 4]
        );
        assert_eq!(source.lines_at(&[]).unwrap(), Vec::<u64>::new());
        assert_eq!(source.count_lines().unwrap(), 4);
    }

    #[test]
    fn a_line_too_long_refuses_the_file_in_csv_header_rows_and_jsonl() {
        let long = "x".repeat(MAX_LINE_BYTES + 10);
        let ok = "nisn,0012345678,Ani,peserta_didik,sd,20100001\n";
        for (name, text, line) in [
            (
                "a.csv",
                format!("id_type,id,full_name,role,jenjang,npsn\n{ok}{ok}{long}\n{ok}"),
                4,
            ),
            ("b.csv", format!("{long},id\n{ok}"), 1),
            ("c.jsonl", format!("{{}}\n{long}\n{{}}\n"), 2),
        ] {
            match read(name, text.as_bytes()) {
                Err(FileError::LongLine { line: found, .. }) => assert_eq!(found, line, "{name}"),
                other => panic!("{name}: {:?}", other.map(|(rows, _)| rows.len())),
            }
        }
        // A line just under the limit is read.
        let near = format!(
            "id_type,id,full_name,role,jenjang,npsn\nnisn,0012345678,{},peserta_didik,sd,20100001\n",
            "y".repeat(MAX_LINE_BYTES - 60)
        );
        assert_eq!(read("d.csv", near.as_bytes()).unwrap().0.len(), 1);
    }

    #[test]
    fn csv_with_bom_crlf_and_quotes() {
        let text = "\u{feff}id_type,id,full_name,role,jenjang,npsn,extra\r\n\
                    nisn,0012345678,\"Siti, \"\"Ani\"\" Aminah\",peserta_didik,sd,20100001,x\r\n\
                    nik,3201234567890123,\"Budi\r\nSantoso\",pendidik,sd,20100001,y\r\n\
                    nisn,0012345679,Ani,peserta_didik,sd,20100001,z\r\n";
        let (rows, unknown) = read("a.csv", text.as_bytes()).unwrap();
        let rows: Vec<RawRow> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].cell("id_type"), Some("nisn"), "BOM stripped");
        assert_eq!(rows[0].cell("full_name"), Some("Siti, \"Ani\" Aminah"));
        assert_eq!(rows[0].cell("status"), None, "absent column");
        assert_eq!(rows[1].cell("full_name"), Some("Budi\r\nSantoso"));
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3, 5]);
        assert_eq!(unknown.into_iter().collect::<Vec<_>>(), ["extra"]);
    }

    #[test]
    fn rows_read_again_by_span_are_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            (
                "a.csv",
                "\u{feff}id_type,id,full_name,role,jenjang,npsn\r\nnisn,1,\"A,\r\nB\",r,j,n\r\nnik,2,C,r,j,n\r\n",
            ),
            (
                "b.csv",
                "npsn,jenjang,role,id,full_name,id_type\nn,j,r,nisn,1,X\n\nn,j,r,nik,2,Y",
            ),
            (
                "c.jsonl",
                "\u{feff}{\"id\":\"1\"}\n\n{\"id\":\"2\",\"full_name\":\"Ä\"}\n",
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let source = Source::new(&path, None).unwrap();
            let rows = source.rows(|f| Box::new(f)).unwrap();
            let mut again = source.row_reader(rows.layout).unwrap();
            let rows: Vec<RawRow> = rows.rows.map(Result::unwrap).collect();
            assert_eq!(rows.len(), 2, "{name}");
            for row in rows {
                assert_eq!(again.read(row.line, row.span).unwrap(), row, "{name}");
            }
        }
    }

    #[test]
    fn csv_rows_of_the_wrong_width_or_encoding_are_invalid_rows() {
        let mut text = b"id_type,id,full_name,role,jenjang,npsn\n\
                     nisn,0012345678,Ani,peserta_didik,sd\n\
                     nisn,0012345678,An\xffi,peserta_didik,sd,20100001\n\
                     nisn,0012345678,Ani,peserta_didik,sd,20100001\n"
            .to_vec();
        text.extend_from_slice(b"");
        let (rows, _) = read("a.csv", &text).unwrap();
        let errors: Vec<String> = rows
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            errors,
            [
                "line 2: the row has 5 fields, the header has 6",
                "line 3: the row is not valid UTF-8"
            ]
        );
        assert!(rows[2].is_ok(), "reading goes on after a bad row");
    }

    #[test]
    fn csv_header_without_required_columns_is_a_file_error() {
        let err = read("a.csv", b"id_type,id,name\nnisn,1,x\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("full_name, role, jenjang, npsn"), "{text}");
        assert!(matches!(
            read("a.csv", b"").unwrap_err(),
            FileError::Empty { .. }
        ));
    }

    #[test]
    fn jsonl_rows_skip_blank_lines_and_keep_line_numbers() {
        let text = "{\"id_type\":\"nisn\",\"id\":\"0012345678\",\"npsn\":null}\n\n\
                    not json\n\
                    {\"id\":12345}\n";
        let (rows, _) = read("a.jsonl", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 3);
        let first = rows[0].as_ref().unwrap();
        assert_eq!(
            (first.line, first.cell("id"), first.cell("npsn")),
            (1, Some("0012345678"), None)
        );
        assert!(
            rows[1]
                .as_ref()
                .unwrap_err()
                .to_string()
                .starts_with("line 3: not a JSON object")
        );
        assert_eq!(
            rows[2].as_ref().unwrap_err().to_string(),
            "line 4: id \"12345\": must be a JSON string (numbers lose leading zeros)"
        );
    }

    #[test]
    fn format_comes_from_the_extension() {
        assert!(matches!(
            read("a.txt", b"x").unwrap_err(),
            FileError::UnknownFormat { .. }
        ));
        assert_eq!(
            Format::from_path(Path::new("x.NDJSON")),
            Some(Format::Jsonl)
        );
    }
}
