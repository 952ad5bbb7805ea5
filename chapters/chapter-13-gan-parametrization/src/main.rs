//! Chapter 13: a generator as the image parametrisation (Lucent's GAN notebook; Nguyen et al.,
//! 2016). The optimiser changes a code and the image is what a generator makes of it: random
//! codes, a class through the generator without and with transformations and with diversity,
//! the same class from pixels and a spectrum at the same budget, and the generator in its own
//! world (chapter 1's SimpleCNN, trained on the same Fashion-MNIST).
use anyhow::Result;
use chapter_01_cnn_basics::scratch::ScratchArgs;
use chapter_13_gan_parametrization::{GanParam, Generator, GeneratorArgs, GeneratorChoice};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{line_chart_with, ChartSpec, GridSpec, Panel, Series};
use vision_interp::imagenet::short_name;
use vision_interp::models::{parse_unit, Model};
use vision_interp::optvis::transform::{scaled, standard};
use vision_interp::optvis::{class_verdicts, objective, render, render_new, score, ImageSpec};
use vision_interp::optvis::{Objective, RenderConfig, Rendered, Space, Transform};
use vision_interp::Tensor;

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
    #[arg(long, value_parser = vision_interp::flag::steps)]
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
    let mut moved = Vec::new(); // each class's render with transformations
    let mut rms = Vec::new(); // the codes' RMS at the end of every render
    for &class in &classes {
        let (out, r) = recipes(&mut s, m, g, class, &cfg)?;
        moved.push(out);
        rms.extend(r);
    }
    s.record("rms_min", rms.iter().cloned().fold(f32::MAX, f32::min));
    s.record("rms_max", rms.iter().cloned().fold(f32::MIN, f32::max));
    budget(&mut s, m, g, (classes[0], &moved[0]), size, &cfg)?;
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

/// The images of a render, each labelled with the logit and probability of `class`; the
/// largest logit and probability are recorded as `<key>_max_z` and `<key>_max_p`, the
/// smallest as `<key>_min_z` and `<key>_min_p`.
fn row(
    s: &mut Session,
    m: &dyn Model,
    out: &Rendered,
    (class, key): (usize, &str),
    cfg: &RenderConfig,
) -> Result<Vec<Panel>> {
    let images = out.last();
    let v = class_verdicts(m, images, class, cfg)?;
    let fold = |f: fn(f32, f32) -> f32, pick: fn(&(f32, f32)) -> f32, init| v.iter().map(pick).fold(init, f);
    s.record(&format!("{key}_max_z"), fold(f32::max, |v| v.0, f32::MIN));
    s.record(&format!("{key}_max_p"), fold(f32::max, |v| v.1, f32::MIN));
    s.record(&format!("{key}_min_z"), fold(f32::min, |v| v.0, f32::MAX));
    s.record(&format!("{key}_min_p"), fold(f32::min, |v| v.1, f32::MAX));
    v.iter()
        .enumerate()
        .map(|(i, (z, p))| {
            Panel::image(&images.get(i)?, format!("z {:.1}, p {p:.2}", (z * 10.0).round() / 10.0 + 0.0))
        })
        .collect()
}

/// The mean logit of `class` over the images `(B, 3, H, W)`, untransformed.
fn mean_logit(m: &dyn Model, images: &Tensor, class: usize, cfg: &RenderConfig) -> Result<f32> {
    let v = class_verdicts(m, images, class, cfg)?;
    Ok(v.iter().map(|(z, _)| z).sum::<f32>() / v.len() as f32)
}

/// The notebook's three renders of a class logit through the generator, from the same four
/// codes and with the same random transformations: without transformations, with them, and
/// with diversity. Returns the render with transformations and the codes' RMS after each.
fn recipes(
    s: &mut Session,
    m: &dyn Model,
    g: &dyn Generator,
    class: usize,
    cfg: &RenderConfig,
) -> Result<(Rendered, Vec<f32>)> {
    let name = short_name(&m.classes()[class]).to_string();
    let key = name.replace(' ', "_");
    let layer = parse_unit(m, m.card().roles.showcase_unit)?.layer;
    let shape: Vec<usize> = [4].into_iter().chain(g.code_shape()).collect();
    // ANCHOR: recipes
    // The batch's mean logit, and Lucent's transformations scaled down to small images.
    let logit = objective::channel("logits", class, None);
    let moved = scaled(&standard(), 128, g.image_size().min(128));
    // Every row starts from the same four codes ~ N(0, 1) and draws the same transformations.
    let codes = vision_interp::rng::randn(&mut s.rng, shape.as_slice(), 0.0, 1.0, &s.device)?;
    let draws = s.rng.clone();
    let run = |obj: &Objective, transforms: &[Transform]| -> Result<(Rendered, GanParam)> {
        let param = GanParam::from_code(g, &codes)?;
        let cfg = RenderConfig { transforms: transforms.to_vec(), ..cfg.clone() };
        Ok((render(m, obj, &param, &cfg, &mut draws.clone())?, param))
    };
    let plain = run(&logit, &[])?;
    let with_moves = run(&logit, &moved)?;
    // Diversity's weight, the book's choice for this model and class: making the four images
    // entirely unlike each other (their mean similarity from 1 to 0, which moves the diversity
    // term by 3) is worth as much as the mean logit gained by the render with transformations.
    let start = g.images(&codes)?;
    let gain = mean_logit(m, with_moves.0.last(), class, cfg)? - mean_logit(m, &start, class, cfg)?;
    let weight = (gain / 3.0).max(0.1);
    let diverse = run(&(logit - weight as f64 * objective::diversity(&layer)), &moved)?;
    // ANCHOR_END: recipes
    println!("{name}: mean logit gained with transformations {gain:.2}, diversity weight {weight:.2}");
    s.record(&format!("{key}_gain"), gain);
    s.record(&format!("{key}_div_weight"), weight);
    let (mut rows, mut rms) = (Vec::new(), Vec::new());
    for (what, short, (out, param)) in [
        ("no transformations", "plain", &plain),
        ("transformations", "moved", &with_moves),
        ("+ diversity", "diverse", &diverse),
    ] {
        let r = param.code().sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        // How alike the four images are at the diversity's layer: the mean cosine similarity of
        // their Gram matrices (Lucent's diversity is −3 times it for four images).
        let similarity = score(m, &objective::diversity(&layer), out.last(), cfg)? / 3.0;
        println!(
            "{name}, {what:<20} {}  code RMS {r:.2} (drawn at 1), similarity {similarity:.2}",
            out.summary()
        );
        s.record(&format!("{key}_{short}_similarity"), similarity);
        rows.push(row(s, m, out, (class, &format!("{key}_{short}")), cfg)?);
        rms.push(r);
    }
    let title = format!("{}: '{name}' through {}, {} steps", m.name(), g.name(), cfg.steps);
    let spec = GridSpec::new(120).title(&title).rows(&["no transf.", "transf.", "+ diversity"]).photo();
    s.save_grid(&rows, &spec, (m.name(), &name.replace(' ', "-"), "gan"))?;
    Ok((with_moves.0, rms))
}

