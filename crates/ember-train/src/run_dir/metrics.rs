//! `metrics.jsonl`: one JSON object per line, a [`MetricsRecord`] each.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{EvalSplit, Evaluation};

/// What a metrics line reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// The mean training loss of the steps since the previous line.
    Step,
    /// The end of a round: its mean training loss and an evaluation (files written before
    /// evaluation rounds existed call it `"epoch"`).
    #[serde(alias = "epoch")]
    Eval,
}

/// One line of `metrics.jsonl`.
///
/// A run is a sequence of *rounds*, each some optimizer steps followed by an evaluation and a
/// checkpoint: an epoch for image classification, `eval_every` steps for language modelling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RecordFile")]
pub struct MetricsRecord {
    /// A training log line or an evaluation.
    pub kind: RecordKind,
    /// Optimizer steps taken so far (1-based after the first step).
    pub step: u64,
    /// The round in progress (1-based).
    pub round: usize,
    /// Mean training loss over the steps since the previous record (eval lines: over the round).
    pub train_loss: f64,
    /// Learning rate of the most recent step.
    pub lr: f64,
    /// Seconds of training since the run started (excluding time before a resume's restart).
    pub wall_time_s: f64,
    /// Training items (images, tokens) per second over the interval this line covers, evaluation
    /// excluded.
    pub items_per_s: f64,
    /// Forward passes per optimizer step over the interval (eval lines include the passes of an
    /// SVRG / VAMO snapshot): 1 for per-parameter optimizers, 4 for GAM, `q + 2` for VAMO, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_passes: Option<f64>,
    /// Backward passes per optimizer step over the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backward_passes: Option<f64>,
    /// The evaluation at the end of the round (eval lines only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<Evaluation>,
    /// Scalars the optimizer reports on eval lines (e.g. VAMO's `alpha`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub diagnostics: BTreeMap<String, f64>,
}

impl MetricsRecord {
    /// The evaluation's value of `metric` (`loss`, `accuracy`, …), on eval lines.
    pub fn eval_metric(&self, metric: &str) -> Option<f64> {
        self.eval.as_ref().and_then(|e| e.metric(metric))
    }
}

/// A line as read: today's fields, or those of files written before the run folder had one
/// contract (`epoch`, `images_per_s`, `test_loss`, `test_accuracy`).
#[derive(Deserialize)]
struct RecordFile {
    kind: RecordKind,
    step: u64,
    #[serde(alias = "epoch")]
    round: usize,
    train_loss: f64,
    lr: f64,
    wall_time_s: f64,
    #[serde(alias = "images_per_s")]
    items_per_s: f64,
    #[serde(default)]
    forward_passes: Option<f64>,
    #[serde(default)]
    backward_passes: Option<f64>,
    #[serde(default)]
    eval: Option<Evaluation>,
    #[serde(default)]
    test_loss: Option<f64>,
    #[serde(default)]
    test_accuracy: Option<f64>,
    #[serde(default)]
    diagnostics: BTreeMap<String, f64>,
}

impl From<RecordFile> for MetricsRecord {
    fn from(f: RecordFile) -> Self {
        // A legacy line's split is not in the line: `RunDir::read_metrics` sets it from the
        // run's config.json (test unless the run evaluated on a validation split).
        let eval = f.eval.or_else(|| {
            f.test_loss.map(|loss| Evaluation {
                split: EvalSplit::Test,
                loss,
                metrics: f
                    .test_accuracy
                    .map(|a| BTreeMap::from([("accuracy".to_string(), a)]))
                    .unwrap_or_default(),
            })
        });
        Self {
            kind: f.kind,
            step: f.step,
            round: f.round,
            train_loss: f.train_loss,
            lr: f.lr,
            wall_time_s: f.wall_time_s,
            items_per_s: f.items_per_s,
            forward_passes: f.forward_passes,
            backward_passes: f.backward_passes,
            eval,
            diagnostics: f.diagnostics,
        }
    }
}

/// Appends records to `metrics.jsonl`, one JSON object per line, flushed per line so a crash loses
/// at most the line being written.
pub struct MetricsWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsWriter {
    /// Opens `path` for appending, first cutting it to `keep_bytes` (the length recorded with the
    /// checkpoint a run resumes from), so lines from the lost tail of an interrupted round vanish.
    ///
    /// # Errors
    ///
    /// The file cannot be opened or cut.
    pub fn open(path: &Path, keep_bytes: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        if file.metadata()?.len() > keep_bytes {
            file.set_len(keep_bytes)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    /// Appends one line.
    ///
    /// # Errors
    ///
    /// The line cannot be written.
    pub fn write(&mut self, record: &MetricsRecord) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Bytes written so far (after flushing).
    ///
    /// # Errors
    ///
    /// The file's length cannot be read.
    pub fn len(&mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Whether nothing has been written yet.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    pub fn is_empty(&mut self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Every record of the `metrics.jsonl` text `text` (read from `path`, named in errors).
pub(super) fn parse_metrics(path: &Path, text: &str) -> std::io::Result<Vec<MetricsRecord>> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} line {}: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_epoch_lines_read_as_eval_lines() {
        let old = r#"{"kind":"epoch","step":16,"epoch":2,"train_loss":0.5,"test_loss":0.25,"test_accuracy":0.75,"lr":0.1,"wall_time_s":3.0,"images_per_s":100.0,"forward_passes":1.0,"backward_passes":1.0}"#;
        let record: MetricsRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.kind, RecordKind::Eval);
        assert_eq!((record.round, record.items_per_s), (2, 100.0));
        assert_eq!(record.eval_metric("accuracy"), Some(0.75));
        assert_eq!(record.eval_metric("loss"), Some(0.25));
        let step = r#"{"kind":"step","step":4,"epoch":1,"train_loss":0.9,"lr":0.1,"wall_time_s":1.0,"images_per_s":90.0}"#;
        let record: MetricsRecord = serde_json::from_str(step).unwrap();
        assert_eq!((record.kind, record.eval), (RecordKind::Step, None));
    }

    #[test]
    fn new_lines_round_trip_and_name_their_split() {
        let record = MetricsRecord {
            kind: RecordKind::Eval,
            step: 8,
            round: 1,
            train_loss: 1.5,
            lr: 0.01,
            wall_time_s: 2.0,
            items_per_s: 512.0,
            forward_passes: Some(1.0),
            backward_passes: Some(1.0),
            eval: Some(Evaluation {
                split: EvalSplit::Validation,
                loss: 1.25,
                metrics: BTreeMap::from([("bits_per_char".to_string(), 1.8)]),
            }),
            diagnostics: BTreeMap::new(),
        };
        let line = serde_json::to_string(&record).unwrap();
        assert!(
            line.contains(r#""kind":"eval""#)
                && line.contains(r#""split":"validation""#)
                && line.contains(r#""bits_per_char":1.8"#),
            "{line}"
        );
        assert_eq!(
            serde_json::from_str::<MetricsRecord>(&line).unwrap(),
            record
        );
    }
}
