//! Chapter 8: Lucent's diversity notebook, rebuilt and taken further. A batch of images of one
//! unit, pulled apart by a penalty on how alike their Gram matrices are: the notebook's recipes,
//! the weight swept from 0 to 1000 with the batch's similarity measured, diverse renders beside
//! the unit's top dataset examples (chapter 4's scan), and diversity on pooled activations
//! instead of Gram matrices.
use anyhow::{ensure, Context, Result};
use chapter_04_dataset_examples::DatasetScan;
use chapter_04_dataset_examples::SPECTRUM;
use chapter_08_diversity::{DiversityRecipe, DIVERSITY};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{hstack, line_chart_with, ChartSpec, GridSpec, Panel, Series};
use vision_interp::models::{parse_unit, Model, Taps, Unit};
use vision_interp::optvis::objective::{self, similarity, Features};
use vision_interp::optvis::{render_new, score, ImageSpec, RenderConfig};
use vision_interp::scan::top_crops;
use vision_interp::Tensor;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's diversity: a batch of different images of one unit")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Unit of the weight sweep, `layer:unit` [default: the model's first recipe]
    #[arg(long)]
    unit: Option<String>,
    /// Diversity weights of the sweep
    #[arg(long, value_parser = vision_interp::flag::non_negative, value_delimiter = ',', default_value = "0,1,3,10,30,100,1000")]
    sweep: Vec<f64>,
    /// Images per batch (Lucent's notebook: 4)
    #[arg(long, value_parser = vision_interp::flag::batch, default_value_t = 4)]
    batch: usize,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

/// The recipe of a model without its own: the showcase unit at weight 10.
const FALLBACK: DiversityRecipe =
    DiversityRecipe { unit: "", weight: 10.0, decorrelate: true, caption: "the showcase unit" };

/// What one diverse batch reached: its images, the mean value of the unit over them, and the
/// similarity of their Gram matrices and of their pooled activations at the unit's layer.
struct Batch {
    images: Tensor,
    value: f32,
    gram: f32,
    pooled: f32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(
        args.batch >= 2,
        "--batch: diversity compares images, so a batch needs at least two, not {}",
        args.batch
    );
    if let Some(w) = args.sweep.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        anyhow::bail!(
            "--sweep: diversity weights must be zero or positive, not {w} (a negative weight pulls the images together)"
        );
    }
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let (size, cfg) = RenderConfig::book(s.quick, args.steps);
    let steps = cfg.steps;
    let chosen = DIVERSITY.get(m.name()).copied().unwrap_or_default();
    let recipes: Vec<(Unit, &DiversityRecipe)> = if chosen.is_empty() {
        vec![(parse_unit(m, m.card().roles.showcase_unit)?, &FALLBACK)]
    } else {
        chosen.iter().map(|r| Ok((parse_unit(m, r.unit)?, r))).collect::<Result<_>>()?
    };
    let sweep_unit = match &args.unit {
        Some(u) => parse_unit(m, u)?,
        None => recipes[0].0.clone(),
    };
    let spec = ImageSpec { batch: args.batch, ..ImageSpec::square(size) };
    let title = |what: &str| format!("{what}, {}, batch {}, {steps} steps", m.name(), args.batch);

    // The notebook's recipes, one batch each.
    let mut rows = Vec::new();
    let mut names = Vec::new();
    let mut reached = Vec::new();
    for (unit, r) in &recipes {
        println!("{unit} − {}·diversity: {}", r.weight, r.caption);
        let spec = ImageSpec { decorrelate: r.decorrelate, ..spec };
        let b = diverse(&mut s, m, unit, r.weight, Features::Gram, spec, &cfg)?;
        record(&mut s, &format!("recipe_{}", key(unit)), &b);
        reached.push((b.value, b.gram));
        rows.push(panels(&b, unit)?);
        let colours = if r.decorrelate { "" } else { ", plain RGB" };
        names.push(format!("{unit}, w {}{colours}, sim {:.2}", r.weight, b.gram));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let grid = GridSpec::new(130).title(&title("Diverse batches")).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), "diversity", "recipes"))?;
    let extremes = |f: fn(&(f32, f32)) -> f32| {
        reached.iter().map(f).fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let ((value_lo, value_hi), (gram_lo, gram_hi)) = (extremes(|r| r.0), extremes(|r| r.1));
    s.record("recipe_value_min", value_lo);
    s.record("recipe_value_max", value_hi);
    s.record("recipe_gram_min", gram_lo);
    s.record("recipe_gram_max", gram_hi);

    let at_zero = sweep(&mut s, m, &sweep_unit, &args.sweep, spec, &cfg)?;
    with_examples(&mut s, m, &args, spec, &cfg)?;
    features(&mut s, m, &sweep_unit, recipes[0].1.weight, spec, &cfg)?;
    starts(&mut s, m, &sweep_unit, at_zero, spec, &cfg)?;
    s.finish()
}

