//! Chapter 9: Lucent's neuron-interaction notebook, rebuilt and taken further (Lucid's
//! `neuron_interaction` and `negative_neuron`). What a channel is against (its negative beside
//! its positive, in one batch); two units alone, summed at several weights and as a direction;
//! and interpolations from one unit to another whose frames line up, through low-resolution
//! tensors shared by the batch or through Lucid's alignment penalty. Then what a batch costs.
use anyhow::{ensure, Result};
use chapter_09_neuron_interaction::INTERACTION;
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
    #[arg(long, value_parser = vision_interp::flag::count, default_value_t = 6)]
    frames: usize,
    /// Weight of the alignment penalty in the book's variant (the third interpolation; Lucid's
    /// recipe, the fourth, keeps its 0.1)
    #[arg(long, value_parser = vision_interp::flag::non_negative, default_value_t = 1.0)]
    alignment: f64,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
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
    let (negative, pairs, interpolations) = match INTERACTION.chosen(m.name()) {
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
    s.finish()
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
    let mut ratios = Vec::new();
    for (i, u) in units.iter().enumerate() {
        let pair = images.narrow(0, 2 * i, 2)?;
        let v = values(m, u, &pair, cfg)?;
        println!("  {u:<12} negative {:>8.2}   positive {:>8.2}", v[0], v[1]);
        s.record(&format!("neg_{}", key(u)), v[0]);
        s.record(&format!("pos_{}", key(u)), v[1]);
        ratios.push(-v[0] / v[1]);
        rows.push(vec![
            Panel::image(&pair.get(0)?, format!("{u}: {:.1}", v[0]))?,
            Panel::image(&pair.get(1)?, format!("{u}: {:.1}", v[1]))?,
        ]);
    }
    // How far below zero each negative went, as a share of its positive.
    let (lo, hi) = ratios.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    s.record("neg_share_min", lo);
    s.record("neg_share_max", hi);
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
        let k = l.replace("direction ", "direction_").replace(" + ", "_");
        s.record(&format!("combined_{k}_a"), va[i]);
        s.record(&format!("combined_{k}_b"), vb[i]);
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

/// A unit as part of a key of `numbers.json`: `stage5:12` → `stage5_12`.
fn key(unit: &Unit) -> String {
    unit.slug().replace('-', "_")
}

/// An interpolation from `a` to `b` four ways from one seed: frames optimised independently,
/// frames that share low-resolution tensors, frames held alike by the alignment penalty on the
/// interpolated layer (the book's variant), and Lucid's recipe, which does both.
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
    // The layer before the interpolated one in the model's walk through depth (stage4 for
    // stage5; mixed3b for InceptionV1's mixed4a, as in Lucid's notebook).
    let depth = m.card().roles.depth;
    let earlier = match depth.iter().position(|l| *l == a.layer) {
        Some(i) if i > 0 => depth[i - 1],
        _ => a.layer.as_str(),
    };
    // ANCHOR: interpolate
    let interpolation = objective::channel_interpolate(&a.layer, a.unit, &b.layer, b.unit);
    // Lucid's shared tensors, added to every frame's own FFT image: for 128 px, one shared
    // image each of 64, 32, 16 and 8 px, and a pair each of 16 and 8 px blended across the batch.
    let shared = |px: usize, batch| LowRes { batch, ..LowRes::shared(size / px) };
    let low = [shared(2, 1), shared(4, 1), shared(8, 1), shared(8, 2), shared(16, 1), shared(16, 2)];
    // The book's variant: a penalty (added to the loss) on how much the interpolated layer
    // differs between frames 1 to 4 apart (decay ratio 5), without shared tensors.
    let aligned = interpolation.clone() + alignment * objective::alignment(&a.layer, 5.0);
    // Lucid's recipe: the shared tensors *and* 0.1 × the penalty on the layer before and on
    // the interpolated layer.
    let penalty = objective::alignment(earlier, 5.0) + objective::alignment(&a.layer, 5.0);
    let lucid = interpolation.clone() + 0.1 * penalty;
    let ways: [(&str, &Objective, &[LowRes]); 4] = [
        ("independent", &interpolation, &[]),
        ("shared low-res", &interpolation, &low),
        ("alignment", &aligned, &[]),
        ("Lucid's recipe", &lucid, &low),
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
        let k =
            format!("interp_{}_{}", key(a), what.split([' ', '\'']).next().unwrap_or(what).to_lowercase());
        for (name, v) in [("pixels", pixels), ("layout", layout), ("layer", layer)] {
            s.record(&format!("{k}_{name}"), v);
        }
        let n = va.len() - 1;
        for (name, v) in [("a_first", va[0]), ("a_last", va[n]), ("b_first", vb[0]), ("b_last", vb[n])] {
            s.record(&format!("{k}_{name}"), v);
        }
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
        let ways = [(0, "independent frames"), (3, "Lucid's recipe")];
        animation(s, m.name(), (a, b), &strips, &ways, &stem)?;
    }
    Ok(())
}

/// The animation of two ways of one interpolation side by side, frame by frame, each frame
/// labelled with its mix of the two units. The panels are enlarged (twice the render's size
/// where the GIF stays under 580 KB, less otherwise: a GIF of photographic frames is large).
fn animation(
    s: &mut Session,
    model: &str,
    (a, b): (&Unit, &Unit),
    strips: &[Vec<Panel>],
    ways: &[(usize, &str)],
    stem: &str,
) -> Result<()> {
    let n = strips[0].len();
    let size = strips[0][0].image.width();
    let columns: Vec<&str> = ways.iter().map(|w| w.1).collect();
    let title = format!("{a} (a) → {b} (b), {model}");
    let frames = |cell: u32| {
        (0..n)
            .map(|i| {
                let w = i as f32 / (n - 1) as f32;
                let label = format!("frame {}: {:.0} % a, {:.0} % b", i + 1, 100.0 * (1.0 - w), 100.0 * w);
                let row: Vec<Panel> = ways
                    .iter()
                    .map(|&(r, _)| Panel::new(strips[r][i].image.clone(), label.clone()))
                    .collect();
                grid(&[row], &GridSpec::new(cell).title(&title).columns(&columns))
            })
            .collect::<Result<Vec<_>>>()
    };
    let trial = s.out.join("animation-trial.gif");
    let mut chosen = frames(size)?;
    for scale in [2.0f32, 1.75, 1.5, 1.25] {
        let f = frames((size as f32 * scale).round() as u32)?;
        vision_interp::imageio::save_gif(&f, 700, &trial)?;
        let bytes = std::fs::metadata(&trial)?.len();
        if bytes <= 580_000 {
            println!("  the animation's panels: {scale} × the renders ({} KB)", bytes / 1000);
            chosen = f;
            break;
        }
    }
    std::fs::remove_file(&trial)?;
    s.save_animation(&chosen, 700, (model, stem, "animation"))
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
        s.record_timing(&format!("ms_per_image_b{batch}"), per_image);
        points.push((batch, per_image));
    }
    let (first, last) = (points[0].1, points[points.len() - 1].1);
    println!("  a batch of 16 costs {:.2} of a single image's time per image", last / first);
    s.record_timing("batch16_cost", last / first);
    Ok(())
}
