//! The byte layout of a closure optimizer's saved state: a few named scalars of its own, then its
//! base optimizer's burn record.
//!
//! ```text
//! b"EMBERCLO" · u32 LE count · count × (u8 name length · name · f64 LE) · base optimizer bytes
//! ```

use burn::optim::ModuleOptimizer;
use burn::tensor::Bytes;

const MAGIC: &[u8; 8] = b"EMBERCLO";

/// Saved closure-optimizer state that cannot be read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosureRecordError(pub String);

impl std::fmt::Display for ClosureRecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "closure optimizer state: {}", self.0)
    }
}

impl std::error::Error for ClosureRecordError {}

/// Writes `scalars` and `base`'s record.
pub(crate) fn encode(
    scalars: &[(&str, f64)],
    base: &ModuleOptimizer,
) -> Result<Vec<u8>, ClosureRecordError> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(scalars.len() as u32).to_le_bytes());
    for (name, value) in scalars {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&value.to_le_bytes());
    }
    let base_bytes = base
        .into_bytes()
        .map_err(|e| ClosureRecordError(format!("base optimizer: {e}")))?;
    out.extend_from_slice(&base_bytes);
    Ok(out)
}

/// Reads what [`encode`] wrote: the scalars in order (their names must match `expected`) and the
/// base optimizer restored from the rest.
pub(crate) fn decode(
    bytes: &[u8],
    expected: &[&str],
    base: ModuleOptimizer,
) -> Result<(Vec<f64>, ModuleOptimizer), ClosureRecordError> {
    let truncated = || ClosureRecordError("truncated record".into());
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| ClosureRecordError("not a closure-optimizer record (bad magic)".into()))?;
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
    let count = u32::from_le_bytes(*count) as usize;
    if count != expected.len() {
        return Err(ClosureRecordError(format!(
            "expected {} scalars {expected:?}, found {count}",
            expected.len()
        )));
    }
    let mut values = Vec::with_capacity(count);
    for name in expected {
        let (&len, tail) = rest.split_first().ok_or_else(truncated)?;
        let (found, tail) = tail.split_at_checked(len as usize).ok_or_else(truncated)?;
        if found != name.as_bytes() {
            return Err(ClosureRecordError(format!(
                "expected scalar `{name}`, found `{}`",
                String::from_utf8_lossy(found)
            )));
        }
        let (value, tail) = tail.split_first_chunk::<8>().ok_or_else(truncated)?;
        values.push(f64::from_le_bytes(*value));
        rest = tail;
    }
    let base = base
        .from_bytes(Bytes::from_bytes_vec(rest.to_vec()))
        .map_err(|e| ClosureRecordError(format!("base optimizer: {e}")))?;
    Ok((values, base))
}
