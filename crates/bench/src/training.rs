//! `bench training`: SimpleCNN training throughput.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use vision_interp::models::simple_cnn::{init_varmap, SimpleCnn};
use vision_interp::optim::Adam;
use vision_interp::train::train_step;

use crate::{run_peer, table, time_it, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Images per batch
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Image sizes to measure (pixels per side)
    #[arg(long, value_delimiter = ',', default_value = "32,64")]
    sizes: Vec<usize>,
    /// Timed steps per trial
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Trials (the median is reported)
    #[arg(long, default_value_t = 3)]
    trials: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize) -> Result<()> {
    for &size in &a.sizes {
        let mut rows = vec![Timing { name: "Candle (this book)".into(), seconds: ours(a, size, device)? }];
        if let Some(python) = python {
            let args: Vec<String> = [
                ("--batch", a.batch),
                ("--size", size),
                ("--steps", a.steps),
                ("--trials", a.trials),
                ("--threads", threads),
            ]
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
            let peer = run_peer(python, "simple_cnn_train.py", &args)?;
            let name = peer["name"].as_str().context("peer name")?.to_string();
            rows.push(Timing { name, seconds: peer["step_s"].as_f64().context("peer step_s")? });
        }
        let title = format!(
            "SimpleCNN training step (forward, cross-entropy, backward, Adam), batch {}, {size} × {size} px",
            a.batch
        );
        table(&title, "images/s", a.batch as f64, &rows);
    }
    Ok(())
}

/// Seconds per training step of our SimpleCNN, on random images.
fn ours(a: &Args, size: usize, device: &Device) -> Result<f64> {
    let mut rng = vision_interp::rng::seeded(0);
    let varmap = VarMap::new();
    init_varmap(&varmap, 10, &mut rng, device)?;
    let classes = (0..10).map(|c| c.to_string()).collect();
    let net = SimpleCnn::new(
        VarBuilder::from_varmap(&varmap, DType::F32, device),
        classes,
        size,
        vision_interp::rng::seeded(1),
    )?;
    let mut opt = Adam::new(&varmap, 1e-3)?;
    let x = vision_interp::rng::rand_uniform(&mut rng, (a.batch, 3, size, size), 0.0, 1.0, device)?;
    let labels: Vec<u32> = (0..a.batch as u32).map(|i| i % 10).collect();
    let y = Tensor::new(labels.as_slice(), device)?;
    time_it(3, a.trials, a.steps, || {
        train_step(&net, &mut opt, &x, &y)?;
        Ok(())
    })
}
