//! Builds the offline photo collection from GCompris's resource bundles (Debian's
//! `gcompris-qt-data`), photo by photo with its credit. `ci/photos` runs it:
//!
//! ```sh
//! photo-collection --rcc DIR --out assets/photos/collection              # public domain and CC0, 256 px
//! photo-collection --rcc DIR --out DIR2 --every-licence --short-side 480  # the larger set
//! photo-collection --rcc DIR --out assets/photos/paintings --paintings    # chapter 11's styles
//! ```
//!
//! Writes `OUT/<activity>/<name>.jpg` and `OUT/MANIFEST.tsv` (file, SHA-256, size, licence,
//! author, source), and prints the credits as a Markdown table. With `--paintings`, writes the
//! public-domain paintings of [`PAINTINGS`] instead, at the size GCompris ships them.
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Parser;
use sha2::{Digest, Sha256};
use tools::collection::{read_credits, read_rcc};
use vision_interp::image::{self, imageops::FilterType, RgbImage};

/// The bundles with photographs, and the short name each gets in the collection.
const BUNDLES: &[(&str, &str)] = &[
    ("categorization", "objects"),
    ("erase", "animals"),
    ("explore_farm_animals", "farm"),
    ("explore_monuments", "monuments"),
    ("explore_world_animals", "wildlife"),
];
/// Van Gogh paintings of the `details` bundle, for style transfer: `(file in the bundle, name in
/// the book, title)`. The bundle's `README` marks each public domain.
const PAINTINGS: &[(&str, &str, &str)] = &[
    ("Eglise_dAuvers-sur-Oise_background.webp", "church-at-auvers", "The Church at Auvers, 1890"),
    ("Gogh4_background.webp", "cafe-terrace-at-night", "Café Terrace at Night, 1888"),
];
const PAINTINGS_DIR: &str = "gcompris/src/activities/details/resource/image/";

/// Folders of the categorization bundle that hold drawings or letters, not photographs.
const NOT_PHOTOS: &[&str] = &["alphabets", "numbers"];

#[derive(Parser)]
#[command(about = "Builds the offline photo collection from GCompris's resource bundles")]
struct Args {
    /// Folder with GCompris's `.rcc` bundles (`usr/share/gcompris-qt/rcc` of the package)
    #[arg(long)]
    rcc: PathBuf,
    /// Output folder
    #[arg(long)]
    out: PathBuf,
    /// Also take photos under attribution and share-alike licences (CC-BY, CC-BY-SA)
    #[arg(long)]
    every_licence: bool,
    /// Shrink photos so that the shorter side is at most this many pixels
    #[arg(long, default_value_t = 256)]
    short_side: u32,
    /// Write the public-domain Van Gogh paintings (chapter 11's styles) instead of the photos
    #[arg(long, conflicts_with_all = ["every_licence", "short_side"])]
    paintings: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.paintings {
        return paintings(&args);
    }
    let (mut manifest, mut credits) = (String::new(), String::new());
    manifest.push_str("file\tsha256\twidth\theight\tlicense\tcopyright\tsource\tbundle path\n");
    credits.push_str("| file | author | licence | source |\n|---|---|---|---|\n");
    let mut count = 0;
    for (bundle, short) in BUNDLES {
        let path = args.rcc.join(format!("{bundle}.rcc"));
        let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let files = read_rcc(&bytes).with_context(|| format!("in {}", path.display()))?;
        for (readme_path, readme) in files.iter().filter(|(p, _)| p.ends_with("/README")) {
            let dir = readme_path.trim_end_matches("README");
            let sub = dir.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
            if NOT_PHOTOS.contains(&sub) {
                continue;
            }
            for (file, credit) in read_credits(&String::from_utf8_lossy(readme)) {
                let Some(data) = files.get(&format!("{dir}{file}")) else { continue };
                let photo =
                    [".webp", ".jpg", ".jpeg", ".png"].iter().any(|e| file.to_lowercase().ends_with(e));
                if !photo || !(args.every_licence || credit.is_free()) {
                    continue;
                }
                let img = on_white(&vision_interp::imageio::decode(data, &format!("{readme_path}: {file}"))?);
                let img = shrink(&img, args.short_side);
                let stem = file.rsplit_once('.').map_or(file.as_str(), |(s, _)| s).replace('/', "-");
                let name = if ["resource", "animals", "images"].contains(&sub) || *bundle == "erase" {
                    format!("{short}/{stem}.jpg")
                } else {
                    format!("{short}/{sub}-{stem}.jpg")
                };
                let out = args.out.join(&name);
                vision_interp::imageio::save_jpeg_full_chroma(&img, &out, 88)?;
                let hash = hex(&Sha256::digest(std::fs::read(&out)?));
                let (w, h) = img.dimensions();
                let clean = |s: &str| s.replace(['\t', '|'], " ");
                let (who, lic, src) =
                    (clean(&credit.copyright), clean(&credit.license), clean(&credit.source));
                writeln!(manifest, "{name}\t{hash}\t{w}\t{h}\t{lic}\t{who}\t{src}\t{bundle}:{dir}{file}")?;
                let link = if src.is_empty() { "GCompris".to_owned() } else { format!("<{src}>") };
                writeln!(credits, "| `{name}` | {who} | {lic} | {link} |")?;
                count += 1;
            }
        }
    }
    ensure!(count > 0, "no photos found in {}", args.rcc.display());
    vision_interp::atomic::write_with(&args.out.join("MANIFEST.tsv"), |f| {
        Ok(std::fs::write(f.path(), &manifest)?)
    })?;
    print!("{credits}");
    eprintln!("photo-collection: {count} photos written to {}", args.out.display());
    Ok(())
}

