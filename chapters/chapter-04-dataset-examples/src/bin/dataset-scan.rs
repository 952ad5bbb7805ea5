//! `dataset-scan`: the dataset examples of every channel of a layer, over any number of
//! images, on one machine or many.
//!
//! ```sh
//! dataset-scan --images DIR --layer stage4 --top-k 9 --out OUT           # one machine
//! dataset-scan --images DIR --layer stage4 --top-k 9 --out OUT1 --shard 1/2
//! dataset-scan --images DIR --layer stage4 --top-k 9 --out OUT2 --shard 2/2
//! dataset-scan merge --out OUT OUT1 OUT2                                  # = the one-machine run
//! ```
//! Under a Slurm job array or a Kubernetes Indexed Job the shard comes from the environment
//! (see the chapter's page). A killed run started again with the same flags resumes.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use vision_interp::cli::ModelArgs;
use vision_interp::device::{select_device, DeviceChoice};
use vision_interp::scan::{self, Scan, Shard, Source};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Dataset examples of every channel of a layer: top and bottom views, bands \
                   around zero, a uniform sample; resumable and sharded")]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Images: a folder (searched recursively for JPEG/PNG/WebP files and WebDataset .tar
    /// shards), a .tar file, `collection` (the book's photos) or `imagenette` (downloaded once)
    #[arg(long, required = true)]
    images: Option<String>,
    /// Layer to scan (`layers --model M` lists them)
    #[arg(long, required = true)]
    layer: Option<String>,
    /// Channels `a..b` of the layer [default: all]
    #[arg(long, value_parser = parse_range)]
    channels: Option<(usize, usize)>,
    /// Examples kept per channel in each band
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 9)]
    top_k: usize,
    /// Views (crops) per image: the centre crop, then seeded random crops
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 1)]
    views: usize,
    /// Views in the uniform sample behind the histograms and quantile bands
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 4096)]
    sample: usize,
    /// Views per forward pass
    #[arg(long, value_parser = vision_interp::flag::batch, default_value_t = 32)]
    batch: usize,
    /// Save the state every this many batches
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 20)]
    checkpoint_every: usize,
    /// This run's part, `k/n` [default: from SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX]
    #[arg(long)]
    shard: Option<Shard>,
    /// Skip pass 2 (the examples' images)
    #[arg(long)]
    no_images: bool,
    /// Output folder: examples.json, scan-state.safetensors, examples/
    #[arg(long, required = true)]
    out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// Seed of the random crops and the sample
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Subcommand)]
enum Command {
    /// Merge the output folders of a sharded scan's shards into the result of one run
    Merge {
        /// Output folder of the merged result
        #[arg(long)]
        out: PathBuf,
        /// The shards' output folders
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
}

fn parse_range(s: &str) -> Result<(usize, usize)> {
    let (a, b) = s.split_once("..").with_context(|| format!("`{s}` is not a range a..b"))?;
    Ok((a.parse()?, b.parse()?))
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(Command::Merge { out, shards }) = &args.command {
        let examples = scan::merge(shards, out)?;
        println!(
            "merged {} shards: {} views of {} images at {}; wrote {}",
            shards.len(),
            examples.views,
            examples.images,
            examples.layer,
            out.join(scan::EXAMPLES_FILE).display()
        );
        return Ok(());
    }
    let (images, layer, out) = (
        args.images.as_deref().expect("required"),
        args.layer.as_deref().expect("required"),
        args.out.clone().expect("required"),
    );
    let shard = match args.shard {
        Some(s) => Some(s),
        None => Shard::from_env(|v| std::env::var(v).ok())?,
    };
    let device = select_device(args.device)?;
    let source = Source::open(images)?;
    let model = args.model.load(&device)?;
    let m = model.as_ref();
    let scan = Scan::new(
        m,
        args.model.weights.as_deref(),
        &source,
        layer,
        args.channels,
        args.top_k,
        args.views,
        args.sample,
        args.batch,
        args.seed,
        &device,
    )?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let result = scan.run(shard, &out, args.checkpoint_every)?;
    let examples = result.save(&out, &source)?;
    println!("wrote {}", out.join(scan::EXAMPLES_FILE).display());
    if !args.no_images {
        let n = scan::write_images(&examples, &source, &out, &[])?;
        println!("pass 2: wrote {n} images to {}", out.join("examples").display());
    }
    Ok(())
}
