//! The unit atlas: every unit of a layer rendered in batches, resumable and shardable, then
//! drawn as one grid for the book.
//!
//! ```text
//! cargo run --release -p chapter-03-actmax --bin atlas -- --layer stage3
//! cargo run --release -p chapter-03-actmax --bin atlas -- --layer head --units 0..64 --shard 2/4
//! ```
//! Kill it at any moment and run the same command again: finished units are skipped, and the
//! batch in progress is rendered again to the same images.
use std::path::PathBuf;

use anyhow::Result;
use chapter_03_actmax::atlas::{self, AtlasJob, Shard};
use chapter_04_dataset_examples::DatasetScan;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{GridSpec, Panel};
use vision_interp::models::Model;
use vision_interp::optvis::{ImageSpec, RenderConfig};
use vision_interp::scan::top_crops;

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
    #[arg(long, value_parser = vision_interp::flag::batch, default_value_t = 16)]
    batch: usize,
    /// This machine's share of the units, `k/n` from 1/n to n/n [default: from SLURM_ARRAY_TASK_ID
    /// or JOB_COMPLETION_INDEX, else all]
    #[arg(long)]
    shard: Option<Shard>,
    /// Optimisation steps per batch [default: 128; 16 with --quick]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
    /// Folder for the unit PNGs [default: target/vision-interp/atlas/<model>/<layer>]
    #[arg(long)]
    units_dir: Option<PathBuf>,
    /// Leave out the figures that put each unit beside its top dataset examples (chapter 4's
    /// scan of the layer, made now if it has not run)
    #[arg(long)]
    no_examples: bool,
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
    let steps = s.budget(args.steps, 16, 128);
    let dir = args.units_dir.clone().unwrap_or_else(|| {
        // A quick run's units are smaller and fewer steps: kept apart from the full run's.
        let units = vision_interp::work_dir().join("atlas").join(m.name()).join(&layer);
        if s.quick {
            units.join("quick")
        } else {
            units
        }
    });
    let shard = Shard::or_from_env(args.shard)?;
    // ANCHOR: atlas
    let job = AtlasJob {
        layer: layer.clone(),
        units: args.units.clone(),
        batch: args.batch,
        shard,
        image: ImageSpec::square(64),
        render: RenderConfig { steps, min_input: Some(128), ..Default::default() },
        seed: args.run.seed,
        out: dir.clone(),
        max_batches: None,
    };
    let summary = atlas::run(m, &job, &s.device)?;
    // ANCHOR_END: atlas
    println!("{} {} (shard {shard}): {summary}", m.name(), layer);
    if summary.done > 0 {
        s.record_timing("units_per_min", summary.units_per_minute());
    }
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
    if !args.no_examples {
        with_examples(&mut s, m, &layer, &panels, &args)?;
    }
    s.finish()
}

// ANCHOR: examples
/// Each unit's image beside the crops of its four top photos (chapter 4's scan, by the spatial
/// maximum), two units to a row and twenty to a figure, like OpenAI Microscope.
fn with_examples(s: &mut Session, m: &dyn Model, layer: &str, panels: &[Panel], args: &Args) -> Result<()> {
    let scan_layer = m.pre_activation(layer).unwrap_or(layer);
    let run = DatasetScan { quick: s.quick, seed: args.run.seed };
    let (ex, src) = run.examples(m, args.model.weights.as_deref(), scan_layer, &s.device)?;
    s.record("views", ex.views);
    s.record("views_per_photo", ex.views_per_image);
    s.record("receptive_field", ex.receptive_field);
    let first = args.units.as_ref().map_or(0, |r| r.start);
    let mut cells = Vec::new();
    for (i, panel) in panels.iter().enumerate() {
        let unit = first + i;
        cells.push(Panel::new(panel.image.clone(), format!("{layer}:{unit}")));
        for (img, score) in top_crops(&ex, &src, unit, 4, 64)? {
            cells.push(Panel::new(img, format!("{score:.1}")));
        }
    }
    for (part, chunk) in cells.chunks(20 * 5).enumerate() {
        let (a, b) = (first + 20 * part, first + 20 * part + chunk.len() / 5 - 1);
        let title = format!("{} {layer}:{a}-{b} and their top photos ({} views)", m.name(), ex.views);
        let rows: Vec<Vec<Panel>> = chunk.chunks(10).map(<[Panel]>::to_vec).collect();
        s.save_grid(
            &rows,
            &GridSpec::new(72).title(&title).photo(),
            (m.name(), &format!("{layer}-{a}-{b}"), "examples"),
        )?;
    }
    Ok(())
}
// ANCHOR_END: examples
