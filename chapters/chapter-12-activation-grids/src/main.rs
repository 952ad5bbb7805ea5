//! Chapter 12: activation grids (Lucid's "Building Blocks of Interpretability"). What a layer
//! sees at every position of a photo, drawn as one feature visualisation per position; the few
//! groups (non-negative factors) those positions are made of, shared by the cells that hold
//! them and drawn as a map over the photo; and how the groups of an earlier layer feed them.
use anyhow::{Context, Result};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{in_rows, Colormap, GridSpec, Panel};
use vision_interp::imageio::{load_photo, read_rgb, to_tensor};
use vision_interp::models::Model;
use vision_interp::nmf::Nmf;
use vision_interp::optvis::grid::{self, GridConfig, PositionVectors};
use vision_interp::optvis::Transform;
use vision_interp::{image, Device, Tensor};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(
    about = "Activation grids: a feature visualisation for every position of a photo, and its NMF groups"
)]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The photo [default: a dog above a cat, made from assets/photos/collection/farm/]
    #[arg(long)]
    image: Option<std::path::PathBuf>,
    /// The grid's layer [default: the model's, stage4 on Lite0, mixed4d on InceptionV1]
    #[arg(long)]
    layer: Option<String>,
    /// The earlier layer whose groups feed the grid's [default: the model's, stage3 on Lite0]
    #[arg(long)]
    below: Option<String>,
    /// NMF groups [default: 6; 4 with --quick]
    #[arg(long)]
    groups: Option<usize>,
    /// Optimisation steps of each grid [default: 256; 16 with --quick; the notebook: 1024]
    #[arg(long)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = m.card().roles.activation_grid;
    let pick = |flag: &Option<String>, role: Option<&str>, what: &str| -> Result<String> {
        let name = flag.as_deref().or(role).with_context(|| {
            format!("{} names no {what} for activation grids: pass --layer and --below", m.name())
        })?;
        Ok(m.layer(name)?.name.clone())
    };
    let layer = pick(&args.layer, roles.map(|r| r.0), "grid layer")?;
    let below = pick(&args.below, roles.map(|r| r.1), "earlier layer")?;
    let k = args.groups.unwrap_or(if s.quick { 4 } else { 6 });
    let size = if s.quick { 112 } else { m.input_size() };
    let photo = match &args.image {
        Some(p) => load_photo(p, size as u32, &s.device)?,
        None => dog_above_cat(size, &s.device)?,
    };
    let cfg = GridConfig {
        cell: if s.quick { 32 } else { 48 },
        steps: args.steps.unwrap_or(if s.quick { 16 } else { 256 }),
        lr: 0.05,
        transforms: vec![Transform::Pad { width: 2, value: 0.5 }, Transform::Jitter(2)],
        batch: 64,
        progress: true,
    };

    // ANCHOR: idea
    // The layer's channel vector at every position, and the few groups they are made of.
    let p = grid::position_vectors(m, &photo, &layer)?;
    let groups = grid::groups(&p.vectors, k, 500, &mut s.rng)?;
    // One image per position pulled towards its vector, all in one batch; then the grid again
    // with each cell drawn from its own image plus its groups' shared images.
    let naive = grid::render_cells(m, &layer, &p.vectors, &cfg, &mut s.rng, &s.device)?;
    let weights = grid::group_weights(&groups)?;
    let grouped = grid::render_grouped(m, &layer, &p.vectors, &weights, &cfg, &mut s.rng, &s.device)?;
    // ANCHOR_END: idea
    let (rows, cols, ch) = (p.rows, p.cols, p.vectors.dim(1)?);
    println!(
        "{layer}: {rows} × {cols} positions × {ch} channels on a {size}-px photo; cells {} px, {} steps",
        cfg.cell, cfg.steps
    );
    println!("  naive grid:   {} cells, {}", rows * cols, naive.summary());
    println!("  NMF into {k} groups: relative error {:.3} after 500 updates", groups.errors[499]);
    let (first, last) = (grouped.losses[0], grouped.losses[grouped.losses.len() - 1]);
    let rate = cfg.steps as f64 / grouped.elapsed.as_secs_f64();
    println!("  grouped grid: mini-batches of {}, loss {first:.1} → {last:.1}  {rate:.1} steps/s", cfg.batch);

    let title = |what: &str| {
        format!("{} {layer}, {rows}×{cols} cells of {} px, {} steps{what}", m.name(), cfg.cell, cfg.steps)
    };
    let naive_grid = grid::tile(naive.last(), rows, cols, 2)?;
    let grouped_grid = grid::tile(&grouped.cells, rows, cols, 2)?;
    let panels = vec![
        Panel::image(&photo, "photo")?,
        Panel::image(&naive_grid, "one image per position")?,
        Panel::image(&grouped_grid, format!("sharing {k} NMF groups"))?,
    ];
    s.save_grid(&[panels], &GridSpec::new(300).title(&title("")).photo(), (m.name(), "grid", "cells"))?;

    let spec = GridConfig { cell: 64, ..cfg.clone() };
    dictionary(&mut s, m, &photo, (&layer, &p, &groups), &spec, &title(", the groups"))?;
    attribution(&mut s, m, &photo, (&below, &layer), &groups, &spec)?;
    s.finish()
}

