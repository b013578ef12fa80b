//! Trains the example's MLP in burn's `Learner` with every ember-optim optimizer, then resumes one
//! run from its checkpoint, and prints a table. `cargo run --release -p ember-burn-learner-example`.

use ember_burn_learner_example::{train, OptimizerChoice, Settings};

fn main() {
    let root = std::env::temp_dir().join(format!("ember-burn-learner-{}", std::process::id()));
    if std::env::args().nth(1).as_deref() == Some("sweep") {
        sweep(&root);
    } else {
        every_optimizer(&root);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Every optimizer at a learning rate that suits the toy problem, then a resumed run.
fn every_optimizer(root: &std::path::Path) {
    let settings = Settings::default();
    println!(
        "{} training / {} validation examples, batch {} (last batch {}), {} epochs\n",
        settings.train_size,
        settings.valid_size,
        settings.batch_size,
        settings.train_size % settings.batch_size,
        settings.epochs
    );
    println!("| optimizer | lr | validation loss | validation accuracy |");
    println!("|---|---|---|---|");
    for choice in OptimizerChoice::ALL {
        let outcome = train(choice, &settings, &root.join(choice.name()), None);
        println!(
            "| {} | {} | {:.4} | {:.1}% |",
            choice.name(),
            if choice == OptimizerChoice::SgdPlrs {
                "U[0.07, 0.1]".to_string()
            } else {
                choice.learning_rate().to_string()
            },
            outcome.loss,
            100.0 * outcome.accuracy
        );
    }

    // Resume: train RF-RMSProp for one epoch, then continue that run from its epoch-1 checkpoint
    // to the full length, and compare with the uninterrupted run above.
    let choice = OptimizerChoice::RfRmsProp;
    let uninterrupted = train(choice, &settings, &root.join(choice.name()), None);
    let dir = root.join("resumed");
    let one_epoch = Settings {
        epochs: 1,
        ..settings.clone()
    };
    let _ = train(choice, &one_epoch, &dir, None);
    let resumed = train(choice, &settings, &dir, Some(1));
    println!(
        "\nRF-RMSProp, 1 epoch then resumed from its checkpoint to {}: validation loss {:.6} \
         (uninterrupted {:.6}); parameters identical: {}",
        settings.epochs,
        resumed.loss,
        uninterrupted.loss,
        resumed.parameters == uninterrupted.parameters
    );
}

/// Validation accuracy of every per-parameter optimizer over a grid of constant learning rates,
/// on a larger sample of the same problem: the measurement behind the README's starting points.
fn sweep(root: &std::path::Path) {
    const LRS: [f64; 9] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0];
    println!(
        "| optimizer | {} | best |",
        LRS.map(|lr| lr.to_string()).join(" | ")
    );
    println!("|---|{}---|", "---|".repeat(LRS.len()));
    for choice in OptimizerChoice::ALL {
        if choice == OptimizerChoice::SgdPlrs {
            continue;
        }
        let mut cells = Vec::new();
        let mut best = (f64::NEG_INFINITY, 0.0);
        for lr in LRS {
            let settings = Settings {
                learning_rate: Some(lr),
                train_size: 2000,
                valid_size: 1000,
                batch_size: 64,
                epochs: 3,
            };
            let dir = root.join(format!("{}-{lr}", choice.name()));
            let outcome = train(choice, &settings, &dir, None);
            let accuracy = if outcome.loss.is_finite() {
                outcome.accuracy
            } else {
                0.0
            };
            if accuracy > best.0 {
                best = (accuracy, lr);
            }
            cells.push(format!("{:.1}", 100.0 * accuracy));
        }
        println!("| {} | {} | {} |", choice.name(), cells.join(" | "), best.1);
    }
}
