//! Times the attribution methods on one photo: forward pass, saliency (forward + backward to
//! the pixels) and Grad-CAM, median of several runs.
//!
//! ```text
//! cargo run --release -p vision-interp --example bench_attribution [-- --device cpu --runs 10]
//! ```
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use vision_interp::device::{describe, select_device, DeviceChoice};
use vision_interp::models::{self, Model};
use vision_interp::{attribution as attr, imageio};

vision_interp::fast_allocator!();

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    #[arg(long, default_value_t = 10)]
    runs: usize,
    #[arg(long, default_value = "efficientnet-lite0")]
    model: String,
}

fn median(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<Duration> {
    f()?; // warm-up
    let mut times = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f().map(|_| t.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = select_device(args.device)?;
    let model = models::load(&args.model, None, &device)?;
    let m: &dyn Model = model.as_ref();
    let img = imageio::photo("chelsea.png", m.input_size(), &device)?;
    let batch = img.unsqueeze(0)?;
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "{} on {} ({threads} threads), 1 × 3 × 224 × 224, median of {} runs",
        m.name(),
        describe(&device),
        args.runs
    );
    let fwd = median(args.runs, || {
        m.logits(&batch)?.to_vec2::<f32>()?;
        Ok(())
    })?;
    let sal = median(args.runs, || {
        attr::saliency(m, &img, 282)?.to_vec2::<f32>()?;
        Ok(())
    })?;
    let cam = median(args.runs, || {
        attr::grad_cam(m, &img, 282, "head")?.cam.to_vec2::<f32>()?;
        Ok(())
    })?;
    println!("{:<34} {:>10}", "operation", "time");
    println!("{:<34} {:>7.1} ms", "forward (logits)", fwd.as_secs_f64() * 1e3);
    println!("{:<34} {:>7.1} ms", "saliency (forward + input grad)", sal.as_secs_f64() * 1e3);
    println!("{:<34} {:>7.1} ms", "Grad-CAM at head", cam.as_secs_f64() * 1e3);
    Ok(())
}
