//! Chapter 12: activation grids (Lucid's "Building Blocks of Interpretability"). What a layer
//! sees at every position of a photo, drawn as one feature visualisation per position; the few
//! groups (non-negative factors) those positions are made of, shared by the cells that hold
//! them and drawn as a map over the photo; and how the groups of an earlier layer feed them.
use anyhow::{Context, Result};
use chapter_12_activation_grids::grid::{self, GridConfig, PositionVectors};
use chapter_12_activation_grids::nmf::Nmf;
use chapter_12_activation_grids::GRID;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{in_rows, Colormap, GridSpec, Panel};
use vision_interp::imageio::{load_photo, read_rgb, to_tensor};
use vision_interp::models::Model;
use vision_interp::optvis::tile;
use vision_interp::optvis::{Rendered, Transform};
use vision_interp::{attribution::receptive_field, image, Device, Tensor};

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
    #[arg(long, value_parser = vision_interp::flag::count)]
    groups: Option<usize>,
    /// Optimisation steps of each grid [default: 256; 16 with --quick; the notebook: 1024]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = GRID.chosen(m.name()).copied();
    let pick = |flag: &Option<String>, role: Option<&str>, what: &str| -> Result<String> {
        let name = flag.as_deref().or(role).with_context(|| {
            format!("{} names no {what} for activation grids: pass --layer and --below", m.name())
        })?;
        Ok(m.layer(name)?.name.clone())
    };
    let layer = pick(&args.layer, roles.map(|r| r.0), "grid layer")?;
    let below = pick(&args.below, roles.map(|r| r.1), "earlier layer")?;
    let k = s.budget(args.groups, 4, 6);
    let size = if s.quick { 112 } else { m.input_size() };
    let photo = match &args.image {
        Some(p) => load_photo(p, size as u32, &s.device)?,
        None => dog_above_cat(size, &s.device)?,
    };
    let cfg = GridConfig {
        cell: if s.quick { 32 } else { 48 },
        steps: s.budget(args.steps, 16, 256),
        lr: 0.05,
        transforms: vec![Transform::Pad { width: 2, value: 0.5 }, Transform::Jitter(2)],
        batch: 64,
        progress: true,
    };

    // ANCHOR: idea
    // The layer's channel vector at every position, and the few groups they are made of.
    let positions = grid::position_vectors(m, &photo, &layer)?;
    let groups = grid::groups(&positions.vectors, k, 500, &mut s.rng)?;
    // One image per position pulled towards its vector, all in one batch; then the grid again
    // with each cell drawn from its own image plus its groups' shared images.
    let naive = grid::render_cells(m, &layer, &positions.vectors, &cfg, &mut s.rng, &s.device)?;
    let weights = grid::group_weights(&groups)?;
    let grouped = grid::render_grouped(m, &layer, &positions.vectors, &weights, &cfg, &mut s.rng, &s.device)?;
    // ANCHOR_END: idea
    let (rows, cols, ch) = (positions.rows, positions.cols, positions.vectors.dim(1)?);
    println!(
        "{layer}: {rows} × {cols} positions × {ch} channels on a {size}-px photo; cells {} px, {} steps",
        cfg.cell, cfg.steps
    );
    // The receptive field of one position of the layer, measured (chapter 1), on its own draws.
    let (field, stride) = receptive_field(m, &layer, m.input_size(), &s.device, &mut s.rng.clone())?;
    println!("  one position sees {field} px of the input (stride {stride})");
    println!("  naive grid:   {} cells, {}", rows * cols, naive.summary());
    let folded = relative_error(&positions.vectors, &groups)?;
    println!(
        "  NMF into {k} groups: relative error {:.3} after 500 updates ({folded:.3} of the signed vectors)",
        groups.errors[499]
    );
    let (first, last) = (grouped.losses[0], grouped.losses[grouped.losses.len() - 1]);
    let rate = cfg.steps as f64 / grouped.elapsed.as_secs_f64();
    let per_pass = grouped.batches_per_pass;
    println!(
        "  grouped grid: {per_pass} mini-batches per pass, loss {first:.1} → {last:.1}  {rate:.1} passes/s"
    );
    s.record("field_px", field);
    s.record("nmf_error", groups.errors[499]);
    s.record("fold_error", folded);
    s.record("fold_explained", 1.0 - folded * folded);
    s.record("batches_per_pass", per_pass);
    s.record("steps", cfg.steps);

    let title = |what: &str| {
        format!("{} {layer}, {rows}×{cols} cells of {} px, {} steps{what}", m.name(), cfg.cell, cfg.steps)
    };
    let naive_grid = tile(naive.last(), rows, cols, 2)?;
    let grouped_grid = tile(&grouped.cells, rows, cols, 2)?;
    // Below the grids, a crop of n × n cells from their middle at full resolution (and the same
    // part of the photo), since the whole grids are shrunk to the column's width.
    let n = (rows.min(cols) / 2).min(5);
    let (r0, c0) = ((rows - n) / 2, (cols - n) / 2);
    let crop = |t: &Tensor, side: usize| -> Result<Tensor> {
        Ok(t.narrow(1, r0 * side, n * side)?.narrow(2, c0 * side, n * side)?)
    };
    let (h, w) = (photo.dim(1)?, photo.dim(2)?);
    let photo_crop = photo.narrow(1, r0 * h / rows, n * h / rows)?.narrow(2, c0 * w / cols, n * w / cols)?;
    let cut = cfg.cell - 4;
    let crop_label = format!("{n} × {n} cells, full resolution");
    // The crops are drawn at their own size: panels of n · (cell − 4) pixels.
    let panels = vec![
        vec![
            Panel::image(&photo, "photo")?,
            Panel::image(&naive_grid, "one image per position")?,
            Panel::image(&grouped_grid, format!("sharing {k} NMF groups"))?,
        ],
        vec![
            Panel::image(&photo_crop, "the middle of the photo")?,
            Panel::image(&crop(&naive_grid, cut)?, crop_label.clone())?,
            Panel::image(&crop(&grouped_grid, cut)?, crop_label)?,
        ],
    ];
    s.record("crop_cells", n);
    s.record("crop_px", n * cut);
    s.save_grid(
        &panels,
        &GridSpec::new((n * cut) as u32).title(&title("")).photo(),
        (m.name(), "grid", "cells"),
    )?;

    let spec = GridConfig { cell: 64, ..cfg.clone() };
    let looks = dictionary(&mut s, m, &photo, (&layer, &positions, &groups), &spec, &title(", the groups"))?;
    attribution(&mut s, m, &photo, (&below, &layer), (&groups, &looks), &spec)?;
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
/// of the layer's activation it carries, and a feature visualisation of its direction, which
/// it returns (the attribution's table reuses it).
fn dictionary(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    (layer, positions, groups): (&str, &PositionVectors, &Nmf),
    cfg: &GridConfig,
    title: &str,
) -> Result<Rendered> {
    let images = grid::render_cells(m, layer, &groups.h, cfg, &mut s.rng, &s.device)?;
    // A group's share: Σ_p W[p, g] ‖H_g‖ over the same sum for every group.
    let norms = groups.h.sqr()?.sum_keepdim(1)?.sqrt()?.t()?; // (1, G)
    let mass = groups.w.broadcast_mul(&norms)?.sum(0)?;
    let share = (&mass / mass.sum_all()?.to_scalar::<f32>()? as f64)?.to_vec1::<f32>()?;
    let (mut maps, mut looks) = (Vec::new(), Vec::new());
    for (g, share) in share.iter().enumerate() {
        let map = groups.w.narrow(1, g, 1)?.reshape((positions.rows, positions.cols))?;
        maps.push(Panel::overlay(photo, &map, format!("group {}: {:.0} %", g + 1, share * 100.0))?);
        looks.push(Panel::image(&images.last().get(g)?, format!("group {}", g + 1))?);
        println!("  group {}: {:4.1} % of the groups' weight", g + 1, share * 100.0);
        s.record(&format!("group{}_share", g + 1), *share);
    }
    let columns = maps.len().min(6);
    let mut rows = in_rows(maps, columns);
    rows.extend(in_rows(looks, columns));
    s.save_grid(&rows, &GridSpec::new(150).title(title).photo(), (m.name(), "grid", "groups"))?;
    Ok(images)
}