/// The chapter's default photo, made here from two of the book's photos (both public domain,
/// `assets/CREDITS.md`): each resized to the width `size`, a strip of half the height kept from
/// each (the dog's head and back; the kitten and its yarn), the dog's strip above the cat's.
fn dog_above_cat(size: usize, device: &Device) -> Result<Tensor> {
    let strip = |name: &str, top: f32| -> Result<Tensor> {
        let img = read_rgb(&vision_interp::asset(&format!("photos/collection/farm/{name}")))?;
        let h = (img.height() as f32 * size as f32 / img.width() as f32).round() as u32;
        let img = image::imageops::resize(&img, size as u32, h, image::imageops::FilterType::CatmullRom);
        let t = to_tensor(&img, device)?;
        let start = ((h as f32 - size as f32 / 2.0) * top).round() as usize;
        Ok(t.narrow(1, start, size / 2)?)
    };
    let photo = Tensor::cat(&[strip("dog.jpg", 0.0)?, strip("cat.jpg", 0.35)?], 1)?;
    println!("photo: farm/dog.jpg above farm/cat.jpg, each {size} px wide, {} px of each kept", size / 2);
    Ok(photo)
}

/// The semantic dictionary: where each group sits on the photo (its column of `W`), how much
/// of the layer's activation it carries, and a feature visualisation of its direction.
fn dictionary(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    (layer, p, groups): (&str, &PositionVectors, &Nmf),
    cfg: &GridConfig,
    title: &str,
) -> Result<()> {
    let images = grid::render_cells(m, layer, &groups.h, cfg, &mut s.rng, &s.device)?;
    // A group's share: Σ_p W[p, g] ‖H_g‖ over the same sum for every group.
    let norms = groups.h.sqr()?.sum_keepdim(1)?.sqrt()?.t()?; // (1, G)
    let mass = groups.w.broadcast_mul(&norms)?.sum(0)?;
    let share = (&mass / mass.sum_all()?.to_scalar::<f32>()? as f64)?.to_vec1::<f32>()?;
    let (mut maps, mut looks) = (Vec::new(), Vec::new());
    for (g, share) in share.iter().enumerate() {
        let map = groups.w.narrow(1, g, 1)?.reshape((p.rows, p.cols))?;
        maps.push(Panel::overlay(photo, &map, format!("group {}: {:.0} %", g + 1, share * 100.0))?);
        looks.push(Panel::image(&images.last().get(g)?, format!("group {}", g + 1))?);
        println!("  group {}: {:4.1} % of the activation", g + 1, share * 100.0);
    }
    let columns = maps.len().min(6);
    let mut rows = in_rows(maps, columns);
    rows.extend(in_rows(looks, columns));
    s.save_grid(&rows, &GridSpec::new(150).title(title).photo(), (m.name(), "grid", "groups"))
}

/// How the groups of the earlier layer `below` feed the grid layer's groups on the photo
/// (gradient × activation split by group), as a table of coloured cells between the two
/// layers' group images.
fn attribution(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    (below, layer): (&str, &str),
    groups: &Nmf,
    cfg: &GridConfig,
) -> Result<()> {
    let k = groups.h.dim(0)?;
    let low = grid::groups(&grid::position_vectors(m, photo, below)?.vectors, k, 500, &mut s.rng)?;
    let att = grid::group_attribution(m, photo, (below, &low), (layer, groups))?; // (G_below, G)
    let low_images = grid::render_cells(m, below, &low.h, cfg, &mut s.rng, &s.device)?;
    let high_images = grid::render_cells(m, layer, &groups.h, cfg, &mut s.rng, &s.device)?;
    // Each column as percentages of its absolute sum: how group j's input divides among groups.
    let totals = att.abs()?.sum_keepdim(0)?.clamp(f32::MIN_POSITIVE, f32::MAX)?;
    let values = (att.broadcast_div(&totals)? * 100.0)?.to_vec2::<f32>()?;
    println!("\n  {layer}'s groups (columns) fed by {below}'s (rows), % of gradient × activation:");
    let blank = image::RgbImage::from_pixel(64, 64, image::Rgb([255, 255, 255]));
    let mut header = vec![Panel::new(blank, "")];
    for j in 0..k {
        header.push(Panel::image(&high_images.last().get(j)?, format!("{layer} {}", j + 1))?);
    }
    let mut rows = vec![header];
    for (i, row) in values.iter().enumerate() {
        println!("  {below} {}: {}", i + 1, row.iter().map(|v| format!("{v:>7.1}")).collect::<String>());
        let mut panels = vec![Panel::image(&low_images.last().get(i)?, format!("{below} {}", i + 1))?];
        for v in row {
            let colour = Colormap::BlueWhiteRed.rgb(0.5 + v / 100.0); // ±50 % and beyond at full colour
            panels.push(Panel::new(
                image::RgbImage::from_pixel(64, 64, image::Rgb(colour)),
                format!("{v:+.1}"),
            ));
        }
        rows.push(panels);
    }
    let title = format!(
        "{}: what feeds each group of {layer} (columns): {below}'s groups, % of gradient × activation",
        m.name()
    );
    s.save_grid(&rows, &GridSpec::new(96).title(&title).photo(), (m.name(), "grid", "attribution"))
}
