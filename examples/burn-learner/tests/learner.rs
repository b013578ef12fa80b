//! The example run as a test: every ember-optim optimizer trains inside burn-train's `Learner`
//! (tiny data, seconds), a resumed run matches an uninterrupted one, and the root-free methods see
//! the DataLoader's smaller last batch.

use std::sync::{Mutex, MutexGuard};

use ember_burn_learner_example::{train, OptimizerChoice, Settings};

/// One training at a time: model initialisation draws from the device's global seeded stream,
/// which parallel tests would interleave.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The largest element-wise difference, so a failure prints one number, not 400.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn settings(epochs: usize) -> Settings {
    Settings {
        learning_rate: None,
        train_size: 250,
        valid_size: 200,
        batch_size: 32,
        epochs,
    }
}

#[test]
fn every_optimizer_trains_inside_the_learner() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // A freshly initialised model is at chance (25 %) with a loss near ln 4 ≈ 1.386.
    for choice in OptimizerChoice::ALL {
        let outcome = train(choice, &settings(2), &dir.path().join(choice.name()), None);
        assert!(
            outcome.accuracy > 0.6 && outcome.loss < 1.2,
            "{}: accuracy {:.3}, loss {:.3}",
            choice.name(),
            outcome.accuracy,
            outcome.loss
        );
    }
}

#[test]
fn a_resumed_learner_run_continues_exactly() {
    let _serial = serial();
    // Optimizer state (RF-RMSProp's curvature and momentum, IF-Shampoo's factors) and the PLRS
    // stream all come back from burn-train's checkpoint: 1 + 1 epochs = 2 epochs, bit for bit.
    for choice in [
        OptimizerChoice::RfRmsProp,
        OptimizerChoice::IfShampoo,
        OptimizerChoice::SgdPlrs,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let uninterrupted = train(choice, &settings(2), &dir.path().join("full"), None);
        let first = dir.path().join("split");
        let _ = train(choice, &settings(1), &first, None);
        let resumed = train(choice, &settings(2), &first, Some(1));
        let difference = max_difference(&resumed.parameters, &uninterrupted.parameters);
        assert_eq!(difference, 0.0, "{}", choice.name());
    }
}

/// RF-RMSProp for one epoch by hand, on the same data in the same order: B set from every batch
/// (as the example's `TrainStep` does) or left at the config's fixed 32.
fn rf_rmsprop_by_hand(per_batch_b: bool) -> Vec<f32> {
    use burn::data::dataloader::DataLoaderBuilder;
    use burn::data::dataset::InMemDataset;
    use burn::optim::GradientsParams;
    use ember_burn_learner_example::{
        device, examples, parameters, Classifier, ExampleBatcher, GradientRule,
    };
    use ember_optim::RfRmsPropConfig;

    let device = device();
    device.seed(42);
    let autodiff = device.clone().autodiff();
    let (mut optim, handle) = RfRmsPropConfig::new(32).init_with_batch_size_handle();
    let mut model = Classifier::new(&autodiff, GradientRule::Plain, None);
    let loader = DataLoaderBuilder::new(ExampleBatcher)
        .batch_size(32)
        .build(InMemDataset::new(examples(250, 1)));
    let mut sizes = Vec::new();
    for batch in loader.iter() {
        let batch = batch.unwrap();
        let b = batch.targets.dims()[0];
        sizes.push(b);
        if per_batch_b {
            handle.set(b).unwrap();
        }
        let loss = model.forward_classification(batch).loss;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-2_f64, model, grads);
    }
    assert_eq!(sizes.last(), Some(&(250 % 32)), "the last batch is smaller");
    parameters(&model)
}

#[test]
fn the_smaller_last_batch_reaches_the_root_free_optimizer() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let learner = train(OptimizerChoice::RfRmsProp, &settings(1), dir.path(), None);
    let true_b = rf_rmsprop_by_hand(true);
    let fixed_b = rf_rmsprop_by_hand(false);
    let used_own_b = max_difference(&learner.parameters, &true_b);
    assert_eq!(used_own_b, 0.0, "the Learner run used each batch's own B");
    let fixed_vs_own = max_difference(&true_b, &fixed_b);
    assert!(
        fixed_vs_own > 0.0,
        "a fixed B = 32 on the 26-example batch steps differently"
    );
}
