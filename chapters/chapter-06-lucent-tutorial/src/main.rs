//! Chapter 6: Lucent's tutorial notebook, rebuilt and taken further. Its renders (a unit, a
//! second channel, their sum, a favourite unit), then for the favourite unit the grid of five
//! parametrisations × four sets of transformations with the value each reached and how fast it
//! ran; objective algebra, custom objectives and batch indices; and transformations that scale
//! with the image, on chapter 1's 32-pixel SimpleCNN where Lucent's fixed amounts fail.
use anyhow::Result;
use chapter_01_cnn_basics::scratch::ScratchArgs;
use chapter_06_lucent_tutorial::TUTORIAL;
use clap::Parser;
use vision_interp::attribution::probability;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{GridSpec, Panel};
use vision_interp::models::{parse_unit, Model, Unit};
use vision_interp::optvis::transform::{self, Transform};
use vision_interp::optvis::{objective, render_new, score, ImageSpec, Objective, RenderConfig, Space};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's tutorial: objectives, parametrisations and transformations")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    scratch: ScratchArgs,
    /// Unit of the parametrisation × transformation grid, `layer:unit` [default: the model's
    /// favourite: stage3:42 for Lite0, mixed4d_3x3_bottleneck_pre_relu_conv:139 for InceptionV1]
    #[arg(long)]
    unit: Option<String>,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

/// One row of the timing table.
struct Timing {
    what: String,
    images: usize,
    steps: usize,
    seconds: f64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let (size, recipe) = RenderConfig::book(s.quick, args.steps);
    let steps = recipe.steps;
    let roles = m.card().roles;
    let first = parse_unit(m, roles.showcase_unit)?;
    let (second, favourite) = match TUTORIAL.chosen(m.name()).copied() {
        Some((second, favourite)) => (parse_unit(m, second)?, parse_unit(m, favourite)?),
        None => {
            let next = (first.unit + 1) % m.layer(&first.layer)?.channels;
            (Unit { layer: first.layer.clone(), unit: next }, first.clone())
        }
    };
    let favourite = match &args.unit {
        Some(u) => parse_unit(m, u)?,
        None => favourite,
    };
    let caption = |what: &str| format!("{what}, {}, {steps} steps", m.name());
    let mut timings = Vec::new();

    // ANCHOR: visualize
    // The notebook's first four renders, as one batch: image b answers the objective with
    // batch index b.
    let (a, b) = (&first, &second);
    let objs = [
        objective::channel(&a.layer, a.unit, Some(0)),
        objective::channel(&b.layer, b.unit, Some(1)),
        objective::channel(&a.layer, a.unit, Some(2)) + objective::channel(&b.layer, b.unit, Some(2)),
        objective::channel(&favourite.layer, favourite.unit, Some(3)),
    ];
    let labels = [a.to_string(), b.to_string(), format!("{a} + {b}"), favourite.to_string()];
    let spec = ImageSpec { batch: 4, ..ImageSpec::square(size) };
    let (images, t) = run(&mut s, m, &Objective::sum(objs)?, spec, &recipe, "four objectives, one batch")?;
    // ANCHOR_END: visualize
    timings.push(t);
    let row = labels
        .iter()
        .enumerate()
        .map(|(i, l)| Panel::image(&images.get(i)?, l.clone()))
        .collect::<Result<_>>()?;
    let spec = GridSpec::new(180).title(&caption("The notebook's first renders")).photo();
    s.save_grid(&[row], &spec, (m.name(), "tutorial", "renders"))?;

    // ANCHOR: grid
    let target = objective::channel(&favourite.layer, favourite.unit, None);
    let params: [(&str, ImageSpec); 5] = [
        ("pixel", ImageSpec { space: Space::Pixel, decorrelate: false, ..ImageSpec::square(size) }),
        ("FFT", ImageSpec { space: Space::Fft, decorrelate: false, ..ImageSpec::square(size) }),
        ("decorrelated", ImageSpec { space: Space::Pixel, decorrelate: true, ..ImageSpec::square(size) }),
        ("FFT + decorr.", ImageSpec::square(size)),
        ("CPPN", ImageSpec { space: Space::Cppn { hidden: 24, layers: 8 }, ..ImageSpec::square(size) }),
    ];
    let suites: [(&str, Vec<Transform>); 4] = [
        ("none", vec![]),
        ("jitter 8", vec![Transform::Jitter(8)]),
        ("standard", transform::standard()),
        ("extended", transform::extended()),
    ];
    let (mut rows, mut scores) = (Vec::new(), Vec::new());
    for (param, spec) in &params {
        let (mut row, mut values) = (Vec::new(), Vec::new());
        for (suite, transforms) in &suites {
            // A CPPN takes a learning rate ten times lower than an image (the notebook: 0.005).
            let lr = if matches!(spec.space, Space::Cppn { .. }) { 0.005 } else { 0.05 };
            let cfg = RenderConfig { lr, transforms: transforms.clone(), ..recipe.clone() };
            let (img, t) = run(&mut s, m, &target, *spec, &cfg, &format!("{param}, {suite}"))?;
            // The value reached, on the final image without transformations.
            let reached = score(m, &target, &img, &RenderConfig { transforms: vec![], ..cfg })?;
            row.push(Panel::image(&img.get(0)?, format!("{reached:.2}"))?);
            s.record(&format!("score_{}_{}", slug(param), slug(suite)), reached);
            values.push(reached);
            timings.push(t);
        }
        rows.push(row);
        scores.push(values);
    }
    // ANCHOR_END: grid
    // In how many columns the CPPN (the last row) reached the lowest value.
    let lowest =
        (0..suites.len()).filter(|&c| scores.iter().all(|row| scores[scores.len() - 1][c] <= row[c])).count();
    s.record("cppn_lowest_columns", lowest);
    let row_titles: Vec<&str> = params.iter().map(|p| p.0).collect();
    let column_titles: Vec<&str> = suites.iter().map(|t| t.0).collect();
    let spec = GridSpec::new(130)
        .title(&caption(&format!("{favourite}: parametrisation × transformations")))
        .columns(&column_titles)
        .rows(&row_titles)
        .photo();
    s.save_grid(&rows, &spec, (m.name(), &favourite.slug(), "grid"))?;

