//! The unit atlas: every unit of a layer rendered in batches, resumable and shardable, then
//! drawn as one grid for the book.
//!
//! ```text
//! cargo run --release -p chapter-03-actmax --bin atlas -- --layer stage3
//! cargo run --release -p chapter-03-actmax --bin atlas -- --layer head --units 0..64 --shard 1/4
//! ```
//! Kill it at any moment and run the same command again: finished units are skipped, and the
//! batch in progress is rendered again to the same images.
use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{GridSpec, Panel};
use vision_interp::optvis::atlas::{self, AtlasJob, Shard};
use vision_interp::optvis::{ImageSpec, RenderConfig};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Render every unit of a layer (resumable, shardable) and draw the atlas")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Layer whose units are rendered [default: the layer of the model's showcase unit]
    #[arg(long)]
    layer: Option<String>,
    /// Units `a..b` [default: all]
    #[arg(long, value_parser = parse_range)]
    units: Option<std::ops::Range<usize>>,
    /// Units per optimisation
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// This machine's share of the units, `k/n`
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Optimisation steps per batch [default: 128; 16 with --quick]
    #[arg(long)]
    steps: Option<usize>,
    /// Folder for the unit PNGs [default: target/vision-interp/atlas/<model>/<layer>]
    #[arg(long)]
    units_dir: Option<PathBuf>,
}

fn parse_range(s: &str) -> Result<std::ops::Range<usize>> {
    let (a, b) = s.split_once("..").ok_or_else(|| anyhow::anyhow!("`{s}`: write a range as a..b"))?;
    Ok(a.parse()?..b.parse()?)
}

fn main() -> Result<()> {
    let args = Args::parse();
    // The atlas figure is the book's appendix page's (`--out book/figures/appendix-atlas`).
    let mut s = Session::start(&args.run, "appendix-atlas")?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let layer = match &args.layer {
        Some(l) => l.clone(),
        None => vision_interp::models::parse_unit(m, m.card().roles.showcase_unit)?.layer,
    };
    m.layer(&layer)?;
    let steps = args.steps.unwrap_or(if s.quick { 16 } else { 128 });
    let dir = args
        .units_dir
        .clone()
        .unwrap_or_else(|| vision_interp::work_dir().join("atlas").join(m.name()).join(&layer));
    // ANCHOR: atlas
    let job = AtlasJob {
        layer: layer.clone(),
        units: args.units.clone(),
        batch: args.batch,
        shard: args.shard,
        image: ImageSpec::square(64),
        render: RenderConfig { steps, min_input: Some(128), ..Default::default() },
        seed: args.run.seed,
        out: dir.clone(),
        max_batches: None,
    };
    let summary = atlas::run(m, &job, &s.device)?;
    // ANCHOR_END: atlas
    println!("{} {} (shard {}/{}): {summary}", m.name(), layer, args.shard.index, args.shard.count);
    let units = args.units.clone().unwrap_or(0..m.layer(&layer)?.channels);
    let missing = units.clone().filter(|&u| !atlas::unit_path(&dir, &layer, u).is_file()).count();
    if missing > 0 {
        println!("{missing} unit(s) of {} not rendered yet (other shards?): no atlas figure", layer);
        return Ok(());
    }
    let panels: Vec<Panel> = units
        .map(|u| {
            let img = vision_interp::imageio::read_rgb(&atlas::unit_path(&dir, &layer, u))?;
            Ok(Panel::new(img, format!("{layer}:{u}")))
        })
        .collect::<Result<_>>()?;
    let rows: Vec<Vec<Panel>> = panels.chunks(10).map(<[Panel]>::to_vec).collect();
    let title = format!("Unit atlas of {} {}, {steps} steps, 64 px, seed {}", m.name(), layer, args.run.seed);
    s.save_grid(&rows, &GridSpec::new(96).title(&title).photo(), (m.name(), &layer, "atlas"))?;
    s.finish();
    Ok(())
}
