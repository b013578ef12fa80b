//! From the probes of every step to the paper's four stages and loss rates: pure functions over the
//! logged trace, so each detection rule is tested on hand-built traces.

use ember_models::Probes;
use serde::{Deserialize, Serialize};

use crate::report::stats::{fit_line, mean, LinearFit};

/// Share of (neuron, sample) pairs whose query and key noise must agree in sign for stage II.
pub const NOISE_AGREEMENT: f64 = 0.95;
/// Mean s_{i,21} below which stage IV has arrived.
pub const NOISE_TO_SIGNAL_ATTENTION: f64 = 0.01;
/// Training loss below which a loss curve is at float precision and left out of rate fits.
const LOSS_FLOOR: f64 = 1e-6;

/// What the study keeps of one step: the probes reduced to the numbers the stages and plots use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSummary {
    /// Updates made before the probes (0: the initial weights).
    pub step: usize,
    /// Full-batch training loss.
    pub train_loss: f64,
    /// Loss on the fresh test samples.
    pub test_loss: f64,
    /// Accuracy on the test samples, a fraction (0..1).
    pub test_accuracy: f64,
    /// ⟨v, μ⟩.
    pub value_signal: f64,
    /// Mean over samples of ⟨v, y_i ξ_i⟩.
    pub mean_value_noise: f64,
    /// Smallest ⟨v, y_i ξ_i⟩.
    pub min_value_noise: f64,
    /// Mean over (s, i) of |⟨w_{Q,s}, y_i ξ_i⟩|.
    pub mean_abs_query_noise: f64,
    /// Mean over (s, i) of |⟨w_{K,s}, y_i ξ_i⟩|.
    pub mean_abs_key_noise: f64,
    /// Share of (s, i) with sign⟨w_{Q,s}, y_i ξ_i⟩ = sign⟨w_{K,s}, y_i ξ_i⟩.
    pub noise_sign_agreement: f64,
    /// ⟨w_{Q,s}, μ⟩ per neuron.
    pub query_signal: Vec<f32>,
    /// ⟨w_{K,s}, μ⟩ per neuron.
    pub key_signal: Vec<f32>,
    /// Majority vote over samples of sign⟨w_{Q,s}, y_i ξ_i⟩ per neuron (−1, 0 on a tie, +1).
    pub query_noise_vote: Vec<i8>,
    /// Majority vote over samples of sign⟨w_{K,s}, y_i ξ_i⟩ per neuron.
    pub key_noise_vote: Vec<i8>,
    /// Mean s_{i,11}.
    pub mean_signal_to_signal: f64,
    /// Mean s_{i,21}.
    pub mean_noise_to_signal: f64,
}

/// Majority vote of the signs in each row of a `[rows, n]` row-major matrix.
fn votes(matrix: &[f32], n: usize) -> Vec<i8> {
    matrix
        .chunks_exact(n)
        .map(|row| {
            let balance: i64 = row.iter().map(|&x| sign(x) as i64).sum();
            balance.signum() as i8
        })
        .collect()
}

fn sign(x: f32) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

impl StepSummary {
    /// Reduces one step's probes (with its losses and test accuracy).
    pub fn new(step: usize, losses: [f64; 3], probes: &Probes) -> Self {
        let n = probes.value_noise.len();
        let agree = probes
            .query_noise
            .iter()
            .zip(&probes.key_noise)
            .filter(|&(&q, &k)| sign(q) == sign(k) && q != 0.0)
            .count();
        let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
        let value_noise = f64s(&probes.value_noise);
        Self {
            step,
            train_loss: losses[0],
            test_loss: losses[1],
            test_accuracy: losses[2],
            value_signal: probes.value_signal as f64,
            mean_value_noise: mean(value_noise.iter().copied()),
            min_value_noise: value_noise.iter().copied().fold(f64::INFINITY, f64::min),
            mean_abs_query_noise: mean(probes.query_noise.iter().map(|x| x.abs() as f64)),
            mean_abs_key_noise: mean(probes.key_noise.iter().map(|x| x.abs() as f64)),
            noise_sign_agreement: agree as f64 / probes.query_noise.len().max(1) as f64,
            query_signal: probes.query_signal.clone(),
            key_signal: probes.key_signal.clone(),
            query_noise_vote: votes(&probes.query_noise, n),
            key_noise_vote: votes(&probes.key_noise, n),
            mean_signal_to_signal: mean(f64s(&probes.attention_signal_to_signal)),
            mean_noise_to_signal: mean(f64s(&probes.attention_noise_to_signal)),
        }
    }
}

