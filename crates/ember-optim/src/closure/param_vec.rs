//! Vectors in parameter space: one flattened tensor per trainable parameter, keyed by `ParamId`.
//!
//! Closure optimizers combine several gradients (GAM's `h+ − γ·h−⊥`, VAMO's control variate), take
//! global norms and inner products over all parameters, and shift whole models along a direction.
//! Every scalar stays a one-element tensor on the device, so a step costs no host synchronisation.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

use super::counter_normal::{normals, DirectionKey};

/// `ξ`, added to norms in denominators so that a zero vector gives a zero step, not a NaN.
pub(crate) const NORM_EPS: f64 = 1e-12;

/// One flattened `[n]` tensor (non-autodiff) per trainable parameter, in the model's visiting order.
#[derive(Clone, Debug)]
pub struct ParamVec {
    entries: Vec<(ParamId, Tensor<1>)>,
}

impl ParamVec {
    /// The gradients of `model`'s parameters, flattened. Parameters without a gradient are left out.
    pub fn from_grads<M: Module>(model: &M, grads: &GradientsParams) -> Self {
        struct Collect<'a> {
            grads: &'a GradientsParams,
            entries: Vec<(ParamId, Tensor<1>)>,
        }
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(g) = self.grads.get::<D>(param.id) {
                    let n = g.shape().num_elements();
                    self.entries.push((param.id, g.reshape([n])));
                }
            }
        }
        let mut collect = Collect {
            grads,
            entries: Vec::new(),
        };
        model.visit(&mut collect);
        Self {
            entries: collect.entries,
        }
    }

    /// The values of `model`'s trainable parameters (those that require gradients), flattened.
    /// BatchNorm running statistics and frozen parameters are left out.
    pub fn from_params<M: Module>(model: &M) -> Self {
        struct Collect(Vec<(ParamId, Tensor<1>)>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                if value.is_require_grad() {
                    let n = value.shape().num_elements();
                    self.0.push((param.id, value.inner().reshape([n])));
                }
            }
        }
        let mut collect = Collect(Vec::new());
        model.visit(&mut collect);
        Self { entries: collect.0 }
    }

    /// A direction drawn uniformly from the unit sphere of the space `template` lives in: i.i.d.
    /// standard normals, normalised jointly over all parameters. The normals of parameter `p` are
    /// the counter-based stream keyed by `key` and `p` ([`counter_normal`](super::counter_normal)),
    /// generated on the parameter's device: the same key regenerates the same direction instead of
    /// storing it, and nothing is copied from the host.
    pub(crate) fn random_unit(template: &Self, key: DirectionKey) -> Self {
        let blocks: Vec<Tensor<1>> = template
            .entries
            .iter()
            .enumerate()
            .map(|(p, (_, t))| normals(key.words(p), t.shape().num_elements(), &t.device()))
            .collect();
        let Some(sum_sq) = blocks
            .iter()
            .map(|b| b.clone().square().sum())
            .reduce(|a, b| a + b)
        else {
            return Self {
                entries: Vec::new(),
            };
        };
        let scale = sum_sq.sqrt().clamp_min(NORM_EPS).recip();
        let entries = template
            .entries
            .iter()
            .zip(blocks)
            .map(|((id, t), block)| (*id, block.mul(scale.clone()).cast(t.dtype())))
            .collect();
        Self { entries }
    }

    /// Total number of elements, `d`.
    pub fn num_elements(&self) -> usize {
        self.entries
            .iter()
            .map(|(_, t)| t.shape().num_elements())
            .sum()
    }

    /// `⟨self, other⟩` as a one-element tensor.
    pub fn dot(&self, other: &Self) -> Tensor<1> {
        self.check_same_space(other);
        self.entries
            .iter()
            .zip(&other.entries)
            .map(|((_, a), (_, b))| (a.clone() * b.clone()).sum())
            .reduce(|acc, x| acc + x)
            // A model without trainable parameters: the empty sum.
            .unwrap_or_else(|| Tensor::zeros([1], &Device::default()))
    }

    /// `‖self‖₂` as a one-element tensor.
    pub fn norm(&self) -> Tensor<1> {
        self.dot(self).sqrt()
    }

    /// `a·self + b·other` with host scalars.
    pub fn lincomb(&self, a: f64, other: &Self, b: f64) -> Self {
        self.check_same_space(other);
        self.zip_map(other, |x, y| x.mul_scalar(a) + y.mul_scalar(b))
    }

    /// `self + s·other` with `s` a one-element device tensor.
    pub fn add_scaled(&self, other: &Self, s: &Tensor<1>) -> Self {
        self.check_same_space(other);
        self.zip_map(other, |x, y| x + y * s.clone())
    }

    /// `s·self` with a host scalar.
    pub fn mul_scalar(&self, s: f64) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(id, t)| (*id, t.clone().mul_scalar(s)))
                .collect(),
        }
    }

    /// `Σⱼ sⱼ·vⱼ` with one-element device tensors `sⱼ`; `None` for no terms.
    pub fn weighted_sum(vectors: &[Self], weights: &[Tensor<1>]) -> Option<Self> {
        assert_eq!(vectors.len(), weights.len(), "one weight per vector");
        let mut terms = vectors.iter().zip(weights).map(|(v, w)| v.scaled(w));
        let first = terms.next()?;
        Some(terms.fold(first, |acc, t| acc.lincomb(1.0, &t, 1.0)))
    }

    /// `s·self` with `s` a one-element device tensor.
    pub fn scaled(&self, s: &Tensor<1>) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .map(|(id, t)| (*id, t.clone() * s.clone()))
                .collect(),
        }
    }

    /// `s / (‖self‖ + ξ)`: the factor that rescales `self` to length `s`.
    pub fn unit_factor(&self, s: f64) -> Tensor<1> {
        self.norm().add_scalar(NORM_EPS).recip().mul_scalar(s)
    }

    /// The vector as gradients of `model`'s parameters, for a base optimizer's `step`.
    pub fn to_grads<M: Module>(&self, model: &M) -> GradientsParams {
        struct Scatter<'a> {
            vec: &'a ParamVec,
            grads: GradientsParams,
        }
        impl ModuleVisitor for Scatter<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if let Some(v) = self.vec.get(param.id) {
                    let dims: [usize; D] = param.lazy_shape().dims();
                    self.grads.register(param.id, v.clone().reshape(dims));
                }
            }
        }
        let mut scatter = Scatter {
            vec: self,
            grads: GradientsParams::new(),
        };
        model.visit(&mut scatter);
        scatter.grads
    }

    /// A copy of `model` at `θ + self` with its own BatchNorm running statistics (see
    /// [`isolated_copy`]). With `track_gradients` its parameters are fresh autodiff leaves (same
    /// `ParamId`s, so gradients taken there apply to `model`); without, nothing is recorded.
    pub fn perturbed<M: Module>(&self, model: &M, track_gradients: bool) -> M {
        struct Shift<'a> {
            vec: &'a ParamVec,
            track: bool,
        }
        impl ModuleMapper for Shift<'_> {
            fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
                let Some(v) = self.vec.get(param.id) else {
                    return param;
                };
                let (id, tensor, mapper) = param.consume();
                let shift = v.clone().reshape(tensor.dims()).cast(tensor.dtype());
                let moved = Tensor::from_inner(tensor.inner() + shift);
                Param::from_mapped_value(id, moved.set_require_grad(self.track), mapper)
            }
        }
        isolated_copy(model, track_gradients).map(&mut Shift {
            vec: self,
            track: track_gradients,
        })
    }

    fn get(&self, id: ParamId) -> Option<&Tensor<1>> {
        self.entries.iter().find(|(i, _)| *i == id).map(|(_, t)| t)
    }

    fn zip_map(&self, other: &Self, f: impl Fn(Tensor<1>, Tensor<1>) -> Tensor<1>) -> Self {
        Self {
            entries: self
                .entries
                .iter()
                .zip(&other.entries)
                .map(|((id, a), (_, b))| (*id, f(a.clone(), b.clone())))
                .collect(),
        }
    }

    fn check_same_space(&self, other: &Self) {
        assert!(
            self.entries.len() == other.entries.len()
                && self
                    .entries
                    .iter()
                    .zip(&other.entries)
                    .all(|(a, b)| a.0 == b.0),
            "parameter vectors of different models"
        );
    }
}

