//! Chapter 13: a generator as the image parametrisation (Lucent's GAN notebook; Nguyen et al.,
//! 2016). The optimiser changes a code and the image is what a generator makes of it: random
//! codes, a class through the generator without and with transformations and with diversity,
//! the same class from pixels and a spectrum at the same budget, and the generator in its own
//! world (chapter 1's SimpleCNN, trained on the same Fashion-MNIST).
use anyhow::Result;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{line_chart_with, ChartSpec, GridSpec, Panel, Series, SeriesLabelPosition};
use vision_interp::gan::{Generator, GeneratorArgs, GeneratorChoice};
use vision_interp::handoff::ScratchArgs;
use vision_interp::imagenet::short_name;
use vision_interp::models::{parse_unit, Model};
use vision_interp::optvis::transform::{scaled, standard};
use vision_interp::optvis::{class_verdicts, objective, render, render_new, GanParam, ImageSpec, Objective};
use vision_interp::optvis::{RenderConfig, Rendered, Space};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "A generator as the image parametrisation: optimising its code")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    generator: GeneratorArgs,
    #[command(flatten)]
    scratch: ScratchArgs,
    /// Classes to visualise, by name or number [default: "running shoe", which the book's
    /// generator's world holds, and the notebook's "strawberry", which it does not]
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Optimisation steps of each render [default: 128; 24 with --quick]
    #[arg(long)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let generator = args.generator.load(&s.device)?;
    let g = generator.as_ref();
    let names = args.classes.clone().unwrap_or_else(|| vec!["running shoe".into(), "strawberry".into()]);
    let classes: Vec<usize> = names.iter().map(|c| m.class_index(c)).collect::<Result<_>>()?;
    let (size, book) = RenderConfig::book(s.quick, args.steps);
    let cfg = RenderConfig { min_input: Some(if s.quick { 96 } else { m.input_size() }), ..book };
    samples(&mut s, g)?;
    for &class in &classes {
        recipes(&mut s, m, g, class, &cfg)?;
    }
    budget(&mut s, m, g, classes[0], size, &cfg)?;
    if args.generator.choice == GeneratorChoice::Fashion {
        own_world(&mut s, g, &args.scratch, args.run.seed, cfg.steps)?;
    }
    s.finish()
}

/// Eight images of codes drawn as the generator was trained (N(0, 1)), and eight of codes
/// twice as far out (N(0, 2²), the notebook's first cell).
fn samples(s: &mut Session, g: &dyn Generator) -> Result<()> {
    let mut rows = Vec::new();
    for sd in [1.0, 2.0] {
        let shape: Vec<usize> = [8].into_iter().chain(g.code_shape()).collect();
        let images =
            g.images(&vision_interp::rng::randn(&mut s.rng, shape.as_slice(), 0.0, sd, &s.device)?)?;
        rows.push((0..8).map(|i| Panel::image(&images.get(i)?, format!("σ = {sd}"))).collect::<Result<_>>()?);
    }
    let title = format!("{}: images of random codes", g.name());
    s.save_grid(&rows, &GridSpec::new(96).title(&title), (&g.name(), "random", "samples"))
}

/// The images of a render, each labelled with the logit and probability of `class`.
fn row(m: &dyn Model, out: &Rendered, class: usize, cfg: &RenderConfig) -> Result<Vec<Panel>> {
    let images = out.last();
    let v = class_verdicts(m, images, class, cfg)?;
    v.iter()
        .enumerate()
        .map(|(i, (z, p))| Panel::image(&images.get(i)?, format!("z {z:.1}, p {p:.2}")))
        .collect()
}

/// The notebook's three renders of a class logit through the generator, four codes each:
/// without transformations, with them, and with diversity.
fn recipes(
    s: &mut Session,
    m: &dyn Model,
    g: &dyn Generator,
    class: usize,
    cfg: &RenderConfig,
) -> Result<()> {
    let name = short_name(&m.classes()[class]).to_string();
    let layer = parse_unit(m, m.card().roles.showcase_unit)?.layer;
    // ANCHOR: recipes
    let logit = objective::channel("logits", class, None); // the batch's mean logit
    let moved = scaled(&standard(), 128, g.image_size().min(128)); // Lucent's, scaled down to small images
    let recipes: [(&str, Objective, Vec<_>); 3] = [
        ("no transformations", logit.clone(), vec![]),
        ("transformations", logit.clone(), moved.clone()),
        ("+ diversity", logit - 2.5 * objective::diversity(&layer), moved),
    ];
    let mut rows = Vec::new();
    for (what, obj, transforms) in recipes {
        let param = GanParam::new(g, 4, 1.0, &mut s.rng, &s.device)?; // four codes ~ N(0, 1)
        let out = render(m, &obj, &param, &RenderConfig { transforms, ..cfg.clone() }, &mut s.rng)?;
        // ANCHOR_END: recipes
        let rms = param.code().sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        println!("{name}, {what:<20} {}  code RMS {rms:.2} (drawn at 1)", out.summary());
        rows.push(row(m, &out, class, cfg)?);
    }
    let title = format!("{}: '{name}' through {}, {} steps", m.name(), g.name(), cfg.steps);
    let spec = GridSpec::new(120).title(&title).rows(&["no transf.", "transf.", "+ diversity"]).photo();
    s.save_grid(&rows, &spec, (m.name(), &name.replace(' ', "-"), "gan"))
}

