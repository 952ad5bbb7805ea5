//! Chapter 9: Lucent's neuron-interaction notebook, rebuilt and taken further (Lucid's
//! `neuron_interaction` and `negative_neuron`). What a channel is against (its negative beside
//! its positive, in one batch); two units alone, summed at several weights and as a direction;
//! and interpolations from one unit to another whose frames line up, through low-resolution
//! tensors shared by the batch or through Lucid's alignment penalty. Then what a batch costs.
use anyhow::{ensure, Result};
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{grid, GridSpec, Panel};
use vision_interp::models::{parse_unit, Model, Taps, Unit};
use vision_interp::optvis::{
    objective, render, score, ImageParam, ImageSpec, LowRes, Objective, RenderConfig,
};
use vision_interp::Tensor;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's neuron interaction: negatives, sums, directions and aligned interpolations")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Frames of each interpolation (the notebook: 6)
    #[arg(long, default_value_t = 6)]
    frames: usize,
    /// Weight of the alignment penalty in the third interpolation
    #[arg(long, default_value_t = 1.0)]
    alignment: f64,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long)]
    steps: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    ensure!(args.frames >= 2, "--frames: an interpolation needs at least two frames, not {}", args.frames);
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let (size, cfg) = RenderConfig::book(s.quick, args.steps);
    let units = |list: &[&str]| list.iter().map(|u| parse_unit(m, u)).collect::<Result<Vec<_>>>();
    let pairs = |list: &[(&str, &str)]| {
        list.iter().map(|(a, b)| Ok((parse_unit(m, a)?, parse_unit(m, b)?))).collect::<Result<Vec<_>>>()
    };
    let show = m.card().roles.showcase_unit;
    let (negative, pairs, interpolations) = match &m.card().roles.interaction {
        Some(r) => (units(r.negative)?, pairs(r.pairs)?, pairs(r.interpolations)?),
        None => {
            // Without chosen units: the showcase unit and the next channel of its layer.
            let a = parse_unit(m, show)?;
            let b = Unit { layer: a.layer.clone(), unit: (a.unit + 1) % m.layer(&a.layer)?.channels };
            (vec![a.clone()], vec![(a.clone(), b.clone())], vec![(a, b)])
        }
    };
    let square = ImageSpec::square(size);

    negatives(&mut s, m, &negative, square, &cfg)?;
    for pair in &pairs {
        combined(&mut s, m, pair, square, &cfg)?;
    }
    for (i, pair) in interpolations.iter().enumerate() {
        // The animation of the first pair only: a GIF of photographic frames is large.
        let spec = ImageSpec { batch: args.frames, ..square };
        interpolate(&mut s, m, pair, spec, &cfg, args.alignment, i == 0)?;
    }
    speed(&mut s, m, &interpolations[0].0, square, &cfg)?;
    s.finish();
    Ok(())
}

/// Renders `obj` on a batch of `spec` with `low` shared low-resolution tensors; prints what
/// it is, the loss and the speed.
fn run(
    s: &mut Session,
    m: &dyn Model,
    (what, obj): (&str, &Objective),
    spec: ImageSpec,
    low: &[LowRes],
    cfg: &RenderConfig,
) -> Result<Tensor> {
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?.with_lowres(low, 0.01, &mut s.rng)?;
    let out = render(m, obj, &param, cfg, &mut s.rng)?;
    println!("  {what:<40} {}", out.summary());
    Ok(out.last().clone())
}

/// The value of channel `u` on each image of `images`, without transformations.
fn values(m: &dyn Model, u: &Unit, images: &Tensor, cfg: &RenderConfig) -> Result<Vec<f32>> {
    let clean = RenderConfig { transforms: vec![], ..cfg.clone() };
    let obj = objective::channel(&u.layer, u.unit, None);
    (0..images.dim(0)?).map(|i| score(m, &obj, &images.narrow(0, i, 1)?, &clean)).collect()
}

/// Each unit's negative (image 0 of its pair) and positive (image 1), all in one batch.
fn negatives(
    s: &mut Session,
    m: &dyn Model,
    units: &[Unit],
    square: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    println!("negative and positive, one batch of {}:", 2 * units.len());
    let mut objs = Vec::new();
    for (i, u) in units.iter().enumerate() {
        // ANCHOR: negative
        // Image 2i lowers the channel's mean, image 2i + 1 raises it: one objective.
        let ch = |b| objective::channel(&u.layer, u.unit, Some(b));
        objs.push(ch(2 * i + 1) - ch(2 * i));
        // ANCHOR_END: negative
    }
    let images = run(
        s,
        m,
        ("all in one batch", &Objective::sum(objs)?),
        ImageSpec { batch: 2 * units.len(), ..square },
        &[],
        cfg,
    )?;
    let mut rows = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let pair = images.narrow(0, 2 * i, 2)?;
        let v = values(m, u, &pair, cfg)?;
        println!("  {u:<12} negative {:>8.2}   positive {:>8.2}", v[0], v[1]);
        rows.push(vec![
            Panel::image(&pair.get(0)?, format!("{u}: {:.1}", v[0]))?,
            Panel::image(&pair.get(1)?, format!("{u}: {:.1}", v[1]))?,
        ]);
    }
    let names: Vec<String> = units.iter().map(|u| u.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let spec = GridSpec::new(150)
        .title(&format!("Negative and positive, {}, {} steps", m.name(), cfg.steps))
        .columns(&["negative", "positive"])
        .rows(&names)
        .photo();
    s.save_grid(&rows, &spec, (m.name(), "interaction", "negative"))
}

