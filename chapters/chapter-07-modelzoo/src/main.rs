//! Chapter 7: Lucent's model-zoo notebook, rebuilt and taken further. Every network this machine
//! can load goes through one interface: its layer table, its showcase channel, a class logit and
//! a CPPN on the class. Then the class objective on the logits against the softmax, what the
//! same class asks of each architecture's last convolutional layer, and redirected ReLUs on
//! units that plain ReLUs cannot start.
use anyhow::Result;
use chapter_01_cnn_basics::scratch::ScratchArgs;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{
    hstack, line_chart_with, ChartSpec, GridSpec, Panel, Series, SeriesLabelPosition,
};
use vision_interp::models::{self, layer_table, parse_unit, zoo::model_value_parser, Model, Taps};
use vision_interp::optvis::transform;
use vision_interp::optvis::{
    objective, render_new, score, ImageParam, ImageSpec, Objective, RenderConfig, Space,
};
use vision_interp::Tensor;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's model zoo: one interface, every network, and what differs between them")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    scratch: ScratchArgs,
    /// More models of the zoo for the tour, after --model (with the weights the default search
    /// finds; a model without weights is left out with the reason); chapter 1's SimpleCNN
    /// always comes last
    #[arg(long, value_delimiter = ',', default_value = "efficientnet-lite1,efficientnet-lite2",
          value_parser = model_value_parser())]
    zoo: Vec<String>,
    /// Class of the logit and CPPN renders (the notebook's: strawberry)
    #[arg(long, default_value = "strawberry")]
    class: String,
    /// Optimisation steps per render [default: 256; 32 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

/// The class of Fashion-MNIST that stands in for `--class` on chapter 1's SimpleCNN.
const SMALL_CLASS: &str = "sneaker";

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let steps = s.budget(args.steps, 32, 256);
    let mut tour = vec![args.model.load(&s.device)?];
    tour[0].class_index(&args.class)?; // a name it lacks is refused with the closest ones
    for name in &args.zoo {
        if models::entry(name)?.name == tour[0].name() {
            continue;
        }
        match models::load(name, None, &s.device) {
            Ok(m) => tour.push(m),
            Err(e) => println!("{name} is left out of the tour: {e:#}\n"),
        }
    }
    let cnn = args.scratch.run(s.quick).trained(args.run.seed, &s.device)?; // chapter 1's
    tour.push(Box::new(cnn));

    // The tour: for every model its layers, its showcase channel, a logit and a CPPN.
    let mut rows = Vec::new();
    for m in &tour {
        let m = m.as_ref();
        println!("{}", layer_table(m));
        if block_count(m) > 0 {
            s.record(&format!("blocks_{}", key(m)), block_count(m));
        }
        rows.push(visit(&mut s, m, &class_of(m, &args.class)?, steps)?);
    }
    let names: Vec<&str> = tour.iter().map(|m| m.name()).collect();
    let spec = GridSpec::new(150)
        .title(&format!("One interface, every model: channel, logit and CPPN (value reached), {steps} steps"))
        .columns(&["showcase channel", "class logit", "class logit, CPPN"])
        .rows(&names)
        .photo();
    s.save_grid(&rows, &spec, ("zoo", "tour", "grid"))?;

    let m = tour[0].as_ref();
    labels(&mut s, m, &args.class, steps)?;
    shared_class(&mut s, &tour, &args.class, steps)?;
    redirected(&mut s, m, steps)?;
    s.finish()
}

/// `efficientnet-lite1` → `lite1`: a model's name as part of a key of `numbers.json`.
fn key(m: &dyn Model) -> String {
    m.name().trim_start_matches("efficientnet-").replace('-', "_")
}

/// The inverted residual blocks of a model, from its layer table (`3 block(s), …`); 0 for a
/// model without them.
fn block_count(m: &dyn Model) -> usize {
    m.layers()
        .iter()
        .filter_map(|l| l.description.split_once(" block(s)").and_then(|(n, _)| n.parse::<usize>().ok()))
        .sum()
}

/// `--class` where the model has it, else SimpleCNN's stand-in.
fn class_of(m: &dyn Model, class: &str) -> Result<String> {
    Ok(if m.class_index(class).is_ok() { class.to_owned() } else { SMALL_CLASS.to_owned() })
}

/// The image size and recipe for one model: 128 px upsampled to the model's input size (64 px
/// to 96 with --quick), or, for a model trained on small images, its own size with the
/// transformations scaled to it (chapter 6).
fn recipe(m: &dyn Model, quick: bool, steps: usize) -> (usize, RenderConfig) {
    let px = m.input_size();
    if px < 64 {
        let transforms = transform::scaled(&transform::standard(), 128, px);
        return (px, RenderConfig { steps, transforms, fixed_input: Some(px), ..Default::default() });
    }
    let (size, input) = if quick { (64, 96) } else { (128, px) };
    (size, RenderConfig { steps, min_input: Some(input), ..Default::default() })
}

