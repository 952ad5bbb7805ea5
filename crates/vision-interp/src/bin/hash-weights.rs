//! Writes weights for a model of the zoo built from an integer hash (the parity fixtures'
//! recipe): the real state dict's names and shapes, values that mean nothing. With them every
//! chapter runs on every architecture offline, through the normal `--weights` path.
//!
//! ```text
//! cargo run --release -p vision-interp --bin hash-weights -- --model inceptionv1 --out /tmp/inceptionv1.safetensors
//! cargo run --release -p chapter-02-saliency-gradcam -- --model inceptionv1 --weights /tmp/inceptionv1.safetensors --quick
//! ```
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use vision_interp::models::zoo::{entry, model_value_parser};

#[derive(Parser)]
#[command(
    about = "Write hash-built weights (real names and shapes, meaningless values) for a model of the zoo"
)]
struct Args {
    /// Model of the zoo
    #[arg(long, value_parser = model_value_parser())]
    model: String,
    /// Where to write the safetensors file
    #[arg(long)]
    out: PathBuf,
    /// Varies the values (the fixtures use 0)
    #[arg(long, default_value_t = 0)]
    phase: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let tensors = entry(&args.model)?.hash_weights(args.phase)?;
    let count: usize = tensors.values().map(|t| t.elem_count()).sum();
    vision_interp::atomic::write_with(&args.out, |tmp| {
        Ok(candle_core::safetensors::save(&tensors, tmp.path())?)
    })?;
    println!("{}: {} tensors, {count} values, written to {}", args.model, tensors.len(), args.out.display());
    Ok(())
}
