//! `bench nmf`: chapter 12's factorisation of a layer's positions × channels into groups,
//! beside scikit-learn's NMF on the same matrix in the same run (`peers/nmf.py`): Lite0's
//! `stage4` on a 224-px photo (14 × 14 positions, its 112 signed channels split into their
//! positive and negative parts as chapter 12 does: a 196 × 224 matrix), into 6 groups.
//! scikit-learn runs the same algorithm (multiplicative updates, random start, the same number
//! of iterations, no early stop), and also its default (coordinate descent from an NNDSVDa
//! start, what Lucid's `ChannelReducer` gets): the relative errors are printed beside the times,
//! so a faster factorisation that fits worse shows.
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use chapter_12_activation_grids::grid::position_vectors;
use chapter_12_activation_grids::nmf::nmf;
use vision_interp::imageio::photo;
use vision_interp::models;

use crate::report::Report;
use crate::{flags, run_peer, table, time_it, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Groups (chapter 12: 6)
    #[arg(long, default_value_t = 6)]
    groups: usize,
    /// Multiplicative updates (chapter 12: 500)
    #[arg(long, default_value_t = 500)]
    iterations: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let lite0 = models::load("efficientnet-lite0", None, device)?;
    let img = photo("chelsea.png", 224, device)?;
    let v = position_vectors(lite0.as_ref(), &img, "stage4")?.vectors;
    let x = Tensor::cat(&[v.relu()?, v.neg()?.relu()?], 1)?.to_device(&Device::Cpu)?;
    let (n, m) = x.dims2()?;
    let dir = tempfile::tempdir()?;
    let matrix = dir.path().join("matrix.f32");
    let bytes: Vec<u8> = x.flatten_all()?.to_vec1::<f32>()?.iter().flat_map(|f| f.to_le_bytes()).collect();
    std::fs::write(&matrix, bytes)?;

    let mut error = f32::NAN;
    let seconds = time_it(1, 3, 1, || {
        let f = nmf(&x, a.groups, a.iterations, &mut vision_interp::rng::seeded(0))?;
        error = *f.errors.last().context("no iterations")?;
        Ok(())
    })?;
    println!("this book: multiplicative updates, relative error {error:.4}");
    r.extra.insert("nmf_error".into(), f64::from(error));
    let mut rows = vec![Timing { name: "Candle, f64 (this book)".into(), key: "", seconds }];
    if let Some(python) = python {
        let args = flags(&[
            ("--matrix", matrix.display().to_string()),
            ("--rows", n.to_string()),
            ("--cols", m.to_string()),
            ("--groups", a.groups.to_string()),
            ("--iterations", a.iterations.to_string()),
            ("--threads", threads.to_string()),
        ]);
        let peer = run_peer(python, "nmf.py", &args)?;
        r.peer_versions(&peer);
        for (key, row, what) in [
            ("mu", "sklearn_mu", "multiplicative updates"),
            ("default", "sklearn_default", "its default (cd, NNDSVDa)"),
        ] {
            let p = &peer[key];
            let name = format!("scikit-learn {}, {}", peer["version"].as_str().unwrap_or("?"), key);
            let (error, iterations) = (p["error"].as_f64().context("error")?, p["iterations"].as_f64());
            println!("scikit-learn {what}: relative error {error:.4} after {} iterations", p["iterations"]);
            r.extra.insert(format!("nmf_{row}_error"), error);
            r.extra.insert(format!("nmf_{row}_iterations"), iterations.context("iterations")?);
            rows.push(Timing { name, key: row, seconds: p["seconds"].as_f64().context("seconds")? });
        }
    }
    let title = format!(
        "NMF of Lite0 stage4 on chelsea.png ({n} × {m}) into {} groups, {} iterations",
        a.groups, a.iterations
    );
    table(r, "nmf", &title, "per second", 1.0, &rows);
    Ok(())
}
