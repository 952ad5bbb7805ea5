//! Compares regenerated figures with the committed ones.
//!
//! A quick run's figure that equals the full run's is committed once, in the book's folder
//! (`--fallback`); the others are not committed as images (they are never shown, and would
//! double the book's size) but as their SHA-256 in `--expected`/SHA256SUMS, since a run gives
//! the same bytes on every x86-64 machine (CONTRIBUTING.md).
//!
//! Every figure (PNG, JPEG or GIF) in `--actual` must be named in SHA256SUMS, and then have the same
//! digest, or have a committed figure of the same name in `--expected` (a quick figure kept as
//! an image) or `--fallback`; and every figure named in SHA256SUMS or kept in `--expected` must
//! have been made again. A pair of figures must have the same size, a mean
//! absolute difference of at most `--max-mean` (in 0–255 units) and at most `--max-frac` of the
//! pixels differing by more than 8 in some channel. On failure a diff image (differences
//! amplified 8×), or the new figure where only a digest was committed, goes to `--diff`.
//!
//! The numbers the run recorded for its page (`numbers.json`) are compared with the committed
//! quick run's, key by key and exactly, but those under `run.` (times and rates of this
//! machine): a number the page glues in must come out the same everywhere, like a figure.
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
        .filter(|n| n.ends_with(".png") || n.ends_with(".jpg") || n.ends_with(".gif"))
        .collect();
    names.sort();
    Ok(names)
}

/// The recorded numbers of a run, but this machine's measurements (`run.*`).
fn numbers(dir: &Path) -> Result<Option<std::collections::BTreeMap<String, serde_json::Value>>> {
    let path = dir.join("numbers.json");
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut map: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).with_context(|| format!("{} is not a JSON object", path.display()))?;
    map.retain(|k, _| !k.starts_with("run."));
    Ok(Some(map))
}

/// Compares the recorded numbers key by key; returns how many differ.
fn compare_numbers(expected: &Path, actual: &Path) -> Result<usize> {
    let (committed, now) = match (numbers(expected)?, numbers(actual)?) {
        // A run that records nothing but this machine's measurements needs no committed file.
        (None, None) => return Ok(0),
        (None, Some(n)) if n.is_empty() => return Ok(0),
        (Some(_), None) => {
            println!("MISSING  numbers.json: committed but the run recorded no numbers");
            return Ok(1);
        }
        (None, Some(_)) => {
            println!("NEW      numbers.json: recorded by the run but not committed");
            return Ok(1);
        }
        (Some(c), Some(n)) => (c, n),
    };
    let mut failures = 0;
    for (key, value) in &committed {
        match now.get(key) {
            None => {
                println!("MISSING  number {key}: committed ({value}) but no longer recorded");
                failures += 1;
            }
            Some(v) if v != value => {
                println!("DIFFERS  number {key}: {value} committed, {v} now");
                failures += 1;
            }
            Some(_) => {}
        }
    }
    for key in now.keys().filter(|k| !committed.contains_key(*k)) {
        println!("NEW      number {key}: recorded but not committed");
        failures += 1;
    }
    println!("numbers: {} compared, {failures} failed", committed.len());
    Ok(failures)
}

/// `SHA256SUMS` of a folder (`sha256sum`'s format: digest, two spaces, name), by name.
fn digests(dir: &Path) -> Result<std::collections::BTreeMap<String, String>> {
    let path = dir.join("SHA256SUMS");
    if !path.exists() {
        return Ok(Default::default());
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (digest, name) =
                l.split_once("  ").with_context(|| format!("{}: malformed line {l:?}", path.display()))?;
            Ok((name.to_string(), digest.to_string()))
        })
        .collect()
}

fn sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

fn main() -> Result<()> {
    let args = Args::parse();
    let sums = digests(&args.expected)?;
    // Quick figures committed as images (the way before digests) are compared as images.
    let images = figures(&args.expected)?;
    let quick: Vec<String> = sums.keys().chain(images.iter()).cloned().collect();
    let actual = figures(&args.actual)?;
    let full = match &args.fallback {
        Some(dir) => figures(dir)?,
        None => Vec::new(),
    };
    let committed = |name: &String| {
        if images.contains(name) {
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
        if let Some(digest) = sums.get(name) {
            let now = sha256(&args.actual.join(name))?;
            if &now == digest {
                println!("ok       {name}: same bytes (SHA-256)");
                passed += 1;
            } else {
                let kept = args.diff.join(name);
                std::fs::create_dir_all(&args.diff)?;
                std::fs::copy(args.actual.join(name), &kept)?;
                println!("DIFFERS  {name}: SHA-256 {now}, committed {digest}");
                println!("         the new figure: {}", kept.display());
                failures += 1;
            }
            continue;
        }
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
    failures += compare_numbers(&args.expected, &args.actual)?;
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}
