//! Chapter 8: Lucent's diversity notebook, rebuilt and taken further. A batch of images of one
//! unit, pulled apart by a penalty on how alike their Gram matrices are: the notebook's recipes,
//! the weight swept from 0 to 1000 with the batch's similarity measured, diverse renders beside
//! the unit's top dataset examples (chapter 4's scan), and diversity on pooled activations
//! instead of Gram matrices.
use anyhow::{ensure, Result};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{
    hstack, line_chart_with, ChartSpec, GridSpec, Panel, Series, SeriesLabelPosition,
};
use vision_interp::handoff::DatasetScan;
use vision_interp::models::{parse_unit, DiversityRecipe, Model, Taps, Unit};
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
    #[arg(long, value_delimiter = ',', default_value = "0,1,3,10,30,100,1000")]
    sweep: Vec<f64>,
    /// Images per batch (Lucent's notebook: 4)
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long)]
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
    let roles = m.card().roles;
    let recipes: Vec<(Unit, &DiversityRecipe)> = if roles.diversity.is_empty() {
        vec![(parse_unit(m, roles.showcase_unit)?, &FALLBACK)]
    } else {
        roles.diversity.iter().map(|r| Ok((parse_unit(m, r.unit)?, r))).collect::<Result<_>>()?
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
    for (unit, r) in &recipes {
        println!("{unit} − {}·diversity: {}", r.weight, r.caption);
        let spec = ImageSpec { decorrelate: r.decorrelate, ..spec };
        let b = diverse(&mut s, m, unit, r.weight, Features::Gram, spec, &cfg)?;
        rows.push(panels(&b, unit)?);
        let colours = if r.decorrelate { "" } else { ", plain RGB" };
        names.push(format!("{unit}, w {}{colours}, sim {:.2}", r.weight, b.gram));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let grid = GridSpec::new(130).title(&title("Diverse batches")).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), "diversity", "recipes"))?;

    sweep(&mut s, m, &sweep_unit, &args.sweep, spec, &cfg)?;
    with_examples(&mut s, m, &args, spec, &cfg)?;
    features(&mut s, m, &sweep_unit, recipes[0].1.weight, spec, &cfg)?;
    s.finish();
    Ok(())
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
    let obj = channel.clone() - weight * objective::diversity_of(&unit.layer, features);
    // ANCHOR_END: recipe
    let out = render_new(m, &obj, &spec, cfg, &mut s.rng, &s.device)?;
    let images = out.last().clone();
    let clean = RenderConfig { transforms: vec![], ..cfg.clone() };
    let value = score(m, &channel, &images, &clean)?;
    // ANCHOR: measure
    let x = clean.model_input(&m.preprocess(&images)?)?;
    let acts = m.forward_taps(&x, &Taps::layers(&[unit.layer.as_str()]))?;
    let a = acts.get(&unit.layer)?;
    let (gram, pooled) = (similarity(a, Features::Gram)?, similarity(a, Features::Pooled)?);
    // ANCHOR_END: measure
    println!(
        "  {unit:<10} {:<6} w {weight:<6} value {value:>7.2}  similarity: Gram {gram:.3}, pooled {pooled:.3}  {}",
        if features == Features::Gram { "Gram" } else { "pooled" },
        out.summary()
    );
    Ok(Batch { images, value, gram, pooled })
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
/// unit's value and the batch's similarities against the weight.
fn sweep(
    s: &mut Session,
    m: &dyn Model,
    unit: &Unit,
    weights: &[f64],
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    println!("\nthe weight of diversity on {unit}:");
    let start = s.rng.clone();
    let mut batches = Vec::new();
    for &w in weights {
        s.rng = start.clone();
        batches.push((w, diverse(s, m, unit, w, Features::Gram, spec, cfg)?));
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
        return Ok(());
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
    let chart = |series: &[Series], y: &str, at| {
        let spec = ChartSpec::new(
            &format!("{unit} on {}", m.name()),
            "log10 of the diversity weight",
            y,
            (440, 300),
        );
        line_chart_with(series, &spec.legend(at))
    };
    let charts = hstack(
        &chart(&value, "unit's mean value", SeriesLabelPosition::LowerLeft)?,
        &chart(&sim, "mean pairwise cosine similarity", SeriesLabelPosition::UpperRight)?,
        8,
    );
    s.save(&charts, &s.figure(m.name(), &unit.slug(), "sweep-curves"))
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
    let roles = m.card().roles;
    let mut units: Vec<Unit> = Vec::new();
    for u in roles.polysemantic.iter().chain(roles.spectrum) {
        let u = parse_unit(m, u)?;
        if !units.contains(&u) && units.len() < 3 {
            units.push(u);
        }
    }
    let layer = units[0].layer.clone();
    let scan_layer = m.pre_activation(&layer).unwrap_or(&layer).to_owned();
    let run = DatasetScan { quick: s.quick, seed: args.run.seed };
    let (ex, src) = run.examples(m, args.model.weights.as_deref(), &scan_layer, &s.device)?;
    let weight = roles.diversity.first().unwrap_or(&FALLBACK).weight;
    println!("\ndiverse renders beside the top photos of {scan_layer} ({} views):", ex.views);
    let mut rows = Vec::new();
    for unit in &units {
        let b = diverse(s, m, unit, weight, Features::Gram, spec, cfg)?;
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
        rows.push(panels(&b, unit)?);
        names.push(format!("{what}: Gram {:.2}, pooled {:.2}", b.gram, b.pooled));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let title = format!("{unit} − {weight}·diversity on two features, {}, {} steps", m.name(), cfg.steps);
    let grid = GridSpec::new(120).title(&title).rows(&names).photo();
    s.save_grid(&rows, &grid, (m.name(), &unit.slug(), "features"))
}
