//! `bench accent`: one feature accentuation at Faccent's defaults (a 512-px Fourier image
//! started at a photo, 16 random views a step, 100 steps of Adam, the balanced regulariser at
//! `stage2` with α = 1, the transparency map) on Lite0, towards logit 292, beside the same
//! algorithm in PyTorch (Faccent's `render_vis` as specified, written out in the peer, on timm's
//! `tf_efficientnet_lite0`), in the same run and on the same photo. The third row is PyTorch
//! with the two economies of `accentuate` (the seed run only to the regulariser's layer, one
//! full backward pass instead of two): the first ratio is against Faccent as it is written, the
//! difference between the two peer rows is what the algorithm saves, whatever the framework.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use chapter_05_faccent::accent::{accentuate, AccentConfig};
use vision_interp::imageio::load_square;
use vision_interp::models;
use vision_interp::optvis::{objective, ImageParam, Space};

use crate::report::Report;
use crate::{flags, run_peer, table, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Canvas side in pixels (Faccent: 512)
    #[arg(long, default_value_t = 512)]
    size: u32,
    /// Random views per step (Faccent: 16)
    #[arg(long, default_value_t = 16)]
    views: usize,
    /// Steps (Faccent: 99 plus the first)
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// A smaller run: 256 px, 8 views, 10 steps
    #[arg(long)]
    quick: bool,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let (size, views, steps) = if a.quick { (256, 8, 10) } else { (a.size, a.views, a.steps) };
    let m = models::load("efficientnet-lite0", None, device)?;
    let photo = vision_interp::asset("photos/chelsea.png");
    let (seed, _) = load_square(&photo, size, device)?;
    let obj = objective::channel("logits", 292, None);
    let cfg = AccentConfig {
        steps,
        views,
        reg_layer: Some("stage2".into()),
        progress: false,
        ..Default::default()
    };
    let time = |cfg: &AccentConfig| -> Result<f64> {
        let p = ImageParam::from_image(&seed, Space::Fft, 5.0)?;
        let t = std::time::Instant::now();
        accentuate(m.as_ref(), &obj, &p, &seed, cfg, &mut vision_interp::rng::seeded(0))?;
        Ok(t.elapsed().as_secs_f64())
    };
    time(&AccentConfig { steps: 2, ..cfg.clone() })?; // warm-up
    let mut rows = vec![Timing::ours(time(&cfg)?)];
    if let Some(python) = python {
        let args = flags(&[
            ("--photo", photo.display().to_string()),
            ("--size", size.to_string()),
            ("--views", views.to_string()),
            ("--steps", steps.to_string()),
            ("--threads", threads.to_string()),
        ]);
        let peer = run_peer(python, "accent.py", &args)?;
        r.peer_versions(&peer);
        let name = peer["name"].as_str().context("peer name")?.to_string();
        let seconds = peer["seconds"].as_f64().context("seconds")?;
        rows.push(Timing { name: name.clone(), key: "peer", seconds });
        let lean = peer["lean_seconds"].as_f64().context("lean_seconds")?;
        rows.push(Timing {
            name: format!("{name}, with this book's economies"),
            key: "peer_economies",
            seconds: lean,
        });
    }
    let title = format!("efficientnet-lite0: one accentuation, {size} px, {views} views, {steps} steps");
    table(r, "accentuation", &title, "runs/min", 60.0, &rows);
    if let Some(lean) = rows.get(2) {
        // The framework alone: this book's time over PyTorch's running the same economies.
        r.ratio_of("accentuation_vs_peer_economies", rows[0].seconds / lean.seconds);
    }
    Ok(())
}
