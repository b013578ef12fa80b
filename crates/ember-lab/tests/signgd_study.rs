//! The SignGD study end to end on a tiny problem: every arm starts from the same weights, SignGD
//! moves every weight by exactly the learning rate, traces and reports are written.

use burn::prelude::*;
use ember_lab::tools::signgd_study::write_report;
use ember_lab::{run_signgd_study, SignGdStudyConfig, StudyArm};

fn tiny() -> SignGdStudyConfig {
    SignGdStudyConfig {
        dim: 64,
        train_size: 8,
        test_size: 50,
        noise_nonzeros: 6,
        signal_norm: 1.0,
        snrs: vec![0.5, 2.0],
        key_width: 3,
        value_width: 4,
        init_std: 0.01,
        steps: 40,
        seed: 3,
        arms: StudyArm::paper_arms(1e-2, 1e-2, 0.5, 1.0),
    }
}

#[test]
fn study_runs_every_arm_from_one_start_and_writes_traces_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny();
    let device = Device::flex().autodiff();
    let runs = run_signgd_study(&config, &device, &dir.path().join("traces"), false).unwrap();
    assert_eq!(runs.len(), 2 * 4);
    for snr in [0.5, 2.0] {
        let at: Vec<_> = runs.iter().filter(|r| r.snr == snr).collect();
        // Same data and same initial weights for every arm.
        for run in &at[1..] {
            assert_eq!(run.trace[0], at[0].trace[0], "{} at SNR {snr}", run.arm);
        }
        for run in &at {
            assert_eq!(run.trace.len(), config.steps + 1);
            let first = run.trace[0].train_loss;
            assert!(
                (first - std::f64::consts::LN_2).abs() < 0.05,
                "tiny weights: loss ≈ ln 2"
            );
            assert!(
                run.last().train_loss < first,
                "{} did not reduce the loss",
                run.arm
            );
        }
        // SignGD: every query/key signal moves by at most lr·‖μ‖ per step (sign steps).
        let sign = at.iter().find(|r| r.arm == "signgd").unwrap();
        for w in sign.trace.windows(2) {
            for (a, b) in w[0].query_signal.iter().zip(&w[1].query_signal) {
                assert!((a - b).abs() <= 1e-2 * 1.0 + 1e-6);
            }
        }
        let lines =
            std::fs::read_to_string(dir.path().join(format!("traces/snr-{snr}/signgd.jsonl")))
                .unwrap();
        assert_eq!(lines.lines().count(), config.steps + 1);
        let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
        assert_eq!(last["step"], config.steps);
        assert_eq!(last["query_noise"].as_array().unwrap().len(), 3 * 8);
        assert_eq!(
            last["attention_noise_to_signal"].as_array().unwrap().len(),
            8
        );
    }
    // SignGD's value signal grows by exactly lr·‖μ‖ per step while the gradient's sign on it
    // holds: v's signal coordinate is the mean over m_v rows of two matrices moving by ±lr each.
    let sign = &runs[0];
    let growth = sign.trace[1].value_signal - sign.trace[0].value_signal;
    assert!(
        (growth - 2e-2).abs() < 1e-5,
        "value signal moved by {growth}"
    );

    let out = dir.path().join("report");
    let files = write_report(&config, &runs, &out).unwrap();
    assert!(files.iter().any(|f| f.ends_with("loss-snr0.5.png")));
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(md.contains("## SNR 2"));
    // The arms table and one row per SNR.
    assert_eq!(md.matches("| signgd |").count(), 3);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"].as_array().unwrap().len(), 8);
}

#[test]
fn bad_settings_name_the_field() {
    let err = |c: SignGdStudyConfig| {
        run_signgd_study(
            &c,
            &Device::flex().autodiff(),
            std::path::Path::new("/nonexistent"),
            false,
        )
        .unwrap_err()
        .to_string()
    };
    assert!(err(SignGdStudyConfig {
        snrs: vec![],
        ..tiny()
    })
    .contains("`snrs`"));
    assert!(err(SignGdStudyConfig {
        snrs: vec![-1.0],
        ..tiny()
    })
    .contains("`snrs`"));
    assert!(err(SignGdStudyConfig { steps: 0, ..tiny() }).contains("`steps`"));
    let mut c = tiny();
    c.arms[1].lr = f64::NAN;
    assert!(err(c).contains("`lr`"));
    assert!(err(SignGdStudyConfig {
        noise_nonzeros: 64,
        ..tiny()
    })
    .contains("noise_nonzeros"));
    assert!(err(SignGdStudyConfig {
        key_width: 0,
        ..tiny()
    })
    .contains("key_width"));
}