/// Renders one batch of `unit` with diversity of weight `weight` on `features` of its layer,
/// and measures what it reached on the images without transformations.
fn diverse(
    s: &mut Session,
    m: &dyn Model,
    unit: &Unit,
    weight: f64,
    features: Features,
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<Batch> {
    // ANCHOR: recipe
    // A loss to minimise: minus the channel, plus `weight` times how alike the images are.
    let channel = objective::channel(&unit.layer, unit.unit, None);
    let obj = channel - weight * objective::diversity_of(&unit.layer, features);
    // ANCHOR_END: recipe
    let out = render_new(m, &obj, &spec, cfg, &mut s.rng, &s.device)?;
    let b = measure(m, unit, out.last().clone(), cfg)?;
    println!(
        "  {unit:<10} {:<6} w {weight:<6} value {:>7.2}  similarity: Gram {:.3}, pooled {:.3}  {}",
        if features == Features::Gram { "Gram" } else { "pooled" },
        b.value,
        b.gram,
        b.pooled,
        out.summary()
    );
    Ok(b)
}

/// What a batch of `images` of `unit` reached, measured without transformations: the unit's
/// mean value and the similarities of the images' Gram matrices and pooled activations.
fn measure(m: &dyn Model, unit: &Unit, images: Tensor, cfg: &RenderConfig) -> Result<Batch> {
    let clean = RenderConfig { transforms: vec![], ..cfg.clone() };
    let value = score(m, &objective::channel(&unit.layer, unit.unit, None), &images, &clean)?;
    // ANCHOR: measure
    let x = clean.model_input(&m.preprocess(&images)?)?;
    let acts = m.forward_taps(&x, &Taps::layers(&[unit.layer.as_str()]))?;
    let a = acts.get(&unit.layer)?;
    let (gram, pooled) = (similarity(a, Features::Gram)?, similarity(a, Features::Pooled)?);
    // ANCHOR_END: measure
    Ok(Batch { images, value, gram, pooled })
}

/// A unit as part of a key of `numbers.json`: `stage5:12` → `stage5_12`.
fn key(unit: &Unit) -> String {
    unit.slug().replace('-', "_")
}

/// Records what batch `b` reached under `prefix`: `_value`, `_gram` and `_pooled`.
fn record(s: &mut Session, prefix: &str, b: &Batch) {
    s.record(&format!("{prefix}_value"), b.value);
    s.record(&format!("{prefix}_gram"), b.gram);
    s.record(&format!("{prefix}_pooled"), b.pooled);
}

/// A batch's images, the first labelled with the unit's mean value over the batch.
fn panels(b: &Batch, unit: &Unit) -> Result<Vec<Panel>> {
    (0..b.images.dim(0)?)
        .map(|i| {
            let label = if i == 0 { format!("{unit}: {:.1}", b.value) } else { String::new() };
            Panel::image(&b.images.get(i)?, label)
        })
        .collect()
}

/// The weight swept from 0 up, every batch from the same starting images: the renders, and the
/// unit's value and the batch's similarities against the weight. Returns the batch of weight 0,
/// if the sweep has one.
fn sweep(
    s: &mut Session,
    m: &dyn Model,
    unit: &Unit,
    weights: &[f64],
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<Option<Batch>> {
    println!("\nthe weight of diversity on {unit}:");
    let start = s.rng.clone();
    let mut batches = Vec::new();
    for &w in weights {
        s.rng = start.clone();
        let b = diverse(s, m, unit, w, Features::Gram, spec, cfg)?;
        record(s, &format!("sweep_w{}", format!("{w}").replace('.', "_")), &b);
        batches.push((w, b));
    }
    let rows = batches.iter().map(|(_, b)| panels(b, unit)).collect::<Result<Vec<_>>>()?;
    let names: Vec<String> = batches.iter().map(|(w, b)| format!("w {w}, sim {:.2}", b.gram)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let title = format!("{unit} − w·diversity, {}, {} steps", m.name(), cfg.steps);
    let grid = GridSpec::new(110).title(&title).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), &unit.slug(), "sweep"))?;

    // Against log10 of the weight; weight 0 (no log) is drawn as a level line.
    let logged: Vec<&(f64, Batch)> = batches.iter().filter(|(w, _)| *w > 0.0).collect();
    if logged.len() < 2 {
        println!("fewer than two positive weights: no chart");
        return Ok(batches.into_iter().find(|(w, _)| *w == 0.0).map(|(_, b)| b));
    }
    let (lo, hi) = (logged[0].0.log10() as f32, logged[logged.len() - 1].0.log10() as f32);
    let line = |label: &str, f: &dyn Fn(&Batch) -> f32| Series {
        label: label.into(),
        points: logged.iter().map(|(w, b)| (w.log10() as f32, f(b))).collect(),
    };
    let level = |label: &str, f: &dyn Fn(&Batch) -> f32| {
        batches
            .iter()
            .find(|(w, _)| *w == 0.0)
            .map(|(_, b)| Series { label: label.into(), points: vec![(lo, f(b)), (hi, f(b))] })
    };
    let mut value = vec![line("mean value", &|b| b.value)];
    value.extend(level("at weight 0", &|b| b.value));
    let mut sim = vec![line("Gram matrices", &|b| b.gram), line("pooled activations", &|b| b.pooled)];
    sim.extend(level("Gram, weight 0", &|b| b.gram));
    sim.extend(level("pooled, weight 0", &|b| b.pooled));
    let chart = |series: &[Series], y: &str| {
        let spec = ChartSpec::new(
            &format!("{unit} on {}", m.name()),
            "log10 of the diversity weight",
            y,
            (440, 340),
        );
        line_chart_with(series, &spec.legend_below())
    };
    let charts =
        hstack(&chart(&value, "unit's mean value")?, &chart(&sim, "mean pairwise cosine similarity")?, 8);
    s.save(&charts, &s.figure(m.name(), &unit.slug(), "sweep-curves"))?;
    Ok(batches.into_iter().find(|(w, _)| *w == 0.0).map(|(_, b)| b))
}

