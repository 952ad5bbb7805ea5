//! Writes weights for a model of the zoo built from an integer hash (the parity fixtures'
//! recipe): the real state dict's names and shapes, values that mean nothing. With them every
//! chapter runs on every architecture offline, through the normal `--weights` path.
//!
//! ```text
//! cargo run --release -p tools --bin hash-weights -- --model inceptionv1 --out /tmp/inceptionv1.safetensors
//! cargo run --release -p chapter-02-saliency-gradcam -- --model inceptionv1 --weights /tmp/inceptionv1.safetensors --quick
//! cargo run --release -p tools --bin hash-weights -- --generator fc6 --out /tmp/upconvGAN_fc6.safetensors
//! cargo run --release -p chapter-13-gan-parametrization -- --generator fc6 --generator-weights /tmp/upconvGAN_fc6.safetensors --quick
//! ```
use std::path::PathBuf;

use anyhow::Result;
use chapter_13_gan_parametrization::UpconvArch;
use clap::Parser;
use vision_interp::models::hash_init;
use vision_interp::models::zoo::{entry, model_value_parser};

#[derive(Parser)]
#[command(
    about = "Write hash-built weights (real names and shapes, meaningless values) for a model of the zoo or a DeePSiM generator"
)]
struct Args {
    /// Model of the zoo
    #[arg(long, value_parser = model_value_parser(), required_unless_present = "generator", conflicts_with = "generator")]
    model: Option<String>,
    /// One of Lucent's DeePSiM generators instead (chapter 13's `--generator`)
    #[arg(long, value_enum)]
    generator: Option<UpconvArch>,
    /// Where to write the safetensors file
    #[arg(long)]
    out: PathBuf,
    /// Varies the values (the fixtures use 0)
    #[arg(long, default_value_t = 0)]
    phase: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (name, tensors) = match (&args.model, args.generator) {
        (_, Some(arch)) => (
            format!("DeePSiM {}", arch.name()),
            hash_init::tensors(&arch.tensor_shapes(), args.phase, &candle_core::Device::Cpu)?,
        ),
        (Some(model), None) => (model.clone(), entry(model)?.hash_weights(args.phase)?),
        (None, None) => anyhow::bail!("give --model or --generator"),
    };
    let count: usize = tensors.values().map(|t| t.elem_count()).sum();
    vision_interp::atomic::write_with(&args.out, |tmp| {
        Ok(candle_core::safetensors::save(&tensors, tmp.path())?)
    })?;
    println!("{name}: {} tensors, {count} values, written to {}", tensors.len(), args.out.display());
    Ok(())
}
