//! Text for language modelling: one UTF-8 file or a folder of documents, tokenised, split into
//! train / validation / test, and cut into context windows.
//!
//! * **Tokenisation** ([`Vocabulary`]): `bytes` (256 tokens, any file, no decoding) or `chars`
//!   (the corpus's distinct Unicode characters in code-point order; the file must be UTF-8). A
//!   character vocabulary is stored in the run folder as its characters in order
//!   ([`Vocabulary::to_text`]), so that sampling decodes exactly what training encoded.
//! * **Split** ([`TextCorpus::split`]): a single file by position — the first 90 % of its tokens
//!   train, the next 5 % validation, the last 5 % test (with the default `holdout_every = 20`); a
//!   folder by document — its files sorted by name, document `i` is validation when
//!   `i mod 20 = 18`, test when `i mod 20 = 19`, train otherwise, so that no document is cut.
//! * **Windows** ([`TokenSplit::train_window_starts`]): the training windows of step `s` are a pure
//!   function of `(seed, s)`, so a resumed run sees the windows an uninterrupted one would.
//!   Evaluation uses fixed consecutive windows from the start of its split
//!   ([`TokenSplit::eval_window_starts`]).

use std::path::{Path, PathBuf};

use rand::RngExt;
use rand_pcg::Pcg64;

use crate::error::{DataError, Result};
use crate::random::mix;

/// How text becomes tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokenization {
    /// Each byte is a token (vocabulary 256); bits per token are bits per byte.
    Bytes,
    /// Each Unicode character is a token, over the corpus's characters; bits per character.
    Chars,
}

impl std::str::FromStr for Tokenization {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bytes" => Ok(Tokenization::Bytes),
            "chars" => Ok(Tokenization::Chars),
            other => Err(format!("unknown tokenisation `{other}` (bytes or chars)")),
        }
    }
}

/// The tokens of a corpus and how to turn them back into text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Vocabulary {
    /// Every byte is a token (256 of them); any text decodes.
    Bytes,
    /// The characters, in code-point order; token `i` is `chars[i]`.
    Chars(Vec<char>),
}

impl Vocabulary {
    /// The distinct characters of `texts`, in code-point order.
    pub fn chars_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut chars: Vec<char> = texts.into_iter().flat_map(str::chars).collect();
        chars.sort_unstable();
        chars.dedup();
        Vocabulary::Chars(chars)
    }

    /// Number of distinct tokens (the model's vocabulary size).
    pub fn size(&self) -> usize {
        match self {
            Vocabulary::Bytes => 256,
            Vocabulary::Chars(chars) => chars.len(),
        }
    }

    /// How text becomes tokens under this vocabulary.
    pub fn tokenization(&self) -> Tokenization {
        match self {
            Vocabulary::Bytes => Tokenization::Bytes,
            Vocabulary::Chars(_) => Tokenization::Chars,
        }
    }

    /// The tokens of `text`; a character outside a character vocabulary is an error naming it.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Vocabulary::Bytes => Ok(text.bytes().map(u32::from).collect()),
            Vocabulary::Chars(chars) => text
                .chars()
                .map(|c| {
                    chars
                        .binary_search(&c)
                        .map(|i| i as u32)
                        .map_err(|_| DataError::Invalid {
                            field: "text",
                            message: format!(
                                "the character {c:?} (U+{:04X}) is not in the corpus's vocabulary \
                                 of {} characters",
                                c as u32,
                                chars.len()
                            ),
                        })
                })
                .collect(),
        }
    }

    /// The text of `tokens` (bytes that are not UTF-8 become U+FFFD); out-of-range tokens are
    /// skipped.
    pub fn decode(&self, tokens: &[u32]) -> String {
        match self {
            Vocabulary::Bytes => {
                let bytes: Vec<u8> = tokens
                    .iter()
                    .filter_map(|&t| u8::try_from(t).ok())
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Vocabulary::Chars(chars) => tokens
                .iter()
                .filter_map(|&t| chars.get(t as usize))
                .collect(),
        }
    }

    /// The vocabulary as stored in a run folder: empty for bytes (the file's absence or
    /// emptiness means bytes), else its characters in order.
    pub fn to_text(&self) -> String {
        match self {
            Vocabulary::Bytes => String::new(),
            Vocabulary::Chars(chars) => chars.iter().collect(),
        }
    }

    /// Reads [`Self::to_text`] back; characters out of order or repeated mean the file was
    /// edited or is not a vocabulary.
    pub fn from_text(text: &str, path: &Path) -> Result<Self> {
        if text.is_empty() {
            return Ok(Vocabulary::Bytes);
        }
        let chars: Vec<char> = text.chars().collect();
        if chars.windows(2).any(|w| w[0] >= w[1]) {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                message: "not a vocabulary: its characters must be distinct and in code-point \
                          order"
                    .into(),
            });
        }
        Ok(Vocabulary::Chars(chars))
    }
}