/// The paintings of [`PAINTINGS`], each with the `README` block that credits it. That `README`
/// does not always put a `Files:` line before its file names, so the block is found by the
/// name itself, and the licence checked there.
fn paintings(args: &Args) -> Result<()> {
    let path = args.rcc.join("details.rcc");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let files = read_rcc(&bytes).with_context(|| format!("in {}", path.display()))?;
    let readme = files.get(&format!("{PAINTINGS_DIR}README")).context("details.rcc has no README")?;
    let readme = String::from_utf8_lossy(readme).replace("\r\n", "\n");
    let mut manifest = String::from("file\tsha256\twidth\theight\tlicense\ttitle\tcomment\tbundle path\n");
    let mut credits = String::from("| file | painting | licence | GCompris's note |\n|---|---|---|---|\n");
    for (file, name, title) in PAINTINGS {
        let block = readme
            .split("\n\n")
            .find(|b| b.split_whitespace().any(|w| w == *file))
            .with_context(|| format!("the README of details.rcc does not mention {file}"))?;
        let field = |k: &str| {
            block.lines().find_map(|l| l.strip_prefix(k)).map(str::trim).unwrap_or_default().to_owned()
        };
        let (license, comment) = (field("License:"), field("Comment:"));
        ensure!(license == "Public domain", "{file}: the README gives the licence as `{license}`");
        let data = files.get(&format!("{PAINTINGS_DIR}{file}")).with_context(|| format!("no {file}"))?;
        let img = on_white(&vision_interp::imageio::decode(data, file)?);
        let out = args.out.join(format!("{name}.jpg"));
        vision_interp::imageio::save_jpeg_full_chroma(&img, &out, 90)?;
        let hash = hex(&Sha256::digest(std::fs::read(&out)?));
        let (w, h) = img.dimensions();
        writeln!(
            manifest,
            "{name}.jpg\t{hash}\t{w}\t{h}\t{license}\t{title}\t{comment}\tdetails:{PAINTINGS_DIR}{file}"
        )?;
        writeln!(credits, "| `{name}.jpg` | Vincent van Gogh, *{title}* | {license} | {comment} |")?;
    }
    vision_interp::atomic::write_with(&args.out.join("MANIFEST.tsv"), |f| {
        Ok(std::fs::write(f.path(), &manifest)?)
    })?;
    print!("{credits}");
    eprintln!("photo-collection: {} paintings written to {}", PAINTINGS.len(), args.out.display());
    Ok(())
}

/// The image with any transparency laid over white (GCompris's cut-outs).
fn on_white(img: &image::DynamicImage) -> RgbImage {
    let rgba = img.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let p = rgba.get_pixel(x, y).0;
        let a = p[3] as f32 / 255.0;
        image::Rgb([0, 1, 2].map(|c| (p[c] as f32 * a + 255.0 * (1.0 - a)).round() as u8))
    })
}

/// Shrinks the image so that its shorter side is at most `short` pixels (never enlarges).
fn shrink(img: &RgbImage, short: u32) -> RgbImage {
    let s = img.width().min(img.height());
    if s <= short {
        return img.clone();
    }
    let scale = short as f64 / s as f64;
    let (w, h) = ((img.width() as f64 * scale).round() as u32, (img.height() as f64 * scale).round() as u32);
    image::imageops::resize(img, w, h, FilterType::Lanczos3)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
