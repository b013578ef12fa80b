//! The one-layer softmax-attention model of the SignGD-on-transformers theory (Li et al., ICLR
//! 2025), exactly as analysed: no scaling, no biases, no trainable read-out.
//!
//! For an input of two patches `X = [x₁, x₂]` (columns, each in R^d) and class `j ∈ {+1, −1}`:
//!
//! ```text
//! F_j(X) = (1/m_v) · Σ_l 1ᵀ W_{V,j} X · softmax(Xᵀ W_Kᵀ W_Q x_l)      f(X) = F_{+1}(X) − F_{−1}(X)
//! ```
//!
//! The study reads the quantities the paper plots through the probe methods ([`probe`]), so it
//! never reaches into the weights itself.
//!
//! [`probe`]: SignalNoiseAttention::probe

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::activation::{softmax, softplus};
use burn::tensor::Distribution;
use serde::Serialize;

use crate::ModelConfigError;

/// Configuration of [`SignalNoiseAttention`].
#[derive(Config, Debug)]
pub struct SignalNoiseAttentionConfig {
    /// Patch dimension `d`.
    pub dim: usize,
    /// Rows `m_k` of the query and key matrices.
    #[config(default = 10)]
    pub key_width: usize,
    /// Rows `m_v` of each value matrix.
    #[config(default = 10)]
    pub value_width: usize,
    /// σ₀: every weight starts as N(0, σ₀²). The theory needs it small.
    #[config(default = 0.01)]
    pub init_std: f64,
}

/// Single-head softmax attention over two patches with a fixed ±1/m_v read-out.
#[derive(Module, Debug)]
pub struct SignalNoiseAttention {
    /// W_Q, `[m_k, d]`.
    query: Param<Tensor<2>>,
    /// W_K, `[m_k, d]`.
    key: Param<Tensor<2>>,
    /// W_{V,+1}, `[m_v, d]`.
    value_positive: Param<Tensor<2>>,
    /// W_{V,−1}, `[m_v, d]`.
    value_negative: Param<Tensor<2>>,
}

impl SignalNoiseAttentionConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        for (field, value) in [
            ("dim", self.dim),
            ("key_width", self.key_width),
            ("value_width", self.value_width),
        ] {
            if value == 0 {
                return Err(ModelConfigError::new(field, "must be at least 1"));
            }
        }
        if !(self.init_std.is_finite() && self.init_std >= 0.0) {
            return Err(ModelConfigError::new(
                "init_std",
                format!("must be finite and non-negative, got {}", self.init_std),
            ));
        }
        Ok(())
    }

    /// Trainable parameters: `2·m_k·d + 2·m_v·d`.
    pub fn trainable_params(&self) -> usize {
        2 * (self.key_width + self.value_width) * self.dim
    }

    /// Builds the model on `device` (weights drawn from the device's seeded generator).
    pub fn init(&self, device: &Device) -> Result<SignalNoiseAttention, ModelConfigError> {
        self.validate()?;
        let normal = |rows: usize| {
            Param::from_tensor(Tensor::random(
                [rows, self.dim],
                Distribution::Normal(0.0, self.init_std),
                device,
            ))
        };
        Ok(SignalNoiseAttention {
            query: normal(self.key_width),
            key: normal(self.key_width),
            value_positive: normal(self.value_width),
            value_negative: normal(self.value_width),
        })
    }
}

impl SignalNoiseAttention {
    /// Builds the model from given weights (`[m_k, d]`, `[m_k, d]`, `[m_v, d]`, `[m_v, d]`).
    pub fn from_weights(
        query: Tensor<2>,
        key: Tensor<2>,
        value_positive: Tensor<2>,
        value_negative: Tensor<2>,
    ) -> Self {
        Self {
            query: Param::from_tensor(query),
            key: Param::from_tensor(key),
            value_positive: Param::from_tensor(value_positive),
            value_negative: Param::from_tensor(value_negative),
        }
    }