/// Starts that really differ, without diversity: a batch whose random start has 50 times the
/// usual standard deviation (the book's 0.01 gives four nearly grey, nearly equal images), and
/// four renders of one image each, each with its own start and its own random
/// transformations (a batch draws one transformation for all its images). Beside them, the
/// sweep's batch at weight 0.
fn starts(
    s: &mut Session,
    m: &dyn Model,
    unit: &Unit,
    at_zero: Option<Batch>,
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    println!("\nfour images of {unit} without diversity, from different starts:");
    let sd = 50.0 * spec.sd;
    let wide = diverse(s, m, unit, 0.0, Features::Gram, ImageSpec { sd, ..spec }, cfg)?;
    let channel = objective::channel(&unit.layer, unit.unit, None);
    let mut images = Vec::new();
    for _ in 0..spec.batch {
        images.push(render_new(m, &channel, &ImageSpec { batch: 1, ..spec }, cfg, &mut s.rng, &s.device)?);
    }
    let alone = measure(m, unit, Tensor::cat(&images.iter().map(|r| r.last()).collect::<Vec<_>>(), 0)?, cfg)?;
    println!(
        "  {unit:<10} {} renders of one image: value {:>7.2}  similarity: Gram {:.3}, pooled {:.3}",
        spec.batch, alone.value, alone.gram, alone.pooled
    );
    s.record("starts_sd", sd);
    record(s, "starts_wide", &wide);
    record(s, "starts_alone", &alone);
    let mut rows = Vec::new();
    let mut names = Vec::new();
    let mut add = |what: String, b: &Batch| -> Result<()> {
        rows.push(panels(b, unit)?);
        names.push(format!("{what}, sim {:.2}", b.gram));
        Ok(())
    };
    if let Some(b) = &at_zero {
        add(format!("batch, sd {}", spec.sd), b)?;
    }
    add(format!("batch, sd {sd}"), &wide)?;
    add(format!("{} runs of 1", spec.batch), &alone)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let title = format!("{unit}, weight 0, {}, {} steps", m.name(), cfg.steps);
    let grid = GridSpec::new(110).title(&title).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), &unit.slug(), "starts"))
}

