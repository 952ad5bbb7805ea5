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
    print!("{}", vision_interp::models::layer_table(m.as_ref()));
    Ok(())
}
