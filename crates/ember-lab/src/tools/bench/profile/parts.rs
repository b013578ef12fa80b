//! A model's step as a chain of parts, each timed on its own by the profile's protocol.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

use super::{elapsed, median_ms, PartTiming, ProfileSettings};

/// A tensor flowing between parts, of the ranks the profiled models pass.
#[derive(Clone)]
pub(super) enum Value {
    /// A batch of images or feature maps, or attention's per-head tensors.
    Image(Tensor<4>),
    /// A batch of token sequences.
    Tokens(Tensor<3>),
    /// A batch of feature vectors or logits.
    Flat(Tensor<2>),
    /// The loss.
    Scalar(Tensor<1>),
}

impl Value {
    fn dims(&self) -> Vec<usize> {
        match self {
            Self::Image(t) => t.dims().to_vec(),
            Self::Tokens(t) => t.dims().to_vec(),
            Self::Flat(t) => t.dims().to_vec(),
            Self::Scalar(_) => Vec::new(),
        }
    }

    /// A standard-normal tensor of `dims` (a scalar for none).
    fn random(dims: &[usize], device: &Device, require_grad: bool) -> Self {
        let normal = Distribution::Normal(0.0, 1.0);
        let value = match *dims {
            [a, b, c, d] => Self::Image(Tensor::random([a, b, c, d], normal, device)),
            [a, b, c] => Self::Tokens(Tensor::random([a, b, c], normal, device)),
            [a, b] => Self::Flat(Tensor::random([a, b], normal, device)),
            _ => Self::Scalar(Tensor::random([1], normal, device)),
        };
        match (value, require_grad) {
            (v, false) => v,
            (Self::Image(t), true) => Self::Image(t.require_grad()),
            (Self::Tokens(t), true) => Self::Tokens(t.require_grad()),
            (Self::Flat(t), true) => Self::Flat(t.require_grad()),
            (Self::Scalar(t), true) => Self::Scalar(t.require_grad()),
        }
    }

    /// `(self · g).sum()`, or `self` for the loss (a scalar, no upstream gradient).
    fn weighted_sum(self, g: Option<&Value>) -> Tensor<1> {
        match (self, g) {
            (Self::Image(y), Some(Self::Image(g))) => y.mul(g.clone()).sum(),
            (Self::Tokens(y), Some(Self::Tokens(g))) => y.mul(g.clone()).sum(),
            (Self::Flat(y), Some(Self::Flat(g))) => y.mul(g.clone()).sum(),
            (Self::Scalar(y), _) => y,
            _ => unreachable!("an upstream gradient has its output's rank"),
        }
    }

    pub(super) fn image(self) -> Tensor<4> {
        match self {
            Self::Image(t) => t,
            _ => unreachable!("the chain passes this part an image-rank tensor"),
        }
    }

    pub(super) fn tokens(self) -> Tensor<3> {
        match self {
            Self::Tokens(t) => t,
            _ => unreachable!("the chain passes this part a token-rank tensor"),
        }
    }

    pub(super) fn flat(self) -> Tensor<2> {
        match self {
            Self::Flat(t) => t,
            _ => unreachable!("the chain passes this part a rank-2 tensor"),
        }
    }
}

/// The single input of a one-input part.
pub(super) fn one(values: Vec<Value>) -> Value {
    values.into_iter().next().expect("a part has an input")
}

/// The two inputs of a two-input part.
pub(super) fn two(values: Vec<Value>) -> (Value, Value) {
    let mut values = values.into_iter();
    match (values.next(), values.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => unreachable!("the chain passes this part two inputs"),
    }
}

/// Where a part's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    /// The network's input (the images): no gradient is asked of it.
    Network,
    /// Output `.1` of part `.0`.
    Part(usize, usize),
}

/// A part's computation, from its inputs to its outputs.
type Run = Box<dyn Fn(Vec<Value>) -> Vec<Value>>;

struct Part {
    name: String,
    kind: &'static str,
    inputs: Vec<Source>,
    run: Run,
}

/// The parts of one training step in forward order, each naming where its inputs come from.
#[derive(Default)]
pub(super) struct Chain {
    parts: Vec<Part>,
}

impl Chain {
    /// Appends a part; returns its index, for later parts' [`Source::Part`].
    pub(super) fn push(
        &mut self,
        name: impl Into<String>,
        kind: &'static str,
        inputs: Vec<Source>,
        run: impl Fn(Vec<Value>) -> Vec<Value> + 'static,
    ) -> usize {
        self.parts.push(Part {
            name: name.into(),
            kind,
            inputs,
            run: Box::new(run),
        });
        self.parts.len() - 1
    }

    /// Appends a part fed by the previous part's first output (the network input for the first).
    pub(super) fn then(
        &mut self,
        name: impl Into<String>,
        kind: &'static str,
        run: impl Fn(Vec<Value>) -> Vec<Value> + 'static,
    ) -> usize {
        let source = self.last();
        self.push(name, kind, vec![source], run)
    }

    /// The previous part's first output, or the network input if there is none yet.
    pub(super) fn last(&self) -> Source {
        match self.parts.len() {
            0 => Source::Network,
            n => Source::Part(n - 1, 0),
        }
    }

    /// Every part's forward and backward time on random inputs of the shapes `input` gives them.
    pub(super) fn time(
        &self,
        input: Value,
        s: &ProfileSettings,
        device: &Device,
    ) -> anyhow::Result<Vec<PartTiming>> {
        // One pass of the real input finds every part's input shapes.
        let mut outputs: Vec<Vec<Value>> = Vec::new();
        let mut input_dims = Vec::new();
        for part in &self.parts {
            let inputs: Vec<Value> = part
                .inputs
                .iter()
                .map(|source| match *source {
                    Source::Network => input.clone(),
                    Source::Part(p, o) => outputs[p][o].clone(),
                })
                .collect();
            input_dims.push(inputs.iter().map(Value::dims).collect::<Vec<_>>());
            outputs.push((part.run)(inputs));
        }

        let mut timings = Vec::new();
        for (part, dims) in self.parts.iter().zip(input_dims) {
            let inputs: Vec<Value> = part
                .inputs
                .iter()
                .zip(&dims)
                .map(|(source, dims)| Value::random(dims, device, *source != Source::Network))
                .collect();
            let out_dims: Vec<Vec<usize>> =
                (part.run)(inputs.clone()).iter().map(Value::dims).collect();
            let gs: Vec<Option<Value>> = out_dims
                .iter()
                .map(|d| (!d.is_empty()).then(|| Value::random(d, device, false)))
                .collect();
            let (mut forward, mut backward) = (Vec::new(), Vec::new());
            for rep in 0..s.warmup + s.reps {
                let start = Instant::now();
                let ys = (part.run)(inputs.clone());
                let f = elapsed(start, device)?;
                let start = Instant::now();
                let objective = ys
                    .into_iter()
                    .zip(&gs)
                    .map(|(y, g)| y.weighted_sum(g.as_ref()))
                    .reduce(|a, b| a + b)
                    .expect("every part has an output");
                if objective.is_tracked() {
                    let _grads = objective.backward();
                }
                let b = elapsed(start, device)?;
                if rep >= s.warmup {
                    forward.push(f);
                    backward.push(b);
                }
            }
            tracing::info!("profiled {}", part.name);
            timings.push(PartTiming {
                layer: part.name.clone(),
                kind: part.kind.into(),
                input: dims.first().cloned().unwrap_or_default(),
                output: out_dims.first().cloned().unwrap_or_default(),
                forward_ms: median_ms(forward),
                backward_ms: median_ms(backward),
            });
        }
        Ok(timings)
    }
}