/// Renders `obj` from a fresh parametrisation `spec`; prints the loss and the speed.
fn run(
    s: &mut Session,
    m: &dyn Model,
    obj: &Objective,
    spec: ImageSpec,
    cfg: &RenderConfig,
) -> Result<Tensor> {
    let out = render_new(m, obj, &spec, cfg, &mut s.rng, &s.device)?;
    println!("{:<22} {:<44} {}", m.name(), obj.name, out.summary());
    Ok(out.last().clone())
}

/// One row of the tour: the showcase channel and the class logit (one batch), then a CPPN on
/// the class, each labelled with the value it reached on the clean image.
fn visit(s: &mut Session, m: &dyn Model, class: &str, steps: usize) -> Result<Vec<Panel>> {
    let (size, cfg) = recipe(m, s.quick, steps);
    let show = parse_unit(m, m.card().roles.showcase_unit)?;
    // ANCHOR: tour
    let channel = objective::channel(&show.layer, show.unit, Some(0));
    let logit = objective::class_logit(m, class, Some(1))?;
    let images = run(s, m, &(channel + logit), ImageSpec { batch: 2, ..ImageSpec::square(size) }, &cfg)?;
    // A CPPN (a small network from pixel coordinates to colours) on the same class, at a
    // learning rate ten times lower, as the notebook has it.
    let cppn = ImageSpec { space: Space::Cppn { hidden: 24, layers: 8 }, ..ImageSpec::square(size) };
    let logit = objective::class_logit(m, class, None)?;
    let drawn = run(s, m, &logit, cppn, &RenderConfig { lr: 0.005, ..cfg.clone() })?;
    // ANCHOR_END: tour
    let clean = RenderConfig { transforms: vec![], ..cfg };
    let value = |obj: &Objective, img: &Tensor| score(m, obj, &img.unsqueeze(0)?, &clean);
    let (channel, logit) =
        (objective::channel(&show.layer, show.unit, None), objective::class_logit(m, class, None)?);
    let short = class.split(',').next().unwrap_or(class);
    let values =
        [value(&channel, &images.get(0)?)?, value(&logit, &images.get(1)?)?, value(&logit, &drawn.get(0)?)?];
    for (what, v) in ["channel", "logit", "cppn"].iter().zip(values) {
        s.record(&format!("tour_{}_{what}", key(m)), v);
    }
    Ok(vec![
        Panel::image(&images.get(0)?, format!("{show}: {:.1}", values[0]))?,
        Panel::image(&images.get(1)?, format!("{short}: {:.1}", values[1]))?,
        Panel::image(&drawn.get(0)?, format!("{short}: {:.1}", values[2]))?,
    ])
}

/// The class objective on the logit and on the softmax probability, one image each, with both
/// measures followed along the way.
fn labels(s: &mut Session, m: &dyn Model, class: &str, steps: usize) -> Result<()> {
    let (size, cfg) = recipe(m, s.quick, steps);
    // Measured at steps 1, 2, 4, 8, … and every sixteenth of the run.
    let mut thresholds: Vec<usize> = (0..).map(|k| 1 << k).take_while(|&t| t < steps).collect();
    thresholds.extend((1..=16).map(|k| k * steps / 16));
    thresholds.sort_unstable();
    thresholds.dedup();
    let cfg = RenderConfig { thresholds, ..cfg };
    // ANCHOR: labels
    let on_logit = objective::class_logit(m, class, Some(0))?;
    let on_softmax = objective::class_probability(m, class, Some(1))?;
    // ANCHOR_END: labels
    let spec = ImageSpec { batch: 2, ..ImageSpec::square(size) };
    let out = render_new(m, &(on_logit + on_softmax), &spec, &cfg, &mut s.rng, &s.device)?;
    let clean = RenderConfig { transforms: vec![], ..cfg };
    let (logit, c) = (objective::class_logit(m, class, None)?, m.class_index(class)?);
    let mut curves: [Vec<Series>; 2] = Default::default();
    let mut reached = Vec::new();
    for (i, what) in ["on the logit", "on the probability"].into_iter().enumerate() {
        let (mut l, mut p) = (Vec::new(), Vec::new());
        for (step, images) in &out.images {
            let img = images.narrow(0, i, 1)?;
            l.push((*step as f32, score(m, &logit, &img, &clean)?));
            p.push((*step as f32, log_probability(m, &img, c, &clean)?));
        }
        let (last_l, last_p) = (l.last().expect("steps").1, p.last().expect("steps").1.exp());
        println!("{what:<24} logit {last_l:>7.2}   probability {last_p:.4}");
        let on = ["on_logit", "on_prob"][i];
        s.record(&format!("{on}_logit"), last_l);
        s.record(&format!("{on}_prob"), last_p);
        s.record(&format!("{on}_first_log_prob"), p[0].1);
        let at16 = p.iter().find(|(step, _)| *step == 16.0).map_or(f32::NAN, |(_, lp)| lp.exp());
        s.record(&format!("{on}_prob_16"), at16);
        // The first measured step from which the probability reads 1.000 to the end.
        let sure = p.iter().rposition(|(_, lp)| lp.exp() < 0.9995).map_or(0, |k| k + 1);
        if let Some((step, _)) = p.get(sure) {
            s.record(&format!("{on}_sure_from"), *step as usize);
        }
        reached.push(format!("{what}: z = {last_l:.1}, p = {last_p:.3}"));
        curves[0].push(Series { label: what.into(), points: l });
        curves[1].push(Series { label: what.into(), points: p });
    }
    let short = m.classes()[m.class_index(class)?].split(',').next().unwrap_or(class).to_owned();
    let chart = |series: &[Series], y: &str, legend| {
        let spec = ChartSpec::new(&format!("{short} on {}", m.name()), "step", y, (440, 300));
        line_chart_with(series, &spec.legend(legend))
    };
    let (logits, logp) = (&curves[0], &curves[1]);
    let charts = hstack(
        &chart(logits, "logit", SeriesLabelPosition::UpperLeft)?,
        &chart(logp, "log probability", SeriesLabelPosition::LowerRight)?,
        8,
    );
    s.save(&charts, &s.figure(m.name(), "labels", "curves"))?;
    let last = out.last();
    let row = vec![
        Panel::image(&last.get(0)?, reached[0].clone())?,
        Panel::image(&last.get(1)?, reached[1].clone())?,
    ];
    let spec = GridSpec::new(200).title(&format!("{short} on {}, {steps} steps", m.name())).photo();
    s.save_grid(&[row], &spec, (m.name(), "labels", "renders"))
}