/// Units `a` and `b` alone, summed with three weightings, and (for units of one layer) the
/// direction `a + b` of that layer, one batch; each image labelled with both units' values.
fn combined(
    s: &mut Session,
    m: &dyn Model,
    (a, b): &(Unit, Unit),
    square: ImageSpec,
    cfg: &RenderConfig,
) -> Result<()> {
    println!("\n{a} and {b}, combined:");
    let ch = |u: &Unit, i| objective::channel(&u.layer, u.unit, Some(i));
    // ANCHOR: combined
    let mut objs =
        vec![ch(a, 0), ch(b, 1), ch(a, 2) + ch(b, 2), ch(a, 3) + 2.0 * ch(b, 3), 2.0 * ch(a, 4) + ch(b, 4)];
    let mut labels = vec!["a".to_string(), "b".into(), "a + b".into(), "a + 2b".into(), "2a + b".into()];
    if a.layer == b.layer {
        // The direction e_a + e_b: the cosine between it and the activation vector at each
        // position, so a and b equally and every other channel of the layer as little as can be.
        let c = m.layer(&a.layer)?.channels;
        let mut d = vec![0f32; c];
        (d[a.unit], d[b.unit]) = (1.0, 1.0);
        let d = Tensor::new(d.as_slice(), &s.device)?;
        objs.push(objective::direction(&a.layer, &d, Some(5)));
        labels.push("direction a + b".into());
    } else {
        println!("  {a} and {b} are of different layers: no direction of one layer holds both");
    }
    // ANCHOR_END: combined
    let images = run(
        s,
        m,
        ("all in one batch", &Objective::sum(objs)?),
        ImageSpec { batch: labels.len(), ..square },
        &[],
        cfg,
    )?;
    let (va, vb) = (values(m, a, &images, cfg)?, values(m, b, &images, cfg)?);
    let mut row = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        println!("  {l:<16} {a} {:>8.2}   {b} {:>8.2}", va[i], vb[i]);
        row.push(Panel::image(&images.get(i)?, format!("{l}: {:.1}, {:.1}", va[i], vb[i]))?);
    }
    let title = format!("a = {a}, b = {b} (values of a, b), {}, {} steps", m.name(), cfg.steps);
    let spec = GridSpec::new(130).title(&title).photo();
    s.save_grid(&[row], &spec, (m.name(), &format!("{}-{}", a.slug(), b.slug()), "combined"))
}

/// How alike neighbouring frames are: the correlation of their pixels after averaging `block`
/// × `block` squares (1: every detail; 8: the layout), averaged over the pairs of neighbours.
fn frame_likeness(images: &Tensor, block: usize) -> Result<f32> {
    let x = if block > 1 { images.avg_pool2d(block)? } else { images.clone() };
    neighbour_correlation(&x)
}

/// The mean correlation of each row of `x` `(N, …)` with the next: 1 when each is the next one
/// scaled and shifted, 0 when they have nothing in common. Unlike a difference, it does not
/// grow with the images' contrast.
fn neighbour_correlation(x: &Tensor) -> Result<f32> {
    let n = x.dim(0)?;
    let x = x.flatten_from(1)?;
    let x = x.broadcast_sub(&x.mean_keepdim(1)?)?;
    let x = x.broadcast_div(&x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?)?;
    let r = (x.narrow(0, 1, n - 1)? * x.narrow(0, 0, n - 1)?)?.sum(1)?;
    Ok(r.mean_all()?.to_scalar::<f32>()?)
}

