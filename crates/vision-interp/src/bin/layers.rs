//! Lists a model's named layers: what `layer:unit` may name in every chapter; with `--zoo`,
//! the models `--model` accepts.
//!
//! ```text
//! cargo run --release -p vision-interp --bin layers -- --model inceptionv1 [--weights PATH]
//! cargo run --release -p vision-interp --bin layers -- --zoo
//! ```
use anyhow::Result;
use clap::Parser;
use vision_interp::cli::ModelArgs;
use vision_interp::device::{select_device, DeviceChoice};
use vision_interp::models::MODELS;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "List a model's named layers with their channels and spatial sizes")]
struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// List the zoo (every model `--model` accepts, with its roles) instead
    #[arg(long)]
    zoo: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.zoo {
        for e in MODELS {
            let aliases =
                if e.aliases.is_empty() { String::new() } else { format!(" ({})", e.aliases.join(", ")) };
            println!("{}{aliases}: {}", e.name, e.summary);
        }
        return Ok(());
    }
    let m = args.model.load(&select_device(DeviceChoice::Cpu)?)?;
    let roles = m.card().roles;
    println!("{}: {} layers at {} px", m.name(), m.layers().len(), m.input_size());
    println!(
        "roles: showcase unit {}, last convolution {}, Grad-CAM ladder {}, circuit {}",
        roles.showcase_unit,
        roles.last_conv,
        roles.cam_ladder.join(" "),
        roles.circuit.map_or("none".into(), |(from, to, unit)| format!("{from} → {to}:{unit}"))
    );
    if !roles.lookalikes.is_empty() {
        println!("units that look like curve or colour detectors: {}", roles.lookalikes.join(" "));
    }
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