    let (panels, t) = algebra(&mut s, m, (&first, &second), size, &recipe)?;
    timings.push(t);
    let spec = GridSpec::new(150).title(&caption("Objective algebra on two channels")).photo();
    s.save_grid(&[panels], &spec, (m.name(), "tutorial", "algebra"))?;

    let cnn_steps = s.budget(args.steps, 48, 256);
    small_input(&mut s, &args.scratch, args.run.seed, cnn_steps, &mut timings)?;

    report_timings(&mut s, &timings);
    s.finish()
}

/// `FFT + decorr.` → `fft_decorr`: a row or column name as part of a key.
fn slug(name: &str) -> String {
    let words: Vec<String> = name
        .replace('\'', "")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join("_")
}

/// Prints the timing table and records the rates the page quotes (this machine's, under
/// whatever else it was running: `run.*` keys, never compared between runs).
fn report_timings(s: &mut Session, timings: &[Timing]) {
    println!("\n{:<44} {:>6} {:>6} {:>8} {:>8}", "render", "images", "steps", "seconds", "steps/s");
    let rate = |t: &Timing| t.steps as f64 / t.seconds;
    for t in timings {
        println!("{:<44} {:>6} {:>6} {:>8.1} {:>8.1}", t.what, t.images, t.steps, t.seconds, rate(t));
    }
    let of = |what: &str| timings.iter().find(|t| t.what == what).map_or(f64::NAN, rate);
    // Milliseconds a step of the grid's one-image renders, the CPPN's apart.
    let ms: Vec<f64> = timings
        .iter()
        .filter(|t| t.images == 1 && !t.what.starts_with("CPPN"))
        .map(|t| 1000.0 * t.seconds / t.steps as f64)
        .collect();
    s.record_timing("grid_ms_min", ms.iter().copied().fold(f64::INFINITY, f64::min));
    s.record_timing("grid_ms_max", ms.iter().copied().fold(0.0, f64::max));
    let cppn: Vec<f64> = timings.iter().filter(|t| t.what.starts_with("CPPN")).map(rate).collect();
    s.record_timing("cppn_steps_per_s", cppn.iter().sum::<f64>() / cppn.len().max(1) as f64);
    s.record_timing("renders_steps_per_s", of("four objectives, one batch"));
    s.record_timing("algebra_steps_per_s", of("objective algebra, one batch"));
    let (big, own) = (of("SimpleCNN, Lucent's defaults"), of("SimpleCNN, fixed size 32"));
    s.record_timing("cnn_224_steps_per_s", big);
    s.record_timing("cnn_32_steps_per_s", own);
    s.record_timing("cnn_scaled_steps_per_s", of("SimpleCNN, scaled to 32 px"));
    s.record_timing("cnn_slowdown", own / big);
}

/// Renders `obj` from a fresh parametrisation; returns the final images and the run's timing.
fn run(
    s: &mut Session,
    m: &dyn Model,
    obj: &Objective,
    spec: ImageSpec,
    cfg: &RenderConfig,
    what: &str,
) -> Result<(vision_interp::Tensor, Timing)> {
    let out = render_new(m, obj, &spec, cfg, &mut s.rng, &s.device)?;
    println!("{what:<44} loss {:>9.3} → {:>9.3}", out.losses[0], out.losses.last().expect("steps"));
    let seconds = out.elapsed.as_secs_f64();
    Ok((out.last().clone(), Timing { what: what.to_owned(), images: spec.batch, steps: cfg.steps, seconds }))
}