/// An interpolation from `a` to `b` three ways from one seed: frames optimised independently,
/// frames that share low-resolution tensors, and frames held alike by the alignment penalty.
fn interpolate(
    s: &mut Session,
    m: &dyn Model,
    (a, b): &(Unit, Unit),
    spec: ImageSpec,
    cfg: &RenderConfig,
    alignment: f64,
    animate: bool,
) -> Result<()> {
    println!("\n{a} → {b} in {} frames:", spec.batch);
    let size = spec.width;
    // ANCHOR: interpolate
    let interpolation = objective::channel_interpolate(&a.layer, a.unit, &b.layer, b.unit);
    // Lucid's shared tensors: one image of each size (two, blended across the batch, of the
    // two smallest), added to every frame's own FFT image, for 128 px: 64, 32, 16, 16×2, 8, 8×2.
    let shared = |px: usize, batch| LowRes { batch, ..LowRes::shared(size / px) };
    let low = [shared(2, 1), shared(4, 1), shared(8, 1), shared(8, 2), shared(16, 1), shared(16, 2)];
    // Or a penalty on how much the layer differs between frames 1 to 4 apart (decay ratio 5).
    let aligned = interpolation.clone() + alignment * objective::alignment(&a.layer, 5.0);
    let ways: [(&str, &Objective, &[LowRes]); 3] = [
        ("independent", &interpolation, &[]),
        ("shared low-res", &interpolation, &low),
        ("alignment", &aligned, &[]),
    ];
    // ANCHOR_END: interpolate
    let start = s.rng.clone();
    let mut strips = Vec::new();
    let mut names = Vec::new();
    for (what, obj, low) in ways {
        s.rng = start.clone();
        let images = run(s, m, (what, obj), spec, low, cfg)?;
        let (va, vb) = (values(m, a, &images, cfg)?, values(m, b, &images, cfg)?);
        let (pixels, layout) = (frame_likeness(&images, 1)?, frame_likeness(&images, 8)?);
        let x = RenderConfig { transforms: vec![], ..cfg.clone() }.model_input(&m.preprocess(&images)?)?;
        let acts = m.forward_taps(&x, &Taps::layers(&[a.layer.as_str()]))?;
        let layer = neighbour_correlation(acts.get(&a.layer)?)?;
        println!(
            "  {what:<16} neighbouring frames correlate: pixels {pixels:.2}, layout (8 × 8 means) {layout:.2}, {} {layer:.2}",
            a.layer
        );
        let fmt = |v: &[f32]| v.iter().map(|x| format!("{x:>6.1}")).collect::<String>();
        println!("  {:<16} {a}: {}\n  {:<16} {b}: {}", "", fmt(&va), "", fmt(&vb));
        let row = (0..spec.batch)
            .map(|i| Panel::image(&images.get(i)?, format!("{:.1}, {:.1}", va[i], vb[i])))
            .collect::<Result<Vec<_>>>()?;
        strips.push(row);
        names.push(format!("{what}, r {pixels:.2} / {layout:.2} / {layer:.2}"));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let title = format!("{a} → {b} (values of both), {}, {} steps", m.name(), cfg.steps);
    let spec_grid = GridSpec::new(110).title(&title).rows(&names).photo();
    let stem = format!("{}-{}", a.slug(), b.slug());
    s.save_grid(&strips, &spec_grid, (m.name(), &stem, "interpolation"))?;
    if animate {
        // One frame of the animation: independent frames beside shared ones at one step of the
        // interpolation, forward and back (two of the three ways: a GIF of photographic
        // frames is large, and these two are the contrast).
        let order: Vec<usize> = (0..spec.batch).chain((1..spec.batch - 1).rev()).collect();
        let frames = order
            .iter()
            .map(|&i| {
                let row: Vec<Panel> = strips[..2]
                    .iter()
                    .map(|r| Panel::new(r[i].image.clone(), format!("frame {}", i + 1)))
                    .collect();
                let ways: Vec<&str> = ways[..2].iter().map(|w| w.0).collect();
                grid(&[row], &GridSpec::new(size as u32).title(&format!("{a} → {b}")).columns(&ways))
            })
            .collect::<Result<Vec<_>>>()?;
        s.save_animation(&frames, 400, (m.name(), &stem, "animation"))?;
    }
    Ok(())
}

/// Steps per second for batches of 1, 4, 6 and 16 images of one channel objective (the cost
/// of a step is the network's forward and backward pass; the objective adds little). Printed,
/// not drawn: a figure of timings would differ on every machine and every run.
fn speed(s: &mut Session, m: &dyn Model, u: &Unit, square: ImageSpec, cfg: &RenderConfig) -> Result<()> {
    let steps = if s.quick { 4 } else { 16 };
    println!(
        "\nwhat a batch costs ({u}, {}-pixel images at {} px, {steps} steps each):",
        square.width,
        cfg.min_input.unwrap_or(0)
    );
    println!("  {:>5} {:>9} {:>10} {:>20}", "batch", "steps/s", "images/s", "ms per image-step");
    let mut points = Vec::new();
    for batch in [1usize, 4, 6, 16] {
        let param = ImageParam::new(&ImageSpec { batch, ..square }, &mut s.rng, &s.device)?;
        let quick = RenderConfig { steps, progress: false, ..cfg.clone() };
        let out = render(m, &objective::channel(&u.layer, u.unit, None), &param, &quick, &mut s.rng)?;
        let rate = out.steps_per_second();
        let per_image = 1000.0 / (rate * batch as f64);
        println!("  {batch:>5} {rate:>9.2} {:>10.1} {per_image:>20.1}", rate * batch as f64);
        points.push((batch, per_image));
    }
    let (first, last) = (points[0].1, points[points.len() - 1].1);
    println!("  a batch of 16 costs {:.2} of a single image's time per image", last / first);
    Ok(())
}
