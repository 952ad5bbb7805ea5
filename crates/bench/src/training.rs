//! `bench training`: SimpleCNN training throughput.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use chapter_01_cnn_basics::train::train_step;
use vision_interp::models::simple_cnn::{init_varmap, SimpleCnn};
use vision_interp::optim::Adam;

use crate::report::Report;
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

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    for &size in &a.sizes {
        let mut rows = vec![Timing::ours(ours(a, size, device)?)];
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
            rows.push(Timing { name, key: "peer", seconds: peer["step_s"].as_f64().context("peer step_s")? });
            r.peer_versions(&peer);
        }
        let title = format!(
            "SimpleCNN training step (forward, cross-entropy, backward, Adam), batch {}, {size} × {size} px",
            a.batch
        );
        let key = format!("step_{size}px");
        table(r, &key, &title, "images/s", a.batch as f64, &rows);
        // How far from the cores' arithmetic: the step's FLOPs over its time, for each row.
        let gflop = step_flops(a.batch, size) / 1e9;
        r.extra.insert(format!("{key}_gflop"), gflop);
        for row in &rows {
            r.extra.insert(
                format!("{}_gflop_per_s", crate::report::row_name(&key, row.key)),
                gflop / row.seconds,
            );
        }
    }
    if let Some(mhz) = cpu_mhz() {
        // An upper bound: every thread with a Zen 3 or Haswell-and-later core's two 256-bit FMA
        // units to itself, 2 × 8 lanes × 2 FLOP per cycle, at the clock the kernel reports.
        r.extra.insert("fma_peak_gflop_per_s".into(), threads as f64 * 32.0 * mhz / 1e3);
    }
    Ok(())
}

/// FLOPs of one training step of SimpleCNN (three 3 × 3 convolutions of 32, 64 and 128 channels,
/// each followed by a 2 × 2 pool; linear 2048 → 512 → 10): two per multiply-add of the forward
/// pass, as many again for the weights' gradients and for the inputs' (but the first layer's,
/// whose input is the data).
fn step_flops(batch: usize, size: usize) -> f64 {
    let (mut macs, mut c_in, mut side) = (0, 3, size);
    for c in [32, 64, 128] {
        // Forward, weight gradient and input gradient: three products of the same size.
        macs += side * side * c * c_in * 9 * if c_in == 3 { 2 } else { 3 };
        (c_in, side) = (c, side / 2);
    }
    macs += (2048 * 512 + 512 * 10) * 3;
    2.0 * (macs * batch) as f64
}

/// The clock of the first core as the kernel reports it, in MHz (Linux).
fn cpu_mhz() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| l.strip_prefix("cpu MHz")?.split_once(':')?.1.trim().parse().ok())
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

#[cfg(test)]
mod tests {
    #[test]
    fn step_flops_count_the_products() {
        // conv1 (forward and weight gradient), conv2 and conv3 (and the input gradient), fc1 and
        // fc2 (three products each), two FLOPs per multiply-add, 32 images.
        let macs = 32 * 32 * 32 * 3 * 9 * 2 + 2 * (16 * 16 * 64 * 32 * 9 * 3) + (2048 * 512 + 5120) * 3;
        assert_eq!(super::step_flops(32, 32), 2.0 * (macs * 32) as f64);
        assert_eq!(super::step_flops(32, 32), 2_127_495_168.0);
    }
}