/// Diverse renders of a few units of chapter 4's layer beside their top dataset examples: a
/// unit whose renders fall into different kinds of thing often has photos that do too.
fn with_examples(
    s: &mut Session,
    m: &dyn Model,
    args: &Args,
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    // Chapter 4's units of the model, whose scan this section reuses.
    let spectrum = SPECTRUM.get(m.name()).context("the model has no row in chapter 4's table")?;
    let mut units: Vec<Unit> = Vec::new();
    for u in spectrum.polysemantic.iter().chain(spectrum.units) {
        let u = parse_unit(m, u)?;
        if !units.contains(&u) && units.len() < 3 {
            units.push(u);
        }
    }
    let layer = units[0].layer.clone();
    let scan_layer = m.pre_activation(&layer).unwrap_or(&layer).to_owned();
    let run = DatasetScan { quick: s.quick, seed: args.run.seed };
    let (ex, src) = run.examples(m, args.model.weights.as_deref(), &scan_layer, &s.device)?;
    let weight = DIVERSITY.get(m.name()).and_then(|d| d.first()).unwrap_or(&FALLBACK).weight;
    println!("\ndiverse renders beside the top photos of {scan_layer} ({} views):", ex.views);
    s.record("scan_views", ex.views);
    s.record("scan_photos", ex.views / ex.views_per_image.max(1) as u64);
    let mut rows = Vec::new();
    for unit in &units {
        let b = diverse(s, m, unit, weight, Features::Gram, spec, cfg)?;
        record(s, &format!("examples_{}", key(unit)), &b);
        let mut row = panels(&b, unit)?;
        for (img, value) in top_crops(&ex, &src, unit.unit, spec.batch, spec.width as u32)? {
            row.push(Panel::new(img, format!("{value:.1}")));
        }
        rows.push(row);
    }
    let mut columns = vec!["renders"];
    columns.resize(spec.batch, "");
    columns.push("top photos");
    columns.resize(2 * spec.batch, "");
    let title = format!(
        "{} {layer}: diverse renders (w {weight}, {} steps) and top photos ({} views)",
        m.name(),
        cfg.steps,
        ex.views
    );
    let grid = GridSpec::new(100).title(&title).columns(&columns).photo();
    s.save_grid(&rows, &grid, (m.name(), &layer, "diverse-examples"))
}

/// The same unit and weight with diversity on Gram matrices and on pooled activations, from the
/// same starting images, each batch measured both ways.
fn features(
    s: &mut Session,
    m: &dyn Model,
    unit: &Unit,
    weight: f64,
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    println!("\ndiversity of {unit} on two kinds of features, weight {weight}:");
    let start = s.rng.clone();
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for (what, f) in [("Gram", Features::Gram), ("pooled", Features::Pooled)] {
        s.rng = start.clone();
        let b = diverse(s, m, unit, weight, f, spec, cfg)?;
        record(s, &format!("features_{}", what.to_lowercase()), &b);
        rows.push(panels(&b, unit)?);
        names.push(format!("{what}: Gram {:.2}, pooled {:.2}", b.gram, b.pooled));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let title = format!("{unit} − {weight}·diversity on two features, {}, {} steps", m.name(), cfg.steps);
    let grid = GridSpec::new(120).title(&title).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), &unit.slug(), "features"))
}
