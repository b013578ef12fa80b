//! `ember sample --run DIR --prompt TEXT`: text from a language-modelling run's newest checkpoint.

use std::path::PathBuf;

use clap::Args;
use ember_lab::tools::sample::{sample, SampleSettings};

/// Options of `ember sample`.
#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    /// The run folder of an `ember train --text` run.
    #[arg(long)]
    pub run: PathBuf,
    /// The text the model continues.
    #[arg(long)]
    pub prompt: String,
    /// Tokens to generate (characters or bytes, as the run was tokenised).
    #[arg(long, default_value_t = 200)]
    pub length: usize,
    /// Softmax temperature; 0 takes the most likely token every time.
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Draw only among the k most likely tokens.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Seeds the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: SampleArgs) -> anyhow::Result<()> {
    let text = sample(
        &args.run,
        &SampleSettings {
            prompt: args.prompt,
            length: args.length,
            temperature: args.temperature,
            top_k: args.top_k,
            seed: args.seed,
        },
    )?;
    println!("{text}");
    Ok(())
}