/// Five images from five combinations of two channels `a` and `b`, each labelled with the
/// two channels' values on it.
fn algebra(
    s: &mut Session,
    m: &dyn Model,
    (a, b): (&Unit, &Unit),
    size: usize,
    recipe: &RenderConfig,
) -> Result<(Vec<Panel>, Timing)> {
    let ch = |u: &Unit, i| objective::channel(&u.layer, u.unit, Some(i));
    // ANCHOR: algebra
    // Channel a on the left half of image 4 and channel b on its right half, from a closure.
    let (la, lb, ua, ub) = (a.layer.clone(), b.layer.clone(), a.unit, b.unit);
    let halves = objective::custom("a left, b right", &[&a.layer, &b.layer], move |acts, _| {
        let (fa, fb) = (acts.get(&la)?.narrow(0, 4, 1)?, acts.get(&lb)?.narrow(0, 4, 1)?);
        let w = fa.dim(3)?;
        let left = fa.narrow(1, ua, 1)?.narrow(3, 0, w / 2)?.mean_all()?;
        let right = fb.narrow(1, ub, 1)?.narrow(3, w / 2, w - w / 2)?.mean_all()?;
        Ok((left + right)?.neg()?)
    });
    let objs = [ch(a, 0), -ch(a, 1), ch(a, 2) - ch(b, 2), ch(a, 3) + 2.0 * ch(b, 3), halves];
    let labels = ["a", "−a", "a − b", "a + 2·b", "a left, b right"];
    // ANCHOR_END: algebra
    let spec = ImageSpec { batch: objs.len(), ..ImageSpec::square(size) };
    let (images, t) = run(s, m, &Objective::sum(objs)?, spec, recipe, "objective algebra, one batch")?;
    let (only_a, only_b) =
        (objective::channel(&a.layer, a.unit, None), objective::channel(&b.layer, b.unit, None));
    let clean = RenderConfig { transforms: vec![], ..recipe.clone() };
    let mut panels = Vec::new();
    for (i, label) in labels.iter().enumerate() {
        let img = images.narrow(0, i, 1)?;
        let (va, vb) = (score(m, &only_a, &img, &clean)?, score(m, &only_b, &img, &clean)?);
        println!("{label:<16} {a} {va:>7.2}   {b} {vb:>7.2}");
        let key = ["a", "neg_a", "a_minus_b", "a_plus_2b", "halves"][i];
        s.record(&format!("algebra_{key}_a"), va);
        s.record(&format!("algebra_{key}_b"), vb);
        panels.push(Panel::image(&img.squeeze(0)?, format!("{label}: {va:.1}, {vb:.1}"))?);
    }
    Ok((panels, t))
}

/// Chapter 1's SimpleCNN (32-pixel Fashion-MNIST) visualised three ways: Lucent's defaults
/// (its transformations, then upsampled to 224 px), Lucent's `fixed_image_size=32` (the same
/// transformations, resized to 32 px), and the transformations scaled to the image's size.
fn small_input(
    s: &mut Session,
    scratch: &ScratchArgs,
    seed: u64,
    steps: usize,
    timings: &mut Vec<Timing>,
) -> Result<()> {
    let run_ = scratch.run(s.quick);
    let cnn = run_.trained(seed, &s.device)?; // chapter 1's, or trained now if absent
    let m: &dyn Model = &cnn;
    let px = run_.size;
    let classes = ["trouser", "sneaker", "bag", "ankle boot", "dress"];
    // ANCHOR: small
    let standard = transform::standard();
    let ways = [
        ("Lucent's defaults", RenderConfig { steps, transforms: standard.clone(), ..Default::default() }),
        (
            "fixed size 32",
            RenderConfig { steps, transforms: standard.clone(), fixed_input: Some(px), ..Default::default() },
        ),
        (
            "scaled to 32 px",
            RenderConfig {
                steps,
                transforms: transform::scaled(&standard, 128, px),
                fixed_input: Some(px),
                ..Default::default()
            },
        ),
    ];
    // ANCHOR_END: small
    let objs: Vec<Objective> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| objective::class_logit(m, c, Some(i)))
        .collect::<Result<_>>()?;
    let obj = Objective::sum(objs)?;
    let mut rows = Vec::new();
    for (what, cfg) in &ways {
        let spec = ImageSpec { batch: classes.len(), ..ImageSpec::square(px) };
        let (images, t) = run(s, m, &obj, spec, cfg, &format!("SimpleCNN, {what}"))?;
        timings.push(t);
        let mut row = Vec::new();
        for (i, c) in classes.iter().enumerate() {
            // What the model says of the final image at the size it was trained on.
            let img = images.get(i)?;
            let p = probability(m, &img, m.class_index(c)?)?;
            println!("  {c:<12} p = {p:.3}");
            s.record(&format!("small_{}_{}", slug(what), slug(c)), p);
            row.push(Panel::image(&img, format!("{p:.2}"))?);
        }
        rows.push(row);
    }
    let row_titles: Vec<&str> = ways.iter().map(|w| w.0).collect();
    let spec = GridSpec::new(110)
        .title(&format!("SimpleCNN ({px} px Fashion-MNIST): class probability of each image, {steps} steps"))
        .columns(&classes)
        .rows(&row_titles)
        .photo();
    s.save_grid(&rows, &spec, ("simple-cnn", run_.data.slug(), "small-input"))
}