/// `log p_c = z_c − log Σ_j exp z_j` of the images as the model sees them under `cfg`, from
/// the logits (a probability computed first would round to 0, and its log to −∞).
fn log_probability(m: &dyn Model, images: &Tensor, c: usize, cfg: &RenderConfig) -> Result<f32> {
    let x = cfg.model_input(&m.preprocess(images)?)?;
    let z = m.forward_taps(&x, &Taps::layers(&["logits"]))?.get("logits")?.flatten_all()?.to_vec1::<f32>()?;
    let peak = z.iter().copied().fold(f32::MIN, f32::max);
    let sum: f32 = z.iter().map(|v| (v - peak).exp()).sum();
    Ok(z[c] - peak - sum.ln())
}

/// For each model, the unit of its last convolutional layer that feeds the class logit with
/// the largest weight, rendered: what the same class asks of different architectures.
fn shared_class(s: &mut Session, tour: &[Box<dyn Model>], class: &str, steps: usize) -> Result<()> {
    let mut row = Vec::new();
    for m in tour {
        let m = m.as_ref();
        let last = m.card().roles.last_conv;
        let Ok(weights) = m.connection(last, "logits") else {
            println!(
                "{}: no direct connection from {last} to the logits; left out of the comparison",
                m.name()
            );
            continue;
        };
        let Ok(c) = m.class_index(class) else { continue };
        // ANCHOR: shared
        // Row c of the classifier: how much the average of each unit of the last
        // convolutional layer adds to the logit of class c.
        let w = weights.get(c)?.to_vec1::<f32>()?;
        let unit = (0..w.len()).max_by(|&a, &b| w[a].total_cmp(&w[b])).expect("units");
        // Before the ReLU, where the layer has such a layer: the unit may be off everywhere on
        // the starting image, and after the ReLU its gradient would be zero.
        let obj = objective::channel(m.pre_activation(last).unwrap_or(last), unit, None);
        // ANCHOR_END: shared
        let (size, cfg) = recipe(m, s.quick, steps);
        let img = run(s, m, &obj, ImageSpec::square(size), &cfg)?;
        println!("{:<22} {last}:{unit} weighs {:.3} in the logit of {class}", m.name(), w[unit]);
        s.record(&format!("shared_{}_unit", key(m)), format!("{last}:{unit}"));
        s.record(&format!("shared_{}_weight", key(m)), w[unit]);
        row.push(Panel::image(&img.get(0)?, format!("{} {last}:{unit}, w {:.2}", m.name(), w[unit]))?);
    }
    let spec = GridSpec::new(170)
        .title(&format!("The last layer's unit that weighs most in the {class} logit, {steps} steps"))
        .photo();
    s.save_grid(&[row], &spec, ("zoo", "shared-class", "units"))
}