/// How the groups of the earlier layer `below` feed the grid layer's groups on the photo
/// (gradient × activation split by group), as a table of coloured cells between the two
/// layers' group images (the grid layer's already rendered by [`dictionary`]), and how much
/// of each group's score the split leaves out.
fn attribution(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    (below, layer): (&str, &str),
    (groups, high_images): (&Nmf, &Rendered),
    cfg: &GridConfig,
) -> Result<()> {
    let k = groups.h.dim(0)?;
    let low_vectors = grid::position_vectors(m, photo, below)?.vectors;
    let low = grid::groups(&low_vectors, k, 500, &mut s.rng)?;
    s.record("below_fold_error", relative_error(&low_vectors, &low)?);
    let att = grid::group_attribution(m, photo, (below, &low), (layer, groups))?; // (G_below, G)
    let low_images = grid::render_cells(m, below, &low.h, cfg, &mut s.rng, &s.device)?;
    account(s, &grid::attribution_account(m, photo, (below, &low), (layer, groups))?, (below, layer));
    // Each column as percentages of its absolute sum: how group j's input divides among groups.
    let totals = att.abs()?.sum_keepdim(0)?.clamp(f32::MIN_POSITIVE, f32::MAX)?;
    let values = (att.broadcast_div(&totals)? * 100.0)?.to_vec2::<f32>()?;
    record_table(s, &values);
    println!("\n  {layer}'s groups (columns) fed by {below}'s (rows), % of gradient × reconstruction:");
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
        "{}: what feeds each group of {layer} (columns): {below}'s groups, % of gradient × reconstruction",
        m.name()
    );
    s.save_grid(&rows, &GridSpec::new(96).title(&title).photo(), (m.name(), "grid", "attribution"))
}

