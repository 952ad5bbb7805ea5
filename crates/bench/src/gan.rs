//! `bench gan`: chapter 13's generator step. First the transposed convolutions of Lucent's
//! DeePSiM fc6 generator one by one, forward and input gradient, as the book computes them
//! (`ops::conv_transpose2d`: on the CPU one matrix product and a col2im) beside Candle's own
//! `conv_transpose2d`; then one step of code optimisation through the whole generator
//! (`visualize`, a loss on the images, the gradient to the codes) beside Lucent's `upconvGAN`
//! in PyTorch (`peers/gan.py`) on the same hash-built weights, in the same run.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor, Var};
use chapter_13_gan_parametrization::{UpconvArch, UpconvGan};
use vision_interp::models::hash_init;
use vision_interp::ops;

use crate::report::Report;
use crate::{flags, run_peer, table, time_it, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Codes per step (Lucent's notebook: 4)
    #[arg(long, default_value_t = 4)]
    batch: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let arch = UpconvArch::Fc6;
    let tensors = hash_init::tensors(&arch.tensor_shapes(), 0, device)?;
    let layers = [
        ("deconv5", 4, 2),
        ("conv5_1", 8, 1),
        ("deconv4", 8, 2),
        ("conv4_1", 16, 1),
        ("deconv3", 16, 2),
        ("conv3_1", 32, 1),
        ("deconv2", 32, 2),
        ("deconv1", 64, 2),
        ("deconv0", 128, 2),
    ];
    let mut rng = vision_interp::rng::seeded(0);
    let (mut ours_total, mut candle_total) = (0.0, 0.0);
    println!("\n{:<10} {:>14} {:>12} {:>12} {:>8}", "layer", "input", "book, ms", "Candle, ms", "ratio");
    for (name, side, stride) in layers {
        let w = &tensors[&format!("{name}.weight")];
        let (c_in, pad) = (w.dim(0)?, 1); // every layer pads by 1
        let x = Var::from_tensor(&vision_interp::rng::randn(
            &mut rng,
            (a.batch, c_in, side, side),
            0.0,
            1.0,
            device,
        )?)?;
        let step = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| -> Result<f64> {
            time_it(1, 5, 1, || {
                let y = f(x.as_tensor())?;
                let g = y.sum_all()?.backward()?;
                g.get(x.as_tensor()).context("no gradient")?;
                Ok(())
            })
        };
        let ours = step(&|x| ops::conv_transpose2d(x, w, None, stride, pad))?;
        let theirs = step(&|x| x.conv_transpose2d(w, pad, 0, stride, 1))?;
        (ours_total, candle_total) = (ours_total + ours, candle_total + theirs);
        let input = format!("{c_in}×{side}×{side}");
        println!("{name:<10} {input:>14} {:>12.2} {:>12.2} {:>8.2}", 1e3 * ours, 1e3 * theirs, ours / theirs);
        layer_row(r, name, ours, theirs);
    }
    layer_row(r, "all_layers", ours_total, candle_total);
    println!(
        "{:<10} {:>14} {:>12.2} {:>12.2} {:>8.2}",
        "all",
        "",
        1e3 * ours_total,
        1e3 * candle_total,
        ours_total / candle_total
    );

    let g = UpconvGan::from_store(
        arch,
        &vision_interp::weights::WeightStore::from_tensors(Path::new("hash"), tensors.clone()),
    )?;
    let code = Var::from_tensor(&vision_interp::rng::randn(&mut rng, (a.batch, 4096), 0.0, 1.0, device)?)?;
    let seconds = time_it(1, 5, 1, || {
        let loss = g.visualize(code.as_tensor())?.narrow(1, 0, 1)?.mean_all()?.neg()?;
        loss.backward()?.get(code.as_tensor()).context("no gradient")?;
        Ok(())
    })?;
    let mut rows = vec![Timing::ours(seconds)];
    if let Some(python) = python {
        let dir = tempfile::tempdir()?;
        let weights = dir.path().join("fc6.safetensors");
        candle_core::safetensors::save(
            &hash_init::tensors(&arch.tensor_shapes(), 0, &Device::Cpu)?,
            &weights,
        )?;
        let args = flags(&[
            ("--weights", weights.display().to_string()),
            ("--batch", a.batch.to_string()),
            ("--threads", threads.to_string()),
        ]);
        let peer = run_peer(python, "gan.py", &args)?;
        r.peer_versions(&peer);
        let name = format!("Lucent 0.1.8 (PyTorch {})", peer["torch"].as_str().unwrap_or("?"));
        rows.push(Timing { name, key: "peer", seconds: peer["seconds"].as_f64().context("seconds")? });
    }
    let title =
        format!("DeePSiM fc6: visualize and the gradient to {} codes of 4096 (hash-built weights)", a.batch);
    table(r, "code_step", &title, "codes/s", a.batch as f64, &rows);
    r.headline("code_step");
    Ok(())
}

/// One layer of the first table in the report: the phases' seconds (`layer`) over Candle's own
/// kernel's (`layer_candle`).
fn layer_row(r: &mut Report, layer: &str, ours: f64, candle: f64) {
    r.seconds.insert(layer.into(), ours);
    r.seconds.insert(format!("{layer}_candle"), candle);
    r.ratio_of(layer, ours / candle);
}