/// Units of the last convolutional layer that are off everywhere on the starting image,
/// rendered with plain ReLUs and with redirected ones from the same start; the figure shows
/// those that plain ReLUs never started.
fn redirected(s: &mut Session, m: &dyn Model, steps: usize) -> Result<()> {
    // At most 128 steps: the point is whether a render starts at all, and the redirected
    // ReLU6 runs on Candle's portable operations, slower than the fused kernel.
    let steps = steps.min(128);
    let (size, cfg) = recipe(m, s.quick, steps);
    let layer = m.card().roles.last_conv;
    let spec = ImageSpec { batch: 8, ..ImageSpec::square(size) };
    let start_rng = s.rng.clone();
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?;
    // ANCHOR: dead
    // The peak of every unit over the positions of the first starting image: a unit whose
    // peak is 0 after its ReLU gets no gradient at all from its own objective.
    let x = cfg.model_input(&m.preprocess(&param.image()?.narrow(0, 0, 1)?)?)?;
    let acts = m.forward_taps(&x, &Taps::layers(&[layer]))?;
    let peak = acts.get(layer)?.squeeze(0)?.flatten_from(1)?.max(1)?.to_vec1::<f32>()?;
    let dead: Vec<usize> = (0..peak.len()).filter(|&u| peak[u] <= 0.0).take(spec.batch).collect();
    // ANCHOR_END: dead
    let count = peak.iter().filter(|&&p| p <= 0.0).count();
    println!("{}: {count} of {} units of {layer} are off everywhere on the start", m.name(), peak.len());
    s.record("dead_units", count);
    s.record("layer_units", peak.len());
    let Ok(default) = m.set_redirected_relu(false) else {
        println!("{}: no redirected ReLUs; no figure of them", m.name());
        return Ok(());
    };
    if dead.len() < spec.batch {
        println!("{}: fewer than {} dead units to try; no figure of redirected ReLUs", m.name(), spec.batch);
        m.set_redirected_relu(default)?;
        return Ok(());
    }
    let objs: Vec<Objective> =
        dead.iter().enumerate().map(|(i, &u)| objective::channel(layer, u, Some(i))).collect();
    let obj = Objective::sum(objs)?;
    let clean = RenderConfig { transforms: vec![], ..cfg.clone() };
    let mut runs = Vec::new();
    for on in [false, true] {
        m.set_redirected_relu(on)?;
        // The same starting images both times, and the same transformations.
        let out = render_new(m, &obj, &spec, &cfg, &mut start_rng.clone(), &s.device)?;
        let mut values = Vec::new();
        for (i, &u) in dead.iter().enumerate() {
            let v = score(m, &objective::channel(layer, u, None), &out.last().narrow(0, i, 1)?, &clean)?;
            println!("{:<10} {layer}:{u:<5} value {v:.3}", if on { "redirected" } else { "plain" });
            values.push(v);
        }
        runs.push((out.last().clone(), values));
    }
    m.set_redirected_relu(default)?;
    // Some dead units start anyway (a transformation moves a positive value into view); the
    // figure keeps the ones that plain ReLUs left at zero.
    let stuck: Vec<usize> = (0..dead.len()).filter(|&i| runs[0].1[i] == 0.0).take(3).collect();
    if stuck.is_empty() {
        println!("every dead unit started with plain ReLUs; no figure of redirected ReLUs");
        return Ok(());
    }
    let left = (0..dead.len()).filter(|&i| runs[0].1[i] == 0.0).count();
    println!("plain ReLUs left {left} of {} dead units at zero", dead.len());
    let started: Vec<f32> = runs[0].1.iter().copied().filter(|&v| v > 0.0).collect();
    s.record("dead_tried", dead.len());
    s.record("dead_left", left);
    s.record("dead_started", started.len());
    s.record("started_min", started.iter().copied().fold(f32::INFINITY, f32::min));
    s.record("started_max", started.iter().copied().fold(0.0, f32::max));
    let names: Vec<String> =
        (0..dead.len()).filter(|&i| runs[0].1[i] == 0.0).map(|i| format!("`{layer}:{}`", dead[i])).collect();
    s.record("stuck_units", names.join(", "));
    let redirected = (0..dead.len()).filter(|&i| runs[0].1[i] == 0.0).map(|i| runs[1].1[i]);
    s.record("stuck_redirected_min", redirected.fold(f32::INFINITY, f32::min));
    let rows = runs
        .iter()
        .map(|(images, values)| {
            stuck
                .iter()
                .map(|&i| Panel::image(&images.get(i)?, format!("{layer}:{}: {:.2}", dead[i], values[i])))
                .collect()
        })
        .collect::<Result<Vec<Vec<Panel>>>>()?;
    let spec = GridSpec::new(170)
        .title(&format!("Dead units of {} {layer}, {steps} steps", m.name()))
        .rows(&["plain ReLU", "redirected"])
        .photo();
    s.save_grid(&rows, &spec, (m.name(), "redirected", "dead-units"))
}
