//! Lists a model's named layers: what `layer:unit` may name in every chapter.
//!
//! ```text
//! cargo run --release -p vision-interp --bin layers -- --model inceptionv1 [--weights PATH]
//! ```
use anyhow::Result;
use clap::Parser;
use vision_interp::device::{select_device, DeviceChoice};
use vision_interp::models::{self, MODEL_NAMES};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "List a model's named layers with their channels and spatial sizes")]
struct Args {
    /// Model (efficientnet-lite0, inceptionv1, resnet18, resnet50, vgg16)
    #[arg(long, default_value = "efficientnet-lite0")]
    model: String,
    /// Weights file instead of the default search (or hub:OWNER/REPO[/FILE])
    #[arg(long)]
    weights: Option<std::path::PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let m = models::load(&args.model, args.weights.as_deref(), &select_device(DeviceChoice::Cpu)?)?;
    println!(
        "{}: {} layers at {} px (models: {})",
        m.name(),
        m.layers().len(),
        m.input_size(),
        MODEL_NAMES.join(", ")
    );
    println!("{:<40} {:>8} {:>9}  description", "layer", "units", "size");
    for l in m.layers() {
        println!(
            "{:<40} {:>8} {:>9}  {}",
            l.name,
            l.channels,
            format!("{}×{}", l.height, l.width),
            l.description
        );
    }
    Ok(())
}