/// How much of each group's score the split leaves out: the first-order gap (score against
/// gradient × activation) and the NMF's residual (gradient × activation against gradient × the
/// reconstruction, which is what the table splits), each as a share, smallest and largest.
fn account(s: &mut Session, a: &grid::AttributionAccount, (below, layer): (&str, &str)) {
    println!("\n  {layer}'s group scores against gradient × activation at {below}:");
    let (mut gaps, mut residuals, mut flips) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..a.score.len() {
        let gap = (a.score[j] - a.grad_act[j]) / a.score[j];
        let residual = (a.grad_act[j] - a.grad_recon[j]) / a.grad_act[j];
        println!(
            "  group {}: score {:>8.1}, gradient × activation {:>8.1} (gap {:>5.1} %), × reconstruction {:>8.1} (residual {:>5.1} %)",
            j + 1,
            a.score[j],
            a.grad_act[j],
            100.0 * gap,
            a.grad_recon[j],
            100.0 * residual
        );
        gaps.push(gap);
        residuals.push(residual);
        if a.score[j] * a.grad_act[j] < 0.0 {
            flips.push((j + 1).to_string());
        }
    }
    // Groups whose first-order account has the opposite sign to their score.
    s.record("gap_flips", flips.len());
    s.record("gap_flip_groups", flips.join(", "));
    let range = |v: &[f32]| v.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    let ((gap_min, gap_max), (res_min, res_max)) = (range(&gaps), range(&residuals));
    s.record("gap_min", gap_min);
    s.record("gap_max", gap_max);
    s.record("residual_min", res_min);
    s.record("residual_max", res_max);
}

/// The table's numbers the page reads: the row that feeds most (its smallest and largest
/// share), and the largest and the most negative share outside that row, with where they are.
fn record_table(s: &mut Session, values: &[Vec<f32>]) {
    let sum = |r: &Vec<f32>| r.iter().sum::<f32>();
    let top = (0..values.len()).max_by(|&a, &b| sum(&values[a]).total_cmp(&sum(&values[b]))).unwrap_or(0);
    let row = &values[top];
    s.record("feed_top_row", top + 1);
    s.record("feed_top_min", row.iter().cloned().fold(f32::MAX, f32::min));
    s.record("feed_top_max", row.iter().cloned().fold(f32::MIN, f32::max));
    let others = values.iter().enumerate().filter(|(i, _)| *i != top);
    let cells: Vec<(usize, usize, f32)> =
        others.flat_map(|(i, r)| r.iter().enumerate().map(move |(j, &v)| (i + 1, j + 1, v))).collect();
    for (what, pick) in [("max", 1.0f32), ("min", -1.0)] {
        if let Some(&(i, j, v)) = cells.iter().max_by(|a, b| (pick * a.2).total_cmp(&(pick * b.2))) {
            s.record(&format!("feed_{what}"), v);
            s.record(&format!("feed_{what}_row"), i);
            s.record(&format!("feed_{what}_col"), j);
        }
    }
}

/// ‖V − WH‖ / ‖V‖: how much of the signed vectors a factorisation into groups leaves out.
fn relative_error(v: &Tensor, f: &Nmf) -> Result<f32> {
    let norm = |t: &Tensor| -> Result<f32> { Ok(t.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?) };
    Ok(norm(&(v - f.w.matmul(&f.h)?)?)? / norm(v)?)
}