/// The same class from the generator's codes (the render with transformations of
/// [`recipes`]), from pixels and from a spectrum, with the same transformations and steps: the
/// images, and the objective over the steps.
fn budget(
    s: &mut Session,
    m: &dyn Model,
    g: &dyn Generator,
    (class, gan): (usize, &Rendered),
    size: usize,
    cfg: &RenderConfig,
) -> Result<()> {
    let name = short_name(&m.classes()[class]).to_string();
    let logit = objective::channel("logits", class, None);
    let moved = RenderConfig { transforms: scaled(&standard(), 128, size), ..cfg.clone() };
    let image = |space| ImageSpec { space, batch: 4, ..ImageSpec::square(size) };
    let pixel = render_new(m, &logit, &image(Space::Pixel), &moved, &mut s.rng, &s.device)?;
    let fft = render_new(m, &logit, &image(Space::Fft), &moved, &mut s.rng, &s.device)?;
    let (mut rows, mut series) = (Vec::new(), Vec::new());
    for (what, key, out) in [
        (g.name(), "budget_gan", gan),
        (format!("pixels, {size} px"), "budget_pixels", &pixel),
        (format!("FFT, {size} px"), "budget_fft", &fft),
    ] {
        println!("{name}, {what:<20} {}", out.summary());
        rows.push(row(s, m, out, (class, key), cfg)?);
        let points = out.losses.iter().enumerate().map(|(i, l)| (i as f32 + 1.0, -l)).collect();
        series.push(Series { label: what, points });
    }
    let title = format!("{}: '{name}' from three parametrisations, {} steps each", m.name(), cfg.steps);
    let spec = GridSpec::new(120).title(&title).rows(&["generator", "pixels", "FFT"]).photo();
    s.save_grid(&rows, &spec, (m.name(), &name.replace(' ', "-"), "parametrisations"))?;
    let title = format!("'{name}' on {}: the objective while it is optimised", m.name());
    let chart = line_chart_with(
        &series,
        &ChartSpec::new(&title, "step", "mean logit", (720, 380)).integer_x().legend_below(),
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
    let (mut rows, mut all) = (Vec::new(), Vec::new());
    for out in [&gan, &fft] {
        let ps: Vec<f32> = (0..n)
            .map(|c| Ok(class_verdicts(m, &out.last().narrow(0, c, 1)?, c, &cfg)?[0].1))
            .collect::<Result<_>>()?;
        println!(
            "SimpleCNN's classes: p {}",
            ps.iter().map(|p| format!("{p:.2}")).collect::<Vec<_>>().join(" ")
        );
        all.push(ps.clone());
        rows.push(
            (0..n)
                .map(|c| Panel::image(&out.last().get(c)?, format!("{:.2}", ps[c])))
                .collect::<Result<_>>()?,
        );
    }
    let names: Vec<&str> = m.classes().iter().map(String::as_str).collect();
    record_own_world(s, &names, &all[0], &all[1]);
    let title = format!(
        "SimpleCNN ({} px Fashion-MNIST): each class through {}, and from a spectrum; {steps} steps",
        run.size,
        g.name()
    );
    let spec = GridSpec::new(72).title(&title).columns(&names).rows(&["generator", "FFT"]).photo();
    s.save_grid(&rows, &spec, ("simple-cnn", run.data.slug(), "gan-classes"))
}

/// The own world's numbers the page reads: how many classes each parametrisation makes with a
/// probability of at least 0.5 and the least of those, and the classes the generator misses
/// (`own_miss1_name`, its probability through the generator and from the spectrum, …).
fn record_own_world(s: &mut Session, names: &[&str], gan: &[f32], fft: &[f32]) {
    for (what, ps) in [("gan", gan), ("fft", fft)] {
        let hits: Vec<f32> = ps.iter().cloned().filter(|&p| p >= 0.5).collect();
        s.record(&format!("own_{what}_hits"), hits.len());
        s.record(&format!("own_{what}_hit_min"), hits.iter().cloned().fold(1.0f32, f32::min));
    }
    let misses = (0..names.len()).filter(|&c| gan[c] < 0.5);
    for (i, c) in misses.enumerate() {
        s.record(&format!("own_miss{}_name", i + 1), names[c].to_lowercase());
        s.record(&format!("own_miss{}_gan", i + 1), gan[c]);
        s.record(&format!("own_miss{}_fft", i + 1), fft[c]);
    }
}