/// The first step from which `holds` is true for every later step of the trace.
fn holds_from(trace: &[StepSummary], holds: impl Fn(usize) -> bool) -> Option<usize> {
    let mut start = None;
    for i in (0..trace.len()).rev() {
        if !holds(i) {
            break;
        }
        start = Some(trace[i].step);
    }
    start
}

/// Where each stage of the theory begins in one run (`None`: never within the run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stages {
    /// Stage I: from here on every sample's value noise ⟨v, y_i ξ_i⟩ is positive and the mean
    /// keeps growing (it has "settled" into steady growth).
    pub value_noise_settled: Option<usize>,
    /// Mean |key noise| at that step relative to its initial value (near 1: "key noise stays near
    /// its initial value").
    pub key_noise_ratio_at_stage_1: Option<f64>,
    /// Stage II: the first step at which query and key noise agree in sign on ≥ 95 % of (s, i).
    pub noise_signs_aligned: Option<usize>,
    /// The share of (s, i) that agree at the last step (alignment need not last: later stages
    /// move the noise again).
    pub noise_agreement_at_end: f64,
    /// Stage III: from here on no query or key signal ⟨w_{·,s}, μ⟩ changes sign.
    pub signal_signs_fixed: Option<usize>,
    /// Share of neurons whose query signal has the sign of the majority vote of their query
    /// noise at stage III (1: "set by the vote"; 0: set against it).
    pub query_signal_matches_vote: Option<f64>,
    /// The same for the key signal and the key noise.
    pub key_signal_matches_vote: Option<f64>,
    /// Stage IV: from here on the mean s_{i,21} is below 0.01.
    pub noise_to_signal_attention_vanished: Option<usize>,
    /// Mean s_{i,11} when stage IV begins (the theory: about 1/2).
    pub signal_to_signal_at_stage_4: Option<f64>,
    /// Decay rate of ln(mean s_{i,21}) per step over the run's second half (> 0: decaying), with
    /// the R² of that linear fit (near 1: exponential decay).
    pub noise_to_signal_decay: Option<LinearFit>,
    /// Whether stages I–IV all occur, in order.
    pub in_order: bool,
}

/// Finds the four stages in a run's trace (steps in increasing order, step 0 first).
pub fn detect_stages(trace: &[StepSummary]) -> Stages {
    let value_noise_settled = holds_from(trace, |i| {
        trace[i].min_value_noise > 0.0
            && trace
                .get(i + 1)
                .is_none_or(|next| next.mean_value_noise >= trace[i].mean_value_noise)
    });
    let key_noise_ratio_at_stage_1 = value_noise_settled.and_then(|step| {
        let initial = trace.first()?.mean_abs_key_noise;
        let at = trace.iter().find(|s| s.step == step)?.mean_abs_key_noise;
        (initial > 0.0).then(|| at / initial)
    });
    let noise_signs_aligned = trace
        .iter()
        .find(|s| s.noise_sign_agreement >= NOISE_AGREEMENT)
        .map(|s| s.step);
    let signs = |s: &StepSummary| {
        let of = |v: &[f32]| v.iter().map(|&x| sign(x)).collect::<Vec<_>>();
        (of(&s.query_signal), of(&s.key_signal))
    };
    let signal_signs_fixed = trace.last().and_then(|last| {
        let final_signs = signs(last);
        holds_from(trace, |i| signs(&trace[i]) == final_signs)
    });
    let at = |step: Option<usize>| step.and_then(|s| trace.iter().find(|t| t.step == s));
    let matches = |signal: &[f32], vote: &[i8]| {
        let hits = signal
            .iter()
            .zip(vote)
            .filter(|&(&x, &v)| sign(x) == v && v != 0)
            .count();
        hits as f64 / signal.len().max(1) as f64
    };
    let fixed = at(signal_signs_fixed);
    let noise_to_signal_attention_vanished = holds_from(trace, |i| {
        trace[i].mean_noise_to_signal < NOISE_TO_SIGNAL_ATTENTION
    });
    let stage_4 = at(noise_to_signal_attention_vanished);
    let half = &trace[trace.len() / 2..];
    let noise_to_signal_decay = fit_line(
        half.iter()
            .filter(|s| s.mean_noise_to_signal > 0.0)
            .map(|s| (s.step as f64, -s.mean_noise_to_signal.ln())),
    );
    let starts = [
        value_noise_settled,
        noise_signs_aligned,
        signal_signs_fixed,
        noise_to_signal_attention_vanished,
    ];
    let in_order = starts.iter().all(Option::is_some) && starts.windows(2).all(|w| w[0] <= w[1]);
    Stages {
        value_noise_settled,
        key_noise_ratio_at_stage_1,
        noise_signs_aligned,
        noise_agreement_at_end: trace.last().map_or(0.0, |s| s.noise_sign_agreement),
        signal_signs_fixed,
        query_signal_matches_vote: fixed.map(|s| matches(&s.query_signal, &s.query_noise_vote)),
        key_signal_matches_vote: fixed.map(|s| matches(&s.key_signal, &s.key_noise_vote)),
        noise_to_signal_attention_vanished,
        signal_to_signal_at_stage_4: stage_4.map(|s| s.mean_signal_to_signal),
        noise_to_signal_decay,
        in_order,
    }
}

