//! The one error type of `ember-data`.
//!
//! Data files come from outside the program (downloads, disks, other tools), so every failure to
//! read them is an ordinary, expected event rather than a bug. Each variant therefore carries what a
//! user needs to fix the problem without a debugger: the file, the record index where it went
//! wrong, and what was expected against what was found.

use std::path::PathBuf;

/// Everything that can go wrong while reading, downloading or generating a data set.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The operating system refused to read or write a file or folder.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or folder that could not be accessed.
        path: PathBuf,
        /// The underlying operating-system error.
        #[source]
        source: std::io::Error,
    },

    /// A file ends in the middle of a record (an interrupted download or copy, most often).
    #[error(
        "{}: file ends inside record {record}: the record needs {expected} bytes but only {found} \
         remain (the file is truncated or is not in the expected format)",
        path.display()
    )]
    Truncated {
        /// The truncated file.
        path: PathBuf,
        /// Index (from 0) of the first incomplete record.
        record: usize,
        /// Bytes one record needs.
        expected: usize,
        /// Bytes left in the file for that record.
        found: usize,
    },

    /// A file does not start with the magic number of its format (wrong file, or wrong order).
    #[error("{}: bad magic number: expected {expected:#010x}, found {found:#010x}", path.display())]
    BadMagic {
        /// The file with the wrong header.
        path: PathBuf,
        /// The magic number the format requires.
        expected: u32,
        /// The first four bytes of the file, read big-endian.
        found: u32,
    },

    /// A record's class label is not below the number of classes.
    #[error(
        "{}: record {record} has label {label}, but the data set has {num_classes} classes \
         (labels must be 0..{num_classes})",
        path.display()
    )]
    BadLabel {
        /// The file holding the label.
        path: PathBuf,
        /// Index (from 0) of the record.
        record: usize,
        /// The label that was found.
        label: u32,
        /// Number of classes the label must stay below.
        num_classes: usize,
    },

    /// A file's contents could not be decoded (corrupt image, corrupt gzip stream, bad header).
    #[error("{}: cannot decode: {message}", path.display())]
    Decode {
        /// The undecodable file.
        path: PathBuf,
        /// What the decoder reported.
        message: String,
    },

    /// A downloaded file does not have the published checksum; it has been deleted.
    #[error(
        "{}: MD5 checksum mismatch: expected {expected}, found {found} (the download is corrupt \
         and was deleted; try again)",
        path.display()
    )]
    Checksum {
        /// Where the downloaded file was stored.
        path: PathBuf,
        /// The published MD5, lowercase hexadecimal.
        expected: String,
        /// The MD5 of what was received, lowercase hexadecimal.
        found: String,
    },

    /// A download failed (network, HTTP status, server closed early).
    #[error("download of {url} failed: {message}")]
    Download {
        /// The address being downloaded.
        url: String,
        /// What went wrong.
        message: String,
    },

    /// Files or folders are not arranged as the format requires (missing folder, no classes,
    /// images of different sizes, mismatched counts).
    #[error("{}: {message}", path.display())]
    Layout {
        /// The file or folder that is wrong or missing.
        path: PathBuf,
        /// What was expected and what was found.
        message: String,
    },

    /// A file that must be UTF-8 text (character tokenisation) is not.
    #[error(
        "{}: not UTF-8 text: invalid byte sequence at byte {offset} (use bytes as the \
         tokenisation, or convert the file to UTF-8)",
        path.display()
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },

    /// A parameter given by the program (not read from a file) is out of range.
    #[error("invalid {field}: {message}")]
    Invalid {
        /// Name of the offending parameter or field.
        field: &'static str,
        /// Why the value was rejected.
        message: String,
    },
}

/// Result type of every fallible function in this crate.
pub type Result<T> = std::result::Result<T, DataError>;

impl DataError {
    /// Shorthand for [`DataError::Io`], used with `map_err`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DataError {
        let path = path.into();
        move |source| DataError::Io { path, source }
    }

    /// Shorthand for [`DataError::Layout`].
    pub(crate) fn layout(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
        DataError::Layout {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`DataError::Decode`].
    pub(crate) fn decode(path: impl Into<PathBuf>, message: impl Into<String>) -> DataError {
        DataError::Decode {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`DataError::Invalid`].
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> DataError {
        DataError::Invalid {
            field,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_record_and_sizes() {
        let e = DataError::Truncated {
            path: PathBuf::from("/data/x/data_batch_2.bin"),
            record: 7,
            expected: 3073,
            found: 12,
        };
        let s = e.to_string();
        assert!(s.contains("/data/x/data_batch_2.bin"), "{s}");
        assert!(s.contains("record 7"), "{s}");
        assert!(s.contains("3073") && s.contains("12"), "{s}");

        let e = DataError::BadMagic {
            path: PathBuf::from("a.idx"),
            expected: 0x803,
            found: 0x801,
        };
        assert!(e.to_string().contains("0x00000803"), "{e}");
        assert!(e.to_string().contains("0x00000801"), "{e}");
    }
}