    /// Attention weights `[n, L, L]` for inputs `[n, L, d]`: entry `[i, l, l']` is how much
    /// query patch `l` attends to key patch `l'` (rows sum to 1). With the data's patch order,
    /// `[i, 0, 0]` is the paper's s_{i,11} and `[i, 1, 0]` its s_{i,21}.
    pub fn attention(&self, inputs: Tensor<3>) -> Tensor<3> {
        let queries = inputs
            .clone()
            .matmul(self.query.val().transpose().unsqueeze());
        let keys = inputs.matmul(self.key.val().transpose().unsqueeze());
        softmax(queries.matmul(keys.swap_dims(1, 2)), 2)
    }

    /// `v`: the mean row of W_{V,+1} minus the mean row of W_{V,−1}, `[d]`. The read-out sums
    /// value rows, so `f` depends on the values only through `m_v·v`.
    pub fn value_direction(&self) -> Tensor<1> {
        let rows = self.value_positive.val().dims()[0] as f64;
        (self.value_positive.val() - self.value_negative.val())
            .sum_dim(0)
            .div_scalar(rows)
            .squeeze_dim(0)
    }

    /// The margin-free output `f(X) = F_{+1}(X) − F_{−1}(X)` for inputs `[n, L, d]`, `[n]`.
    pub fn forward(&self, inputs: Tensor<3>) -> Tensor<1> {
        let [n, patches, _] = inputs.dims();
        // 1ᵀ W_{V,j} x_{l'} / m_v, differenced over j: ⟨v, x_{l'}⟩ for every patch, [n, L, 1].
        let values = inputs
            .clone()
            .matmul(self.value_direction().unsqueeze_dim::<2>(1).unsqueeze());
        // Σ_l Σ_{l'} s_{l,l'} ⟨v, x_{l'}⟩.
        self.attention(inputs)
            .matmul(values)
            .reshape([n, patches])
            .sum_dim(1)
            .squeeze_dim(1)
    }

    /// Mean logistic loss `(1/n) Σ log(1 + exp(−y_i f(X_i)))` for labels ±1, a scalar `[1]`.
    pub fn logistic_loss(&self, inputs: Tensor<3>, labels: Tensor<1>) -> Tensor<1> {
        softplus(self.forward(inputs).mul(labels).neg(), 1.0).mean()
    }

    /// Every quantity the study tracks, for training inputs `[n, 2, d]` (signal patch first), their
    /// labels `[n]` (±1) and the signal vector μ `[d]`.
    pub fn probe(&self, inputs: Tensor<3>, labels: Tensor<1>, signal: Tensor<1>) -> Probes {
        let [n, _, d] = inputs.dims();
        // y_i ξ_i as the columns of a [d, n] matrix.
        let noise = inputs
            .clone()
            .slice([0..n, 1..2, 0..d])
            .reshape([n, d])
            .mul(labels.unsqueeze_dim(1))
            .transpose();
        let mu = signal.unsqueeze_dim::<2>(1);
        let v = self.value_direction().unsqueeze_dim::<2>(0);
        let attention = self.attention(inputs);
        let host = |t: Tensor<2>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        Probes {
            value_signal: host(v.clone().matmul(mu.clone()))[0],
            value_noise: host(v.matmul(noise.clone())),
            query_signal: host(self.query.val().matmul(mu.clone())),
            key_signal: host(self.key.val().matmul(mu)),
            query_noise: host(self.query.val().matmul(noise.clone())),
            key_noise: host(self.key.val().matmul(noise)),
            attention_signal_to_signal: host(
                attention.clone().slice([0..n, 0..1, 0..1]).reshape([n, 1]),
            ),
            attention_noise_to_signal: host(attention.slice([0..n, 1..2, 0..1]).reshape([n, 1])),
        }
    }
}

