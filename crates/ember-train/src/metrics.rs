use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`. Step lines carry the mean training loss since the previous line;
/// epoch lines add the test-set evaluation. Optional fields are omitted when absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsRecord {
    /// `"step"` or `"epoch"`.
    pub kind: String,
    /// Optimizer steps taken so far (1-based after the first step).
    pub step: u64,
    /// Epoch in progress (1-based).
    pub epoch: usize,
    /// Mean training loss over the steps since the previous record (epoch lines: over the epoch).
    pub train_loss: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_accuracy: Option<f64>,
    /// Learning rate of the most recent step.
    pub lr: f64,
    /// Seconds of training since the run started (excluding time before a resume's restart).
    pub wall_time_s: f64,
    /// Training images per second over the interval this line covers (excludes evaluation).
    pub images_per_s: f64,
    /// Forward passes per optimizer step over the interval (epoch lines include the passes of an
    /// SVRG / VAMO snapshot): 1 for per-parameter optimizers, 4 for GAM, `q + 2` for VAMO, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_passes: Option<f64>,
    /// Backward passes per optimizer step over the interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backward_passes: Option<f64>,
    /// Scalars the optimizer reports on epoch lines (e.g. VAMO's `alpha`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub diagnostics: std::collections::BTreeMap<String, f64>,
}

/// Appends records to `metrics.jsonl`, one JSON object per line, flushed per line so a crash loses
/// at most the line being written.
pub struct MetricsWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl MetricsWriter {
    /// Opens `path` for appending, first cutting it to `keep_bytes` (the length recorded with the
    /// checkpoint a run resumes from), so lines from the lost tail of an interrupted epoch vanish.
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

    pub fn write(&mut self, record: &MetricsRecord) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }

    /// Bytes written so far (after flushing).
    pub fn len(&mut self) -> std::io::Result<u64> {
        self.out.flush()?;
        Ok(std::fs::metadata(&self.path)?.len())
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&mut self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Reads every record of a `metrics.jsonl` file.
pub fn read_metrics(path: &Path) -> std::io::Result<Vec<MetricsRecord>> {
    let text = std::fs::read_to_string(path)?;
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