/// One document of a corpus: its file and its bytes.
#[derive(Clone, Debug)]
struct Document {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Text read from one file or a folder, ready to tokenise and split.
#[derive(Clone, Debug)]
pub struct TextCorpus {
    source: PathBuf,
    documents: Vec<Document>,
    /// True for a single file (split by position), false for a folder (split by document).
    single_file: bool,
}

/// One split of a corpus as tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSplit {
    /// Token ids in text order, each below the vocabulary's size.
    pub tokens: Vec<u32>,
}

/// A corpus tokenised and split.
#[derive(Clone, Debug)]
pub struct TextSplits {
    /// The tokens' meaning, shared by the three splits.
    pub vocabulary: Vocabulary,
    /// What the model trains on.
    pub train: TokenSplit,
    /// What settings are chosen by.
    pub validation: TokenSplit,
    /// Held out for the final numbers.
    pub test: TokenSplit,
}

impl TextCorpus {
    /// Reads `path`: a file, or every regular file of a folder (not recursive, sorted by name;
    /// hidden files skipped). An empty file, or a folder without a non-empty file, is an error.
    pub fn read(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(DataError::io(path))?;
        let read = |file: &Path| -> Result<Document> {
            Ok(Document {
                path: file.to_path_buf(),
                bytes: std::fs::read(file).map_err(DataError::io(file))?,
            })
        };
        if meta.is_file() {
            let document = read(path)?;
            if document.bytes.is_empty() {
                return Err(DataError::Layout {
                    path: path.to_path_buf(),
                    message: "the text file is empty".into(),
                });
            }
            return Ok(Self {
                source: path.to_path_buf(),
                documents: vec![document],
                single_file: true,
            });
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(DataError::io(path))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
            })
            .collect();
        files.sort();
        let documents: Vec<Document> = files
            .iter()
            .map(|f| read(f))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|d| !d.bytes.is_empty())
            .collect();
        if documents.is_empty() {
            return Err(DataError::Layout {
                path: path.to_path_buf(),
                message: "the folder holds no text (no non-empty, non-hidden file)".into(),
            });
        }
        Ok(Self {
            source: path.to_path_buf(),
            documents,
            single_file: false,
        })
    }

    /// The documents' texts, each checked to be UTF-8 (an error names the file and the byte
    /// offset of the first invalid sequence).
    fn texts(&self) -> Result<Vec<&str>> {
        self.documents
            .iter()
            .map(|d| {
                std::str::from_utf8(&d.bytes).map_err(|e| DataError::NotUtf8 {
                    path: d.path.clone(),
                    offset: e.valid_up_to(),
                })
            })
            .collect()
    }

    /// Tokenises and splits the corpus (see the module's documentation); `holdout_every` (≥ 3)
    /// gives validation and test one part in `holdout_every` each. Each split must hold at least
    /// `min_tokens` tokens (one context window and its next token), else the error names the
    /// split and its size.
    pub fn split(
        &self,
        tokenization: Tokenization,
        holdout_every: usize,
        min_tokens: usize,
    ) -> Result<TextSplits> {
        if holdout_every < 3 {
            return Err(DataError::Invalid {
                field: "holdout_every",
                message: format!(
                    "must be at least 3 (train, validation, test), got {holdout_every}"
                ),
            });
        }
        let vocabulary = match tokenization {
            Tokenization::Bytes => Vocabulary::Bytes,
            Tokenization::Chars => Vocabulary::chars_of(self.texts()?),
        };
        let encode = |d: &Document| -> Result<Vec<u32>> {
            match &vocabulary {
                Vocabulary::Bytes => Ok(d.bytes.iter().map(|&b| u32::from(b)).collect()),
                chars => chars.encode(std::str::from_utf8(&d.bytes).expect("checked above")),
            }
        };
        let (mut train, mut validation, mut test) = (Vec::new(), Vec::new(), Vec::new());
        if self.single_file {
            let tokens = encode(&self.documents[0])?;
            let held = tokens.len() / holdout_every;
            let train_end = tokens.len() - 2 * held;
            train.extend_from_slice(&tokens[..train_end]);
            validation.extend_from_slice(&tokens[train_end..train_end + held]);
            test.extend_from_slice(&tokens[train_end + held..]);
        } else {
            if self.documents.len() < 3 {
                return Err(DataError::Layout {
                    path: self.source.clone(),
                    message: format!(
                        "a folder is split by document and needs at least 3 documents, it has {}",
                        self.documents.len()
                    ),
                });
            }
            for (i, d) in self.documents.iter().enumerate() {
                // A folder smaller than `holdout_every` still gets one document each.
                let slot = if self.documents.len() < holdout_every {
                    match i {
                        i if i + 2 == self.documents.len() => holdout_every - 2,
                        i if i + 1 == self.documents.len() => holdout_every - 1,
                        _ => 0,
                    }
                } else {
                    i % holdout_every
                };
                let out = match slot {
                    s if s == holdout_every - 2 => &mut validation,
                    s if s == holdout_every - 1 => &mut test,
                    _ => &mut train,
                };
                out.extend(encode(d)?);
            }
        }
        for (name, tokens) in [
            ("train", &train),
            ("validation", &validation),
            ("test", &test),
        ] {
            if tokens.len() < min_tokens {
                return Err(DataError::Layout {
                    path: self.source.clone(),
                    message: format!(
                        "the {name} split has {} tokens, fewer than one context window and its \
                         next token ({min_tokens}); use a longer text or a shorter context",
                        tokens.len()
                    ),
                });
            }
        }
        Ok(TextSplits {
            vocabulary,
            train: TokenSplit { tokens: train },
            validation: TokenSplit { tokens: validation },
            test: TokenSplit { tokens: test },
        })
    }
}

