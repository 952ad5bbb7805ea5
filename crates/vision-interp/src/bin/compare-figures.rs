//! Compares regenerated figures with the committed ones.
//!
//! Every figure (PNG or JPEG) in `--actual` must have a committed one of the same name, in
//! `--expected` or else in `--fallback` (a quick run's figure that equals the full run's is
//! committed once, in the book's folder), and every figure in `--expected` must have been made
//! again; each pair must have the same size, a mean absolute difference of at most
//! `--max-mean` (in 0–255 units) and at most `--max-frac` of the pixels differing by more than
//! 8 in some channel. On failure a diff image (differences amplified 8×) is written to `--diff`.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use image::{Rgb, RgbImage};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Compare regenerated figures with the committed ones")]
struct Args {
    /// Folder of committed figures
    #[arg(long)]
    expected: PathBuf,
    /// Folder of committed figures used where `--expected` has none
    #[arg(long)]
    fallback: Option<PathBuf>,
    /// Folder of regenerated figures
    #[arg(long)]
    actual: PathBuf,
    /// Folder for diff images of figures that differ
    #[arg(long)]
    diff: PathBuf,
    /// Largest mean absolute difference, in 0-255 units
    #[arg(long, default_value_t = 2.0)]
    max_mean: f64,
    /// Largest fraction of pixels differing by more than 8 in some channel
    #[arg(long, default_value_t = 0.01)]
    max_frac: f64,
}

fn figures(dir: &Path) -> Result<Vec<String>> {
    if !dir.exists() {
        return Ok(Vec::new()); // git keeps no empty folder
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg"))
        .collect();
    names.sort();
    Ok(names)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (quick, actual) = (figures(&args.expected)?, figures(&args.actual)?);
    let full = match &args.fallback {
        Some(dir) => figures(dir)?,
        None => Vec::new(),
    };
    let committed = |name: &String| {
        if quick.contains(name) {
            Some(args.expected.join(name))
        } else {
            args.fallback.as_ref().filter(|_| full.contains(name)).map(|d| d.join(name))
        }
    };
    let mut failures = 0;
    for name in quick.iter().filter(|n| !actual.contains(n)) {
        println!("MISSING  {name}: committed but no longer made");
        failures += 1;
    }
    let mut passed = 0;
    for name in &actual {
        let Some(reference) = committed(name) else {
            println!("NEW      {name}: made by the chapter but not committed");
            failures += 1;
            continue;
        };
        let a = vision_interp::imageio::read_rgb(&reference)?;
        let b = vision_interp::imageio::read_rgb(&args.actual.join(name))?;
        if a.dimensions() != b.dimensions() {
            println!("SIZE     {name}: {:?} committed, {:?} now", a.dimensions(), b.dimensions());
            failures += 1;
            continue;
        }
        let (mut sum, mut big) = (0u64, 0usize);
        let diff = RgbImage::from_fn(a.width(), a.height(), |x, y| {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            let d: [u8; 3] = std::array::from_fn(|c| p[c].abs_diff(q[c]));
            sum += d.iter().map(|&v| v as u64).sum::<u64>();
            if d.iter().any(|&v| v > 8) {
                big += 1;
            }
            Rgb(d.map(|v| v.saturating_mul(8)))
        });
        let n = (a.width() * a.height()) as f64;
        let mean = sum as f64 / (3.0 * n);
        let frac = big as f64 / n;
        let ok = mean <= args.max_mean && frac <= args.max_frac;
        println!(
            "{}  {name}: mean |Δ| {mean:.3}, pixels with |Δ| > 8: {:.3} %",
            if ok { "ok     " } else { "DIFFERS" },
            100.0 * frac
        );
        if ok {
            passed += 1;
        } else {
            failures += 1;
            let path = args.diff.join(name).with_extension("png");
            vision_interp::imageio::save_png(&diff, &path)?;
            println!("         diff image: {}", path.display());
        }
    }
    println!("figures: {passed} passed, {failures} failed");
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