/// How the training loss falls once it is under way: a linear (exponential) rate makes
/// ln L linear in t; a sub-linear (power-law) rate makes ln L linear in ln t.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossRate {
    /// ln L against t.
    pub exponential: Option<LinearFit>,
    /// ln L against ln t.
    pub power_law: Option<LinearFit>,
    /// `linear` when the exponential fit explains ln L better, `sub-linear` when the power law
    /// does, `none` when the loss did not fall.
    pub verdict: String,
}

/// Fits both laws to the tail of the training loss: the steps where it is below a tenth of its
/// initial value (past the start-up) and above 1e-6 (before float precision flattens it).
pub fn loss_rate(trace: &[StepSummary]) -> LossRate {
    let initial = trace.first().map_or(f64::NAN, |s| s.train_loss);
    let half: Vec<&StepSummary> = trace
        .iter()
        .filter(|s| s.step > 0 && s.train_loss > LOSS_FLOOR && s.train_loss < 0.1 * initial)
        .collect();
    let exponential = fit_line(half.iter().map(|s| (s.step as f64, s.train_loss.ln())));
    let power_law = fit_line(
        half.iter()
            .map(|s| ((s.step as f64).ln(), s.train_loss.ln())),
    );
    let verdict = match (exponential, power_law) {
        (Some(e), Some(p)) if e.slope < 0.0 => {
            if e.r_squared >= p.r_squared {
                "linear"
            } else {
                "sub-linear"
            }
        }
        _ => "none",
    };
    LossRate {
        exponential,
        power_law,
        verdict: verdict.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trace whose stages begin at steps 3, 5, 6 and 8 of 0..=10.
    fn staged_trace() -> Vec<StepSummary> {
        (0..=10)
            .map(|t| {
                let after = |start: usize| t >= start;
                // Flips every step until step 6 (step 5 differs from the final signs).
                let flip = if after(6) || t % 2 == 0 { 1.0 } else { -1.0 };
                StepSummary {
                    step: t,
                    train_loss: (-0.5 * t as f64).exp(),
                    test_loss: 0.7,
                    test_accuracy: 0.5,
                    value_signal: 0.0,
                    mean_value_noise: t as f64,
                    min_value_noise: if after(3) { 0.1 } else { -0.1 },
                    mean_abs_query_noise: 1.0,
                    mean_abs_key_noise: if t == 0 { 2.0 } else { 2.2 },
                    noise_sign_agreement: if after(5) { 0.97 } else { 0.5 },
                    query_signal: vec![flip, -0.5],
                    key_signal: vec![0.3, -flip],
                    query_noise_vote: vec![1, 1],
                    key_noise_vote: vec![1, 1],
                    mean_signal_to_signal: 0.5,
                    mean_noise_to_signal: if after(8) { 0.005 } else { 0.3 },
                }
            })
            .collect()
    }

    #[test]
    fn stages_are_found_where_they_begin() {
        let stages = detect_stages(&staged_trace());
        assert_eq!(stages.value_noise_settled, Some(3));
        assert!((stages.key_noise_ratio_at_stage_1.unwrap() - 1.1).abs() < 1e-12);
        assert_eq!(stages.noise_signs_aligned, Some(5));
        assert_eq!(stages.noise_agreement_at_end, 0.97);
        assert_eq!(stages.signal_signs_fixed, Some(6));
        // Query signal at step 6: [+, −] against votes [+, +]; key signal [+, −]: one of two each.
        assert_eq!(stages.query_signal_matches_vote, Some(0.5));
        assert_eq!(stages.key_signal_matches_vote, Some(0.5));
        assert_eq!(stages.noise_to_signal_attention_vanished, Some(8));
        assert_eq!(stages.signal_to_signal_at_stage_4, Some(0.5));
        assert!(stages.in_order);
    }

    #[test]
    fn a_stage_that_comes_and_goes_is_not_reached_and_order_is_checked() {
        let mut trace = staged_trace();
        // Agreement never reaches 95 %: no stage II, so not all stages are present.
        for s in trace.iter_mut() {
            s.noise_sign_agreement = s.noise_sign_agreement.min(0.9);
        }
        let stages = detect_stages(&trace);
        assert_eq!(stages.noise_signs_aligned, None);
        assert!(!stages.in_order);
        // Stage IV before stage III: present but out of order.
        let mut trace = staged_trace();
        for s in trace.iter_mut() {
            s.mean_noise_to_signal = 0.001;
        }
        let stages = detect_stages(&trace);
        assert_eq!(stages.noise_to_signal_attention_vanished, Some(0));
        assert!(!stages.in_order);
    }

    #[test]
    fn summary_reduces_probes() {
        let probes = Probes {
            value_signal: 0.5,
            value_noise: vec![1.0, -3.0],
            query_signal: vec![0.1, -0.2],
            key_signal: vec![0.3, 0.4],
            // [2 neurons, 2 samples]
            query_noise: vec![1.0, 2.0, -1.0, 0.5],
            key_noise: vec![3.0, -1.0, -2.0, 0.5],
            attention_signal_to_signal: vec![0.4, 0.6],
            attention_noise_to_signal: vec![0.1, 0.3],
        };
        let s = StepSummary::new(4, [0.3, 0.6, 0.75], &probes);
        assert_eq!(s.mean_value_noise, -1.0);
        assert_eq!(s.min_value_noise, -3.0);
        assert_eq!(s.mean_abs_query_noise, 1.125);
        assert_eq!(s.noise_sign_agreement, 0.75);
        assert_eq!(s.query_noise_vote, vec![1, 0]);
        assert_eq!(s.key_noise_vote, vec![0, 0]);
        assert!((s.mean_noise_to_signal - 0.2).abs() < 1e-7);
        assert_eq!(
            (s.train_loss, s.test_loss, s.test_accuracy),
            (0.3, 0.6, 0.75)
        );
    }

    #[test]
    fn loss_rates_tell_exponential_from_power_law() {
        let trace = |loss: fn(f64) -> f64| -> Vec<StepSummary> {
            let mut base = staged_trace()[0].clone();
            (0..=400)
                .map(|t| {
                    base.step = t;
                    base.train_loss = loss(t as f64);
                    base.clone()
                })
                .collect()
        };
        let exponential = loss_rate(&trace(|t| (-0.02 * t).exp()));
        assert_eq!(exponential.verdict, "linear");
        assert!((exponential.exponential.unwrap().slope + 0.02).abs() < 1e-9);
        let power = loss_rate(&trace(|t| 1.0 / (1.0 + t)));
        assert_eq!(power.verdict, "sub-linear");
        assert_eq!(loss_rate(&trace(|_| 0.7)).verdict, "none");
    }

    #[test]
    fn line_fit_recovers_a_line() {
        let fit = fit_line((0..5).map(|x| (x as f64, 2.0 - 3.0 * x as f64))).unwrap();
        assert!((fit.slope + 3.0).abs() < 1e-12 && (fit.intercept - 2.0).abs() < 1e-12);
        assert!((fit.r_squared - 1.0).abs() < 1e-12);
        assert!(fit_line([(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)].into_iter()).is_none());
    }
}