impl TokenSplit {
    /// How many windows of `context` tokens (plus the next token each) fit: start positions are
    /// `0..windows`.
    fn window_count(&self, context: usize) -> usize {
        self.tokens.len().saturating_sub(context)
    }

    /// The start positions of the `batch` training windows of step `step`: uniform over the
    /// split, a pure function of `(seed, step)`.
    pub fn train_window_starts(
        &self,
        seed: u64,
        step: u64,
        batch: usize,
        context: usize,
    ) -> Vec<usize> {
        let count = self.window_count(context).max(1);
        let mut rng: Pcg64 = rand::SeedableRng::seed_from_u64(mix(&[seed, 0x7E47, step]));
        (0..batch).map(|_| rng.random_range(0..count)).collect()
    }

    /// Up to `max_windows` consecutive, non-overlapping windows from the start of the split: the
    /// same every evaluation.
    pub fn eval_window_starts(&self, context: usize, max_windows: usize) -> Vec<usize> {
        let fit = self.tokens.len().saturating_sub(1) / context.max(1);
        (0..fit.min(max_windows)).map(|i| i * context).collect()
    }

    /// The window at `start`: `context` input tokens and the `context` tokens that follow each.
    pub fn window(&self, start: usize, context: usize) -> (&[u32], &[u32]) {
        (
            &self.tokens[start..start + context],
            &self.tokens[start + 1..start + context + 1],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_file_splits_by_position_and_round_trips_through_its_vocabulary() {
        let dir = tempfile::tempdir().unwrap();
        let text = "to be, or not to be: that is the question. ".repeat(10);
        let file = write(dir.path(), "play.txt", text.as_bytes());
        let splits = TextCorpus::read(&file)
            .unwrap()
            .split(Tokenization::Chars, 20, 5)
            .unwrap();
        let n = text.chars().count();
        assert_eq!(splits.validation.tokens.len(), n / 20);
        assert_eq!(splits.test.tokens.len(), n / 20);
        assert_eq!(splits.train.tokens.len(), n - 2 * (n / 20));
        let v = &splits.vocabulary;
        let all: Vec<u32> = [&splits.train, &splits.validation, &splits.test]
            .iter()
            .flat_map(|s| s.tokens.clone())
            .collect();
        assert_eq!(
            v.decode(&all),
            text,
            "the three splits are the text, in order"
        );
        assert_eq!(v.size(), 16, "' ,.:abehinoqrstu'");
        let stored = v.to_text();
        assert_eq!(Vocabulary::from_text(&stored, &file).unwrap(), *v);
        assert!(v.encode("tobe").is_ok());
        let err = v.encode("Z").unwrap_err().to_string();
        assert!(
            err.contains("'Z'") && err.contains("not in the corpus"),
            "{err}"
        );
    }

    #[test]
    fn a_folder_splits_by_document() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5 {
            write(
                dir.path(),
                &format!("doc{i}.txt"),
                format!("document {i} text ").repeat(3).as_bytes(),
            );
        }
        write(dir.path(), ".hidden", b"never read");
        let splits = TextCorpus::read(dir.path())
            .unwrap()
            .split(Tokenization::Bytes, 20, 4)
            .unwrap();
        let v = &splits.vocabulary;
        assert_eq!(
            v.decode(&splits.validation.tokens),
            "document 3 text ".repeat(3)
        );
        assert_eq!(v.decode(&splits.test.tokens), "document 4 text ".repeat(3));
        assert!(v.decode(&splits.train.tokens).starts_with("document 0"));
        assert!(!v.decode(&splits.train.tokens).contains("never"));
    }

    #[test]
    fn hostile_inputs_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let empty = write(dir.path(), "empty.txt", b"");
        let err = TextCorpus::read(&empty).unwrap_err().to_string();
        assert!(err.contains("empty.txt") && err.contains("empty"), "{err}");

        let latin1 = write(
            dir.path(),
            "latin1.txt",
            b"caf\xe9 au lait, ".repeat(20).as_slice(),
        );
        let corpus = TextCorpus::read(&latin1).unwrap();
        let err = corpus
            .split(Tokenization::Chars, 20, 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("latin1.txt") && err.contains("byte 3") && err.contains("UTF-8"),
            "{err}"
        );
        // Bytes never decode, so the same file is fine as bytes.
        assert!(corpus.split(Tokenization::Bytes, 20, 4).is_ok());

        let short = write(dir.path(), "short.txt", b"just a few words here");
        let err = TextCorpus::read(&short)
            .unwrap()
            .split(Tokenization::Bytes, 20, 65)
            .unwrap_err()
            .to_string();
        // 21 bytes: 1 for validation, 1 for test, 19 to train on.
        assert!(
            err.contains("train split has 19 tokens") && err.contains("(65)"),
            "{err}"
        );

        let nothing = dir.path().join("nothing");
        std::fs::create_dir(&nothing).unwrap();
        write(&nothing, ".DS_Store", b"x");
        let err = TextCorpus::read(&nothing).unwrap_err().to_string();
        assert!(err.contains("no text"), "{err}");

        let missing = TextCorpus::read(&dir.path().join("absent.txt"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("absent.txt"), "{missing}");

        let err = Vocabulary::from_text("ba", &empty).unwrap_err().to_string();
        assert!(err.contains("not a vocabulary"), "{err}");
    }

    #[test]
    fn training_windows_are_a_pure_function_of_seed_and_step() {
        let split = TokenSplit {
            tokens: (0..1000).collect(),
        };
        let a = split.train_window_starts(7, 42, 16, 32);
        assert_eq!(
            a,
            split.train_window_starts(7, 42, 16, 32),
            "same (seed, step)"
        );
        assert_ne!(a, split.train_window_starts(7, 43, 16, 32), "another step");
        assert_ne!(a, split.train_window_starts(8, 42, 16, 32), "another seed");
        assert!(
            a.iter().all(|&s| s + 32 < 1000),
            "every window and its next token fit"
        );
        let (input, target) = split.window(a[0], 32);
        assert_eq!(input.len(), 32);
        assert_eq!(
            target[..31],
            input[1..],
            "targets are the inputs shifted by one"
        );
        assert_eq!(split.eval_window_starts(100, 5), [0, 100, 200, 300, 400]);
        assert_eq!(
            split.eval_window_starts(100, 50).len(),
            9,
            "999 tokens after the first"
        );
    }
}