/// A copy of `model` in training mode whose BatchNorm running statistics are its own.
///
/// burn modules share running statistics between clones, so a forward pass on a perturbed clone
/// would move the trained model's statistics; `valid()` + `train()` rebuilds them as fresh state.
/// GAM's passes 2–4, SAM's second pass and every zeroth-order evaluation run on such copies, which is
/// how "BatchNorm statistics are updated by the first pass only" is implemented.
pub fn isolated_copy<M: Module>(model: &M, track_gradients: bool) -> M {
    let copy = model.valid().train();
    if track_gradients {
        copy
    } else {
        copy.no_grad()
    }
}

/// `model` with every parameter detached (no gradients recorded), sharing its BatchNorm running
/// statistics, so that a forward pass on it updates them like a training step would.
///
/// Not `model.clone().no_grad()`: in burn 0.22.1 that also switches off gradients of the *original*
/// when its parameters are still lazily uninitialised (they share the lazy state), which silently
/// froze ZO-SGD runs that start from a fresh model.
pub fn detached_view<M: Module>(model: &M) -> M {
    struct Detach;
    impl ModuleMapper for Detach {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let detached = Tensor::from_inner(tensor.inner()).set_require_grad(false);
            Param::from_mapped_value(id, detached, mapper)
        }
    }
    model.clone().map(&mut Detach)
}