/// The same class from the generator's codes, from pixels and from a spectrum, with the same
/// transformations and steps: the images, and the objective over the steps.
fn budget(
    s: &mut Session,
    m: &dyn Model,
    g: &dyn Generator,
    class: usize,
    size: usize,
    cfg: &RenderConfig,
) -> Result<()> {
    let name = short_name(&m.classes()[class]).to_string();
    let logit = objective::channel("logits", class, None);
    let moved = RenderConfig { transforms: scaled(&standard(), 128, g.image_size().min(128)), ..cfg.clone() };
    let gan = render(m, &logit, &GanParam::new(g, 4, 1.0, &mut s.rng, &s.device)?, &moved, &mut s.rng)?;
    let moved = RenderConfig { transforms: scaled(&standard(), 128, size), ..cfg.clone() };
    let image = |space| ImageSpec { space, batch: 4, ..ImageSpec::square(size) };
    let pixel = render_new(m, &logit, &image(Space::Pixel), &moved, &mut s.rng, &s.device)?;
    let fft = render_new(m, &logit, &image(Space::Fft), &moved, &mut s.rng, &s.device)?;
    let (mut rows, mut series) = (Vec::new(), Vec::new());
    for (what, out) in
        [(g.name(), &gan), (format!("pixels, {size} px"), &pixel), (format!("FFT, {size} px"), &fft)]
    {
        println!("{name}, {what:<20} {}", out.summary());
        rows.push(row(m, out, class, cfg)?);
        let points = out.losses.iter().enumerate().map(|(i, l)| (i as f32 + 1.0, -l)).collect();
        series.push(Series { label: what, points });
    }
    let title = format!("{}: '{name}' from three parametrisations, {} steps each", m.name(), cfg.steps);
    let spec = GridSpec::new(120).title(&title).rows(&["generator", "pixels", "FFT"]).photo();
    s.save_grid(&rows, &spec, (m.name(), &name.replace(' ', "-"), "parametrisations"))?;
    let title = format!("'{name}' on {}: the objective while it is optimised", m.name());
    let chart = line_chart_with(
        &series,
        &ChartSpec::new(&title, "step", "mean logit", (720, 360)).legend(SeriesLabelPosition::UpperLeft),
    )?;
    s.save(&chart, &s.figure(m.name(), &name.replace(' ', "-"), "budget"))
}

/// The generator in its own world: each Fashion-MNIST class of chapter 1's SimpleCNN from the
/// generator's codes and from a spectrum, at 32 px with transformations scaled to it.
fn own_world(
    s: &mut Session,
    g: &dyn Generator,
    scratch: &ScratchArgs,
    seed: u64,
    steps: usize,
) -> Result<()> {
    let run = scratch.run(s.quick);
    let cnn = run.trained(seed, &s.device)?; // chapter 1's, or trained now if absent
    let m: &dyn Model = &cnn;
    let n = m.classes().len();
    let each: Vec<Objective> =
        (0..n).map(|c| objective::class_logit(m, &c.to_string(), Some(c))).collect::<Result<_>>()?;
    let obj = Objective::sum(each)?; // image c of the batch: class c
    let transforms = scaled(&standard(), 128, run.size);
    let cfg = RenderConfig {
        steps,
        transforms,
        fixed_input: Some(run.size),
        min_input: None,
        ..Default::default()
    };
    let gan = render(m, &obj, &GanParam::new(g, n, 1.0, &mut s.rng, &s.device)?, &cfg, &mut s.rng)?;
    let fft = render_new(
        m,
        &obj,
        &ImageSpec { batch: n, ..ImageSpec::square(run.size) },
        &cfg,
        &mut s.rng,
        &s.device,
    )?;
    let mut rows = Vec::new();
    for out in [&gan, &fft] {
        let ps: Vec<f32> = (0..n)
            .map(|c| Ok(class_verdicts(m, &out.last().narrow(0, c, 1)?, c, &cfg)?[0].1))
            .collect::<Result<_>>()?;
        println!(
            "SimpleCNN's classes: p {}",
            ps.iter().map(|p| format!("{p:.2}")).collect::<Vec<_>>().join(" ")
        );
        rows.push(
            (0..n)
                .map(|c| Panel::image(&out.last().get(c)?, format!("{:.2}", ps[c])))
                .collect::<Result<_>>()?,
        );
    }
    let names: Vec<&str> = m.classes().iter().map(String::as_str).collect();
    let title = format!(
        "SimpleCNN ({} px Fashion-MNIST): each class through {}, and from a spectrum; {steps} steps",
        run.size,
        g.name()
    );
    let spec = GridSpec::new(72).title(&title).columns(&names).rows(&["generator", "FFT"]).photo();
    s.save_grid(&rows, &spec, ("simple-cnn", run.data.slug(), "gan-classes"))
}
