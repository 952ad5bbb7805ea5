//! Benchmarks that print figures, beside the Python peer measured in the same run.
//!
//! ```text
//! ci/bench training          # sets up the PyTorch peer in .venv-bench, then runs this
//! ci/bench models
//! ci/bench render [--steps 512 --batches 1,8]
//! ci/bench scan [--views 1 --batch 32]
//! ci/bench accent [--quick]
//! ci/bench style [--steps 64]
//! ci/bench nmf [--groups 6 --iterations 500]
//! ci/bench gan [--batch 4]
//! cargo run --release -p vision-interp-bench -- training [--python PATH]
//! ```
//! Without `--python`, only the Rust side is measured. With it, every run but `devices` writes
//! what its tables print to `book/bench/NAME.json` (NAME: the subcommand; see [`report`]), the
//! file the book glues its speed numbers from; `--no-report` leaves it alone. `ci/bench-book`
//! reruns every benchmark the book quotes, with the book's flags.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use report::Report;
use vision_interp::device::{describe, select_device, DeviceChoice};

vision_interp::fast_allocator!();

mod accent;
mod devices;
mod gan;
mod models;
mod nmf;
mod render;
pub mod report;
mod scan;
mod style;
mod training;

#[derive(Parser)]
#[command(about = "Speed of the book's hot paths, beside PyTorch")]
struct Args {
    #[command(subcommand)]
    what: What,
    /// Where to compute (the PyTorch peer always runs on the CPU)
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu, global = true)]
    device: DeviceChoice,
    /// Python interpreter with the peer's packages (see `ci/bench`); none: Rust only
    #[arg(long, global = true)]
    python: Option<PathBuf>,
    /// Threads for both sides [default: all cores]
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Do not write book/bench/NAME.json (an experiment with other flags)
    #[arg(long, global = true)]
    no_report: bool,
}

#[derive(Subcommand)]
enum What {
    /// SimpleCNN training steps (forward, cross-entropy, backward, Adam), images per second
    Training(training::Args),
    /// InceptionV1 and Lite0 at 224 px: forward, and forward + input gradient, per image
    Models(models::Args),
    /// Feature visualisation at Lucent's defaults on InceptionV1: one render, and a batch
    Render(render::Args),
    /// Pass 1 of a dataset scan (decode, crop, forward to a layer, bands), views per second
    Scan(scan::Args),
    /// Feature accentuation at Faccent's defaults on Lite0: one run
    Accent(accent::Args),
    /// Style transfer as chapter 11 runs it, on Lite0 and InceptionV1: one transfer
    Style(style::Args),
    /// Chapter 12's NMF of a layer's positions into groups, beside scikit-learn on the same matrix
    Nmf(nmf::Args),
    /// Chapter 13's generator: transposed convolutions by phases beside Candle's, one code step beside Lucent
    Gan(gan::Args),
    /// The CPU against --device: forward passes, gradients, a render, training steps
    Devices(devices::Args),
}

/// One measured implementation: the name printed, the key of its row in the report (empty
/// for this book's row, `peer` for the peer's: see [`report`]) and seconds per operation.
pub struct Timing {
    pub name: String,
    pub key: &'static str,
    pub seconds: f64,
}

impl Timing {
    /// This book's row.
    pub fn ours(seconds: f64) -> Self {
        Timing { name: "Candle (this book)".into(), key: "", seconds }
    }
}

/// Median over `trials` of the mean time of `reps` calls of `f`, after `warmup` calls.
pub fn time_it(warmup: usize, trials: usize, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(trials);
    for _ in 0..trials.max(1) {
        let t = Instant::now();
        for _ in 0..reps.max(1) {
            f()?;
        }
        times.push(t.elapsed().as_secs_f64() / reps.max(1) as f64);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Command-line flags for a peer: `--name value` for each pair.
pub fn flags(pairs: &[(&str, String)]) -> Vec<String> {
    pairs.iter().flat_map(|(k, v)| [k.to_string(), v.clone()]).collect()
}

/// Runs `peers/<script>` with `python` and parses the JSON object it prints last.
pub fn run_peer(python: &Path, script: &str, args: &[String]) -> Result<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {} (set it up with ci/bench)", python.display()))?;
    if !out.status.success() {
        bail!("{} {} failed:\n{}", python.display(), path.display(), String::from_utf8_lossy(&out.stderr));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("the peer printed no JSON result:\n{stdout}"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    vision_interp::keep_freed_memory();
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    // Candle's CPU kernels and ours use rayon's global pool; pin it to the peer's thread count.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let device = select_device(args.device)?;
    println!("device: {}, {threads} threads", describe(&device));
    let mut r = Report::new(threads, &repeat_args());
    let python = args.python.as_deref();
    let name = match &args.what {
        What::Training(a) => training::run(a, &device, python, threads, &mut r).map(|_| "training"),
        What::Models(a) => models::run(a, &device, python, threads, &mut r).map(|_| "models"),
        What::Render(a) => render::run(a, &device, python, threads, &mut r).map(|_| "render"),
        What::Scan(a) => scan::run(a, &device, python, threads, &mut r).map(|_| "scan"),
        What::Accent(a) => accent::run(a, &device, python, threads, &mut r).map(|_| "accent"),
        What::Style(a) => style::run(a, &device, python, threads, &mut r).map(|_| "style"),
        What::Nmf(a) => nmf::run(a, &device, python, threads, &mut r).map(|_| "nmf"),
        What::Gan(a) => gan::run(a, &device, python, threads, &mut r).map(|_| "gan"),
        What::Devices(a) => return devices::run(a, &device),
    }?;
    let Some(python) = python.filter(|_| !args.no_report) else {
        println!("\n(no report written: book/bench/ keeps runs beside the peer, --python)");
        return Ok(());
    };
    r.peer.insert("python".into(), python_version(python));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../book/bench");
    let path = r.write(&dir, name)?;
    println!("\nwrote {}", path.canonicalize().unwrap_or(path).display());
    Ok(())
}

/// This run's arguments but the interpreter's path (`--python PATH`), which is this machine's:
/// what repeats the run as `ci/bench ARGS`.
fn repeat_args() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--python" {
            args.next();
        } else if !a.starts_with("--python=") {
            out.push(a);
        }
    }
    out
}

/// The peer interpreter's version, `3.11.7`.
fn python_version(python: &Path) -> String {
    Command::new(python)
        .args(["-c", "import platform; print(platform.python_version())"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// Prints one row per implementation: time per operation, throughput, and the ratio of its
/// time to the Python peer's (the second row, when there is one); records the rows in the
/// report under `key` (see [`report`]).
pub fn table(r: &mut Report, key: &str, title: &str, unit_per_s: &str, per_op: f64, rows: &[Timing]) {
    r.table(key, unit_per_s, per_op, rows);
    println!("\n{title}");
    println!("{:<40} {:>10} {:>12} {:>10}", "", "ms per op", unit_per_s, "vs peer");
    let reference = rows.get(1).map(|r| r.seconds);
    for r in rows {
        let ratio = reference.map_or("-".to_string(), |p| format!("{:.2}", r.seconds / p));
        println!("{:<40} {:>10.2} {:>12.1} {:>10}", r.name, 1e3 * r.seconds, per_op / r.seconds, ratio);
    }
}