/// The paper's tracked quantities at one step. Per-sample vectors have `n` entries; the query and
/// key noise are `[m_k, n]` row-major (row `s` is neuron `w_{·,s}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probes {
    /// ⟨v, μ⟩.
    pub value_signal: f32,
    /// ⟨v, y_i ξ_i⟩ per sample.
    pub value_noise: Vec<f32>,
    /// ⟨w_{Q,s}, μ⟩ per query neuron.
    pub query_signal: Vec<f32>,
    /// ⟨w_{K,s}, μ⟩ per key neuron.
    pub key_signal: Vec<f32>,
    /// ⟨w_{Q,s}, y_i ξ_i⟩, `[m_k, n]`.
    pub query_noise: Vec<f32>,
    /// ⟨w_{K,s}, y_i ξ_i⟩, `[m_k, n]`.
    pub key_noise: Vec<f32>,
    /// s_{i,11}: the signal patch's attention to itself.
    pub attention_signal_to_signal: Vec<f32>,
    /// s_{i,21}: the noise patch's attention to the signal patch.
    pub attention_noise_to_signal: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Weights and inputs small enough to evaluate the paper's formula by hand (d = 3, m_k = m_v = 2).
    fn fixture(device: &Device) -> (SignalNoiseAttention, Tensor<3>, [[[f64; 3]; 2]; 2]) {
        let wq = [[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]];
        let wk = [[-0.6, 0.2, 0.1], [0.5, 0.3, 0.2]];
        let wvp = [[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]];
        let wvn = [[-0.4, 0.1, 0.2], [0.1, -0.3, 0.6]];
        let x = [
            [[1.0, 0.0, 0.0], [0.0, 0.7, -1.2]],
            [[-1.0, 0.0, 0.0], [0.0, -0.9, 0.4]],
        ];
        let t2 = |w: [[f64; 3]; 2]| Tensor::<2>::from_data(w, device);
        let model = SignalNoiseAttention::from_weights(t2(wq), t2(wk), t2(wvp), t2(wvn));
        (model, Tensor::<3>::from_data(x, device), x)
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    /// f(X) straight from the formula, with explicit loops.
    fn f_by_hand(x: &[[f64; 3]; 2]) -> f64 {
        let wq = [[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]];
        let wk = [[-0.6, 0.2, 0.1], [0.5, 0.3, 0.2]];
        let wv: [[[f64; 3]; 2]; 2] = [
            [[0.2, -0.1, 0.4], [0.3, 0.5, -0.2]],
            [[-0.4, 0.1, 0.2], [0.1, -0.3, 0.6]],
        ];
        let project = |w: &[[f64; 3]; 2], v: &[f64; 3]| [dot(&w[0], v), dot(&w[1], v)];
        let mut f = 0.0;
        for (j, sign) in [(0, 1.0), (1, -1.0)] {
            for xl in x {
                let q = project(&wq, xl);
                let scores: Vec<f64> = x.iter().map(|xk| dot(&project(&wk, xk), &q)).collect();
                let z: f64 = scores.iter().map(|s| s.exp()).sum();
                for (k, xk) in x.iter().enumerate() {
                    let value: f64 = wv[j].iter().map(|row| dot(row, xk)).sum();
                    f += sign * (scores[k].exp() / z) * value / 2.0;
                }
            }
        }
        f
    }

    #[test]
    fn forward_matches_the_formula() {
        let device = Device::flex();
        let (model, inputs, x) = fixture(&device);
        let f = model
            .forward(inputs)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for (i, xi) in x.iter().enumerate() {
            assert!(
                (f[i] as f64 - f_by_hand(xi)).abs() < 1e-5,
                "{} vs {}",
                f[i],
                f_by_hand(xi)
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let device = Device::flex().autodiff();
        let (model, inputs, _) = fixture(&device);
        let labels = Tensor::<1>::from_data([1.0, -1.0], &device);
        let loss = model.logistic_loss(inputs.clone(), labels.clone());
        let grads = loss.backward();
        let analytic = model
            .query
            .val()
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let wq = model
            .query
            .val()
            .inner()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let loss_at = |wq: Vec<f32>| {
            let probe = SignalNoiseAttention::from_weights(
                Tensor::<2>::from_data(TensorData::new(wq, [2, 3]), &Device::flex()),
                model.key.val().inner(),
                model.value_positive.val().inner(),
                model.value_negative.val().inner(),
            );
            probe
                .logistic_loss(inputs.clone().inner(), labels.clone().inner())
                .into_scalar::<f32>() as f64
        };
        let h = 1e-3;
        for k in 0..wq.len() {
            let (mut up, mut down) = (wq.clone(), wq.clone());
            up[k] += h;
            down[k] -= h;
            let numeric = (loss_at(up) - loss_at(down)) / (2.0 * h as f64);
            assert!(
                (numeric - analytic[k] as f64).abs() < 1e-3,
                "dL/dW_Q[{k}]: finite difference {numeric} vs autodiff {}",
                analytic[k]
            );
        }
    }

    #[test]
    fn probes_match_host_inner_products() {
        let device = Device::flex();
        let (model, inputs, x) = fixture(&device);
        let labels = [1.0f64, -1.0];
        let mu = [1.0, 0.0, 0.0];
        let probes = model.probe(
            inputs.clone(),
            Tensor::<1>::from_data(labels, &device),
            Tensor::<1>::from_data(mu, &device),
        );
        // v = mean row of W_{V,+1} − mean row of W_{V,−1}.
        let v = [(0.5 - -0.3) / 2.0, (0.4 - -0.2) / 2.0, (0.2 - 0.8) / 2.0];
        assert!((probes.value_signal as f64 - dot(&v, &mu)).abs() < 1e-6);
        let wq = [[0.3, -0.2, 0.5], [0.1, 0.4, -0.3]];
        for (i, xi) in x.iter().enumerate() {
            let y_xi: Vec<f64> = xi[1].iter().map(|e| labels[i] * e).collect();
            assert!((probes.value_noise[i] as f64 - dot(&v, &y_xi)).abs() < 1e-6);
            for (s, row) in wq.iter().enumerate() {
                let got = probes.query_noise[s * 2 + i] as f64;
                assert!(
                    (got - dot(row, &y_xi)).abs() < 1e-6,
                    "query noise [{s},{i}]"
                );
            }
        }
        assert_eq!(probes.query_signal, vec![0.3, 0.1]);
        assert_eq!(probes.key_signal, vec![-0.6, 0.5]);
        // Attention rows agree with the model's own attention and sum to one.
        let attention = model
            .attention(inputs)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        for i in 0..2 {
            assert_eq!(probes.attention_signal_to_signal[i], attention[i * 4]);
            assert_eq!(probes.attention_noise_to_signal[i], attention[i * 4 + 2]);
            assert!((attention[i * 4 + 2] + attention[i * 4 + 3] - 1.0).abs() < 1e-6);
        }
    }

    #[test]
    fn config_counts_parameters_and_names_bad_fields() {
        let device = Device::flex();
        let config = SignalNoiseAttentionConfig::new(50)
            .with_key_width(3)
            .with_value_width(4);
        assert_eq!(config.trainable_params(), 2 * 3 * 50 + 2 * 4 * 50);
        assert_eq!(
            config.init(&device).unwrap().num_params(),
            config.trainable_params()
        );
        let field = |c: SignalNoiseAttentionConfig| c.init(&device).unwrap_err().field;
        assert_eq!(field(SignalNoiseAttentionConfig::new(0)), "dim");
        assert_eq!(field(config.clone().with_key_width(0)), "key_width");
        assert_eq!(field(config.clone().with_value_width(0)), "value_width");
        assert_eq!(field(config.with_init_std(f64::NAN)), "init_std");
    }
}
