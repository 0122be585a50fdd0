//! The results journal of the embedded store: every accepted set of results as one JSON line
//! (`{"results": [...]}`) in `results.jsonl` under `features.results_dir`, written and
//! fsynced before the request is answered, and replayed at start, so a restart keeps what
//! was ingested.
//!
//! A set is one line, so it is applied whole or not at all. A crash in the middle of a write
//! leaves a last line without its newline, or one that is not JSON: at start that line is
//! reported (logged as an error, and moved whole to `results.jsonl.torn` beside the journal,
//! appended) and the journal cut back to the end of the last whole line. Its request was
//! never answered, so its sender retries it; nothing of it is applied. Any other bad line,
//! including a whole last line whose results the validator refuses, is not a crash: the
//! server refuses to start rather than drop what it acknowledged. Lines are read by the
//! validator that accepted them ([`ResultBody::to_game`]), so what was accepted replays.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::results::{ResultBody, ResultError, ResultsBody};
use crate::games::Game;

const FILE: &str = "results.jsonl";
const TORN: &str = "results.jsonl.torn";

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    /// Open for appending once the first set is written (or the journal existed).
    file: Option<File>,
}

/// What a journal held at start.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Each accepted set, in the order accepted.
    pub sets: Vec<Vec<Game>>,
    pub torn: Option<TornLine>,
}

/// The last line, cut by a crash mid-write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Its line number (from 1) and length in bytes.
    pub line: usize,
    pub bytes: usize,
    /// Where its bytes were kept.
    pub kept_in: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot read or write the results journal {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "line {line} of the results journal {path} cannot be read ({problem}); it is not \
         the last line, so it is not a crash mid-write: fix or remove the file"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        problem: String,
    },
}

impl Journal {
    /// Opens the journal in `dir` (created on the first write) and reads what it holds.
    pub fn open(dir: &Path) -> Result<(Self, Replayed), JournalError> {
        let path = dir.join(FILE);
        let io_error = |source| JournalError::Io {
            path: path.clone(),
            source,
        };
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok((Self { path, file: None }, Replayed::default()));
            }
            Err(error) => return Err(io_error(error)),
        };
        let mut replayed = Replayed::default();
        let mut offset = 0;
        let mut lines = text
            .split_inclusive(|byte| *byte == b'\n')
            .enumerate()
            .peekable();
        while let Some((index, line)) = lines.next() {
            let last = lines.peek().is_none();
            // Only the last piece can lack its newline.
            let parsed = if line.ends_with(b"\n") {
                parse_line(line)
            } else {
                Err(LineError::Unfinished)
            };
            match parsed {
                Ok(set) => replayed.sets.push(set),
                // Only what a write cut short looks like is a crash mid-write; a whole line
                // that the results' validator refuses was acknowledged, and is never dropped.
                Err(LineError::Unfinished | LineError::NotJson(_)) if last => {
                    let kept_in = dir.join(TORN);
                    keep_torn(&kept_in, line).map_err(io_error)?;
                    cut(&path, offset).map_err(io_error)?;
                    replayed.torn = Some(TornLine {
                        line: index + 1,
                        bytes: line.len(),
                        kept_in,
                    });
                }
                Err(problem) => {
                    return Err(JournalError::Corrupt {
                        path: path.clone(),
                        line: index + 1,
                        problem: problem.to_string(),
                    });
                }
            }
            offset += line.len();
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_error)?;
        Ok((
            Self {
                path,
                file: Some(file),
            },
            replayed,
        ))
    }

    /// Appends one set of results and waits until it is on disk.
    pub fn append(&mut self, games: &[Game]) -> Result<(), JournalError> {
        let io_error = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        let body = ResultsBody {
            results: games.iter().map(ResultBody::of).collect(),
            correct: true,
        };
        let mut line = serde_json::to_vec(&body).map_err(|e| io_error(io::Error::other(e)))?;
        line.push(b'\n');
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir).map_err(io_error)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(io_error)?;
            // The folder's entry for a new file must be durable too.
            if let Some(dir) = self.path.parent() {
                File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(io_error)?;
            }
            self.file = Some(file);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(&line).map_err(io_error)?;
        file.sync_data().map_err(io_error)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a line of the journal cannot be replayed.
#[derive(Debug, thiserror::Error)]
enum LineError {
    #[error("the line has no end")]
    Unfinished,
    #[error("not a set of results: {0}")]
    NotJson(serde_json::Error),
    /// Refused by the validator that accepted it when it was posted: never a crash.
    #[error(transparent)]
    Invalid(#[from] ResultError),
}

/// A line's results through the same validator that accepted them ([`ResultBody::to_game`]).
fn parse_line(line: &[u8]) -> Result<Vec<Game>, LineError> {
    let body: ResultsBody = serde_json::from_slice(line).map_err(LineError::NotJson)?;
    body.results
        .iter()
        .enumerate()
        .map(|(index, result)| Ok(result.to_game(&format!("results[{index}]"))?))
        .collect()
}

fn keep_torn(path: &Path, line: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(line)?;
    if !line.ends_with(b"\n") {
        file.write_all(b"\n")?;
    }
    file.sync_all()
}

fn cut(path: &Path, length: usize) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(length as u64)?;
    file.sync_all()
}
