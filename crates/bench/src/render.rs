//! `bench render`: feature visualisation at Lucent's defaults (a 128-px Fourier image with
//! decorrelated colour, the standard transformations, upsampled to 224 px, Adam 0.05) on
//! InceptionV1 with the parity fixtures' hash-built weights, which Lucent loads from the same
//! file: one unit, then a batch of units, one image each.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig};

use crate::{run_peer, table, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Steps per render (Lucent's default: 512)
    #[arg(long, default_value_t = 512)]
    steps: usize,
    /// Units rendered together in the batch measurement
    #[arg(long, default_value_t = 8)]
    batch: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let weights = dir.path().join("inceptionv1.safetensors");
    candle_core::safetensors::save(&hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu)?, &weights)?;
    let m = InceptionV1::load(Some(&weights), device)?;
    let cfg = RenderConfig { steps: a.steps, progress: false, ..Default::default() };
    let warmup = RenderConfig { steps: 4, ..cfg.clone() };
    let time_render = |obj: &Objective, batch: usize, cfg: &RenderConfig| -> Result<f64> {
        let mut rng = vision_interp::rng::seeded(0);
        let p = ImageParam::new(&ImageSpec { batch, ..ImageSpec::square(128) }, &mut rng, device)?;
        let t = std::time::Instant::now();
        render(&m, obj, &p, cfg, &mut rng)?;
        Ok(t.elapsed().as_secs_f64())
    };
    // Warm-up (on a GPU, the first use of each kernel loads it).
    time_render(&objective::channel("mixed4a", 476, None), 1, &warmup)?;
    let single = time_render(&objective::channel("mixed4a", 476, None), 1, &cfg)?;
    // Units 476, 477, … of mixed4a (508 channels), wrapping around past the last.
    let batch_obj =
        Objective::sum((0..a.batch).map(|b| objective::channel("mixed4a", (476 + b) % 508, Some(b))))?;
    let batch = time_render(&batch_obj, a.batch, &cfg)?;
    let mut one = vec![Timing { name: "Candle (this book)".into(), seconds: single }];
    let mut many = vec![Timing { name: "Candle (this book)".into(), seconds: batch }];
    if let Some(python) = python {
        let args: Vec<String> = [
            ("--weights", weights.display().to_string()),
            ("--steps", a.steps.to_string()),
            ("--batch", a.batch.to_string()),
            ("--threads", threads.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect();
        let peer = run_peer(python, "render.py", &args)?;
        let name = peer["name"].as_str().context("peer name")?.to_string();
        one.push(Timing { name: name.clone(), seconds: peer["single_s"].as_f64().context("single_s")? });
        many.push(Timing { name, seconds: peer["batch_s"].as_f64().context("batch_s")? });
    }
    table(&format!("inceptionv1: one {}-step render of mixed4a:476", a.steps), "renders/min", 60.0, &one);
    let title = format!("inceptionv1: {} units of mixed4a in one batch, {} steps", a.batch, a.steps);
    table(&title, "units/min", 60.0 * a.batch as f64, &many);
    Ok(())
}
