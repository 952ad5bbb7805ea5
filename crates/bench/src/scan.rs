//! `bench scan`: pass 1 of a dataset scan (decode, crop and resize, forward to the layer, the
//! per-channel bands) in views per second, for Lite0 (`stage3`) and InceptionV1
//! (`mixed4a_pre_relu`, hash-built weights), beside a PyTorch loop doing the same (DataLoader
//! with worker processes, the same batch), on the same photos. Each side runs the data once,
//! then with four times the views, and reports its peak resident memory after each: it should
//! not grow with the data.
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::Device;
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{self, Model};
use vision_interp::scan::{Scan, Source};

use crate::report::{short_model, Report};
use crate::run_peer;

#[derive(clap::Args)]
pub struct Args {
    /// Models to measure
    #[arg(long, value_delimiter = ',', default_value = "efficientnet-lite0,inceptionv1")]
    models: Vec<String>,
    /// Images (a folder, or `collection`)
    #[arg(long, default_value = "collection")]
    images: String,
    /// Views per image of the first run (the second has four times as many)
    #[arg(long, default_value_t = 1)]
    views: usize,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// DataLoader worker processes of the PyTorch peer
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// Peak resident memory of this process so far, in MB (Linux; 0 elsewhere).
fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.split_whitespace().next());
    kb.and_then(|v| v.parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let source = Source::open(&a.images)?;
    let folder = if a.images == "collection" {
        vision_interp::asset("photos/collection")
    } else {
        a.images.clone().into()
    };
    for name in &a.models {
        let weights = dir.path().join(format!("{name}.safetensors"));
        let (model, layer): (Box<dyn Model>, &str) = if name == "inceptionv1" {
            candle_core::safetensors::save(
                &hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu)?,
                &weights,
            )?;
            (Box::new(InceptionV1::load(Some(&weights), device)?), "mixed4a_pre_relu")
        } else {
            (models::load(name, None, device)?, "stage3")
        };
        println!(
            "\n{name} at {layer}, {} images, batch {}: pass 1 (decode, crop, forward, bands)",
            source.items.len(),
            a.batch
        );
        println!("{:<62} {:>8} {:>10} {:>10} {:>9}", "", "views", "views/s", "vs peer", "peak MB");
        let mut ours = Vec::new();
        for factor in [1, 4] {
            let views = a.views * factor;
            let scan =
                Scan::new(model.as_ref(), None, &source, layer, None, 9, views, 4096, a.batch, 0, device)?;
            let out = dir.path().join(format!("{name}-{factor}x"));
            std::fs::create_dir_all(&out)?;
            let start = Instant::now();
            let result = scan.run(None, &out, usize::MAX)?;
            let rate = result.state.views as f64 / start.elapsed().as_secs_f64();
            ours.push((
                format!("Candle (this book), {factor}× the data"),
                result.state.views,
                rate,
                peak_mb(),
            ));
        }
        let mut peer = Vec::new();
        if let Some(python) = python {
            let mut args: Vec<String> = ["--model", name, "--images"].iter().map(|s| s.to_string()).collect();
            args.push(folder.display().to_string());
            for (flag, v) in
                [("--views", a.views), ("--batch", a.batch), ("--threads", threads), ("--workers", a.workers)]
            {
                args.extend([flag.to_string(), v.to_string()]);
            }
            if name == "inceptionv1" {
                args.extend(["--weights".to_string(), weights.display().to_string()]);
            }
            let p = run_peer(python, "scan.py", &args)?;
            r.peer_versions(&p);
            let peer_name = p["name"].as_str().context("peer name")?.to_string();
            for f in ["1x", "4x"] {
                let num = |k: &str| p[format!("{k}_{f}")].as_f64().with_context(|| format!("{k}_{f}"));
                peer.push((
                    format!("{peer_name}, {f}"),
                    num("views")? as u64,
                    num("images_per_s")?,
                    num("peak_mb")?,
                ));
            }
        }
        let m = short_model(name);
        for (i, (label, views, rate, mb)) in ours.iter().enumerate() {
            let ratio = peer.get(i).map_or("-".to_string(), |p| format!("{:.2}", rate / p.2));
            println!("{label:<62} {views:>8} {rate:>10.1} {ratio:>10} {mb:>9.0}");
            let row = format!("{m}_{}x", [1, 4][i]);
            record(r, &row, *views as f64, *rate, *mb);
            if let Some(p) = peer.get(i) {
                r.ratio_of(&row, p.2 / rate); // the report's ratios are of times
            }
        }
        for (i, (label, views, rate, mb)) in peer.iter().enumerate() {
            println!("{label:<62} {views:>8} {rate:>10.1} {:>10} {mb:>9.0}", "1.00");
            record(r, &format!("{m}_{}x_peer", [1, 4][i]), *views as f64, *rate, *mb);
        }
    }
    println!("\n(vs peer: views per second divided by PyTorch's with the same data; above 1 is faster)");
    Ok(())
}

/// One printed row in the report: seconds per view, views per second, and the views and peak
/// memory beside them.
fn record(r: &mut Report, row: &str, views: f64, rate: f64, peak_mb: f64) {
    r.seconds.insert(row.into(), 1.0 / rate);
    r.rates.insert(row.into(), rate);
    r.rate_units.insert(row.into(), "views/s".into());
    r.extra.insert(format!("{row}_views"), views);
    r.extra.insert(format!("{row}_peak_mb"), peak_mb);
}
