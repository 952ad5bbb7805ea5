//! `bench render`: feature visualisation at Lucent's defaults (a 128-px Fourier image with
//! decorrelated colour, the standard transformations, upsampled to 224 px, Adam 0.05) on
//! InceptionV1 with the parity fixtures' hash-built weights, which Lucent loads from the same
//! file: batches of 1, 8, … units, one image each, and what each costs per image.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig};

use crate::report::Report;
use crate::{flags, run_peer, table, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Steps per render (Lucent's default: 512)
    #[arg(long, default_value_t = 512)]
    steps: usize,
    /// Batch sizes: each is one render of that many units, one image each
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    batches: Vec<usize>,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
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
    // Units 476, 477, … of mixed4a (508 channels), wrapping around past the last.
    let units =
        |b: usize| Objective::sum((0..b).map(|i| objective::channel("mixed4a", (476 + i) % 508, Some(i))));
    let mut ours = Vec::new();
    for &b in &a.batches {
        ours.push(time_render(&units(b)?, b, &cfg)?);
    }
    let peer = match python {
        Some(python) => {
            let batches = a.batches.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
            let args = flags(&[
                ("--weights", weights.display().to_string()),
                ("--steps", a.steps.to_string()),
                ("--batches", batches),
                ("--threads", threads.to_string()),
            ]);
            let peer = run_peer(python, "render.py", &args)?;
            r.peer_versions(&peer);
            Some(peer)
        }
        None => None,
    };
    for (&b, &seconds) in a.batches.iter().zip(&ours) {
        let mut rows = vec![Timing::ours(seconds)];
        if let Some(peer) = &peer {
            let name = peer["name"].as_str().context("peer name")?.to_string();
            let s =
                peer["seconds"][b.to_string()].as_f64().with_context(|| format!("peer seconds for {b}"))?;
            rows.push(Timing { name, key: "peer", seconds: s });
        }
        let title = format!("inceptionv1: {b} unit(s) of mixed4a in one batch, {} steps", a.steps);
        table(r, &format!("batch_{b}"), &title, "units/min", 60.0 * b as f64, &rows);
    }
    Ok(())
}
