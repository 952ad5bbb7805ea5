//! The canonical batch run: every unit of a layer (or a range of units) rendered `batch` units
//! per optimisation, into one PNG per unit.
//!
//! - **Resumable.** A unit whose PNG exists is done. Batches are fixed by the unit list alone
//!   and each batch's random generator is seeded from the run's seed, the layer and the batch's
//!   first unit, so a batch rendered again after a kill gives the same images; only missing
//!   files are written, each atomically (temporary file, then rename): a kill at any moment
//!   loses at most the batch in progress.
//! - **Sharded.** `--shard k/n` takes every unit `u` with `u mod n = k − 1`, so `n` machines (or a
//!   scheduler's array job) split a layer without talking to each other.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use vision_interp::models::Model;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig};

pub use vision_interp::shard::Shard;

/// What to render.
#[derive(Debug, Clone)]
pub struct AtlasJob {
    pub layer: String,
    /// Units to render (`None`: all units of the layer).
    pub units: Option<std::ops::Range<usize>>,
    pub batch: usize,
    pub shard: Shard,
    pub image: ImageSpec,
    pub render: RenderConfig,
    pub seed: u64,
    /// Folder for the PNGs (`<layer>-<unit>.png`).
    pub out: PathBuf,
    /// Stop after this many rendered batches (to simulate an interruption in tests).
    pub max_batches: Option<usize>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AtlasSummary {
    /// Units rendered by this run.
    pub done: usize,
    /// Units whose PNG was already there.
    pub skipped: usize,
    /// Units whose batch failed (their error is printed).
    pub failed: usize,
    pub seconds: f64,
}

impl AtlasSummary {
    pub fn units_per_minute(&self) -> f64 {
        if self.seconds > 0.0 {
            60.0 * self.done as f64 / self.seconds
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for AtlasSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rendered, {} skipped (already done), {} failed; {:.1} units per minute",
            self.done,
            self.skipped,
            self.failed,
            self.units_per_minute()
        )
    }
}

/// Where unit `unit` of `layer` is written.
pub fn unit_path(out: &Path, layer: &str, unit: usize) -> PathBuf {
    out.join(format!("{layer}-{unit}.png"))
}

/// The units of this shard, in order, split into the run's fixed batches.
pub fn batches(units: std::ops::Range<usize>, shard: Shard, batch: usize) -> Vec<Vec<usize>> {
    let mine: Vec<usize> = units.filter(|&u| shard.deals(u)).collect();
    mine.chunks(batch.max(1)).map(<[usize]>::to_vec).collect()
}

/// Runs (or resumes) the job on `model`.
pub fn run(model: &dyn Model, job: &AtlasJob, device: &candle_core::Device) -> Result<AtlasSummary> {
    let info = model.layer(&job.layer)?;
    let units = job.units.clone().unwrap_or(0..info.channels);
    if units.end > info.channels {
        bail!(
            "{}: layer `{}` has units 0..={}; {units:?} is out of range",
            model.name(),
            job.layer,
            info.channels - 1
        );
    }
    std::fs::create_dir_all(&job.out).with_context(|| format!("cannot create {}", job.out.display()))?;
    let start = Instant::now();
    let mut summary = AtlasSummary::default();
    let mut rendered_batches = 0;
    for units in batches(units, job.shard, job.batch) {
        let missing: Vec<usize> =
            units.iter().copied().filter(|&u| !unit_path(&job.out, &job.layer, u).is_file()).collect();
        summary.skipped += units.len() - missing.len();
        if missing.is_empty() {
            continue;
        }
        if job.max_batches.is_some_and(|m| rendered_batches >= m) {
            break;
        }
        match render_batch(model, job, &units, device) {
            Ok(images) => {
                for (&u, img) in units.iter().zip(images) {
                    if missing.contains(&u) {
                        vision_interp::imageio::save_tensor_png(&img, &unit_path(&job.out, &job.layer, u))?;
                        summary.done += 1;
                    }
                }
            }
            Err(e) => {
                eprintln!("units {units:?} of {} failed: {e:#}", job.layer);
                summary.failed += missing.len();
            }
        }
        rendered_batches += 1;
    }
    summary.seconds = start.elapsed().as_secs_f64();
    Ok(summary)
}

/// One optimisation for a batch of units; image `b` maximises unit `units[b]`.
fn render_batch(
    model: &dyn Model,
    job: &AtlasJob,
    units: &[usize],
    device: &candle_core::Device,
) -> Result<Vec<candle_core::Tensor>> {
    let key = format!("{}/{}/{}", model.name(), job.layer, units[0]);
    let mut rng = vision_interp::rng::seeded(job.seed ^ vision_interp::rng::fnv1a(&key));
    let spec = ImageSpec { batch: units.len(), ..job.image };
    let param = ImageParam::new(&spec, &mut rng, device)?;
    let obj =
        Objective::sum(units.iter().enumerate().map(|(b, &u)| objective::channel(&job.layer, u, Some(b))))?;
    let out = render(model, &obj, &param, &job.render, &mut rng)?;
    let (_, images) = out.images.last().context("no image")?;
    (0..units.len()).map(|b| Ok(images.get(b)?)).collect()
}
