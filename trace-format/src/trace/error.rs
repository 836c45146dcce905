//! Errors of reading and writing trace files: one plain sentence each,
//! naming the file, saying what is wrong and, where it helps, what to do.

use std::fmt;

/// What went wrong with a trace file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceErrorKind {
    /// The file could not be opened, read or written.
    Io { writing: bool, message: String },
    /// The file does not start with the trace magic.
    NotATrace,
    /// The file was written by a newer bpfrr with a format this one cannot read.
    NewerVersion { found: u32, supported: u32 },
    /// The file is shorter than its header says.
    Truncated { expected: u64, actual: u64 },
    /// A checksum does not match: `part` is "the header", "the directory", "block 3".
    ChecksumMismatch { part: String },
    /// The bytes are not a well-formed trace (the checksums matched, so the
    /// writer produced it, or the damage was deliberate).
    InvalidStructure { detail: String },
    /// A writer was given data that cannot form a valid trace.
    InvalidInput { detail: String },
}

/// An error about one trace file (its path, or "in-memory trace").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    file: String,
    kind: TraceErrorKind,
}

impl TraceError {
    pub fn new(file: impl Into<String>, kind: TraceErrorKind) -> Self {
        TraceError {
            file: file.into(),
            kind,
        }
    }

    pub fn kind(&self) -> &TraceErrorKind {
        &self.kind
    }

    /// The file the error is about, as shown in the message.
    pub fn file(&self) -> &str {
        &self.file
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        match &self.kind {
            TraceErrorKind::Io {
                writing: false,
                message,
            } => write!(f, "cannot read {file}: {message}"),
            TraceErrorKind::Io {
                writing: true,
                message,
            } => write!(f, "cannot write {file}: {message}"),
            TraceErrorKind::NotATrace => write!(
                f,
                "{file} is not a bpfrr trace (it does not start with the bytes \"BPFRRTRC\")"
            ),
            TraceErrorKind::NewerVersion { found, supported } => write!(
                f,
                "{file} was made by a newer bpfrr (format version {found}, this bpfrr reads up to {supported}); upgrade bpfrr to open it"
            ),
            TraceErrorKind::Truncated { expected, actual } => write!(
                f,
                "{file} is truncated: expected {expected} bytes, file has {actual} (the recording was interrupted or the copy is incomplete)"
            ),
            TraceErrorKind::ChecksumMismatch { part } => write!(
                f,
                "{file} is corrupted: the checksum of {part} does not match its contents"
            ),
            TraceErrorKind::InvalidStructure { detail } => {
                write!(f, "{file} is not a valid bpfrr trace: {detail}")
            }
            TraceErrorKind::InvalidInput { detail } => {
                write!(f, "cannot write {file}: {detail}")
            }
        }
    }
}

impl std::error::Error for TraceError {}

/// Makes a message from another library fit on one line.
pub(crate) fn one_line(message: impl fmt::Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_sentence_naming_the_file() {
        let kinds = [
            TraceErrorKind::Io {
                writing: false,
                message: "No such file or directory (os error 2)".into(),
            },
            TraceErrorKind::NotATrace,
            TraceErrorKind::NewerVersion {
                found: 3,
                supported: 1,
            },
            TraceErrorKind::Truncated {
                expected: 100,
                actual: 10,
            },
            TraceErrorKind::ChecksumMismatch {
                part: "block 2".into(),
            },
            TraceErrorKind::InvalidStructure { detail: "x".into() },
        ];
        for kind in kinds {
            let text = TraceError::new("/tmp/t.bpfrr", kind).to_string();
            assert!(text.contains("/tmp/t.bpfrr"), "{text}");
            assert!(!text.contains('\n'), "{text}");
        }
        let text = TraceError::new(
            "t",
            TraceErrorKind::NewerVersion {
                found: 3,
                supported: 1,
            },
        )
        .to_string();
        assert!(text.contains("format version 3") && text.contains("up to 1"));
    }

    #[test]
    fn one_line_flattens_whitespace() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
