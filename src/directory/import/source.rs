//! Reading Dapodik exports: CSV (header row, optional BOM, CRLF or LF, RFC 4180 quoting)
//! and JSON Lines. Both give the same raw rows, each with its line number; a row that
//! cannot be read is an invalid row, a file that cannot be read at all is a file error.

use super::Invalid;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

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

/// One row as read: each column's text, `None` when the file has no such column (or the
/// JSON object no such key), the empty string when the cell is empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRow {
    pub line: u64,
    pub span: Span,
    pub cells: [Option<String>; COLUMNS.len()],
}

impl RawRow {
    pub fn cell(&self, column: &str) -> Option<&str> {
        let i = COLUMNS.iter().position(|c| *c == column)?;
        self.cells[i].as_deref()
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
    pub rows: Box<dyn Iterator<Item = Result<RawRow, Invalid>>>,
    pub unknown_columns: BTreeSet<String>,
    /// How to read a row again by its span.
    pub layout: Layout,
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

    fn unreadable(&self, source: std::io::Error) -> FileError {
        FileError::Unreadable {
            path: self.name.clone(),
            source,
        }
    }

    /// Opens the file and reads its rows; `wrap` sees every byte read (progress).
    pub fn rows(&self, wrap: impl FnOnce(File) -> Box<dyn Read>) -> Result<Rows, FileError> {
        let file = File::open(&self.path).map_err(|e| self.unreadable(e))?;
        let mut reader = BufReader::with_capacity(1 << 16, wrap(file));
        let start = skip_bom(&mut reader).map_err(|e| self.unreadable(e))?;
        match self.format {
            Format::Csv => self.csv_rows(reader, start),
            Format::Jsonl => Ok(jsonl_rows(reader, start)),
        }
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

    fn csv_rows(&self, reader: BufReader<Box<dyn Read>>, start: u64) -> Result<Rows, FileError> {
        // Records end at `\n` only, and the `\r` of a CRLF file is cut from the last cell:
        // with CRLF as terminator, csv reports the line before the record's first line.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_reader(reader);
        let header = csv.headers().map_err(|e| FileError::BadHeader {
            path: self.name.clone(),
            detail: e.to_string(),
        })?;
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
                found: names.join(", "),
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
            Err(e) => Some(Err(csv_error(&e))),
        });
        Ok(Rows {
            rows: Box::new(rows),
            unknown_columns,
            layout,
        })
    }
}

fn csv_row(record: &csv::StringRecord, index: &[Option<usize>], line: u64, span: Span) -> RawRow {
    let mut row = RawRow {
        line,
        span,
        ..RawRow::default()
    };
    for (cell, i) in row.cells.iter_mut().zip(index) {
        *cell = i.map(|i| {
            let text = record.get(i).unwrap_or_default();
            text.strip_suffix('\r').unwrap_or(text).to_owned()
        });
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

fn jsonl_rows(mut reader: BufReader<Box<dyn Read>>, start: u64) -> Rows {
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
    Rows {
        rows: Box::new(rows),
        // JSON Lines name their keys per row; unknown keys are ignored row by row.
        unknown_columns: BTreeSet::new(),
        layout: Layout::Jsonl,
    }
}

fn jsonl_row(line: u64, bytes: &[u8]) -> Result<RawRow, Invalid> {
    let object: HashMap<String, serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Invalid::row(line, format!("not a JSON object: {e}")))?;
    let mut row = RawRow {
        line,
        ..RawRow::default()
    };
    for (cell, column) in row.cells.iter_mut().zip(COLUMNS) {
        *cell = match object.get(column) {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => {
                return Err(Invalid::new(
                    line,
                    column,
                    &other.to_string(),
                    "must be a JSON string (numbers lose leading zeros)",
                ));
            }
        };
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
        Ok((rows.rows.collect(), rows.unknown_columns))
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
