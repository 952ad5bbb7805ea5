//! Chapter 3: activation maximisation. Naive gradient ascent on pixels, why it makes noise, and
//! the recipe that makes features visible (a decorrelated Fourier parametrisation and random
//! transformations); why a saturating activation needs a pre-activation objective; units from
//! early to late layers, ten units of one layer, curve- and colour-like units; channel, neuron
//! and sums of objectives; classes; and a circuit from the last convolution to a class.
use anyhow::Result;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{in_rows, GridSpec, Panel};
use vision_interp::image::RgbImage;
use vision_interp::imageio::to_tensor;
use vision_interp::models::{parse_unit, Model, Taps, Unit};
use vision_interp::optvis::transform::{self, Transform};
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig, Space};
use vision_interp::Device;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Activation maximisation: what makes a unit fire")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Units of the parametrisation study and the channel/neuron comparison, `layer:unit`,
    /// repeated or comma-separated [default: the model's showcase unit: stage5:12 for Lite0,
    /// mixed4a:476 for InceptionV1]
    #[arg(long, value_delimiter = ',')]
    unit: Vec<String>,
    /// Optimisation steps per render [default: 128; 24 with --quick; Lucent uses 512]
    #[arg(long)]
    steps: Option<usize>,
    /// Leave out these kinds of Lucent's standard transformations (pad, jitter, scale,
    /// rotate), repeated or comma-separated
    #[arg(long, value_delimiter = ',', value_parser = ["pad", "jitter", "scale", "rotate"])]
    without: Vec<String>,
}

/// Renders `objective` (one image per batch entry) and returns the final images as panels.
fn visualise(
    s: &mut Session,
    m: &dyn Model,
    obj: &Objective,
    spec: ImageSpec,
    cfg: &RenderConfig,
    labels: &[String],
) -> Result<Vec<Panel>> {
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?;
    let out = render(m, obj, &param, cfg, &mut s.rng)?;
    let (_, images) = out.images.last().expect("the last step is kept");
    let what = if labels.len() == 1 { format!("{}: {}", labels[0], obj.name) } else { obj.name.clone() };
    println!("{what:<60} loss {:>9.3} → {:>9.3}", out.losses[0], out.losses.last().unwrap());
    labels.iter().enumerate().map(|(i, l)| Panel::image(&images.get(i)?, l.clone())).collect()
}

/// Renders one channel objective per unit, as one batch.
fn channels(
    s: &mut Session,
    m: &dyn Model,
    units: &[(String, usize)],
    size: usize,
    cfg: &RenderConfig,
) -> Result<Vec<Panel>> {
    let objs: Vec<Objective> =
        units.iter().enumerate().map(|(b, (l, u))| objective::channel(l, *u, Some(b))).collect();
    let labels: Vec<String> = units.iter().map(|(l, u)| format!("{l}:{u}")).collect();
    let spec = ImageSpec { batch: units.len(), ..ImageSpec::square(size) };
    visualise(s, m, &Objective::sum(objs)?, spec, cfg, &labels)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = m.card().roles;
    let steps = args.steps.unwrap_or(if s.quick { 24 } else { 128 });
    let (size, input) = if s.quick { (64, 96) } else { (128, 224) };
    let transforms: Vec<Transform> =
        transform::standard().into_iter().filter(|t| !args.without.iter().any(|w| w == t.kind())).collect();
    let recipe = RenderConfig { steps, min_input: Some(input), transforms, ..Default::default() };
    let specs = if args.unit.is_empty() { vec![roles.showcase_unit.to_owned()] } else { args.unit.clone() };
    let units: Vec<Unit> = specs.iter().map(|u| parse_unit(m, u)).collect::<Result<_>>()?;
    let caption = |what: &str| format!("{what}, {}, {steps} steps", m.name());
    let slug = |u: &Unit| u.to_string().replace(':', "-");

    for unit in &units {
        // ANCHOR: ablation
        let target = objective::channel(&unit.layer, unit.unit, None);
        let pixel = ImageSpec { space: Space::Pixel, decorrelate: false, ..ImageSpec::square(size) };
        let bare = RenderConfig { transforms: vec![], ..recipe.clone() };
        let penalised = target.clone() + 0.05 * objective::l2(0.5) + 0.002 * objective::total_variation();
        // A CPPN learns ten times more slowly than an image (Lucent's notebooks use 0.005).
        let cppn = ImageSpec { space: Space::Cppn { hidden: 24, layers: 8 }, ..ImageSpec::square(size) };
        let slow = RenderConfig { lr: 0.005, ..recipe.clone() };
        let runs = [
            ("pixels", &target, pixel, &bare),
            ("pixels + L2 + TV", &penalised, pixel, &bare),
            ("Fourier + colour", &target, ImageSpec::square(size), &bare),
            ("+ transforms", &target, ImageSpec::square(size), &recipe),
            ("CPPN + transforms", &target, cppn, &slow),
        ];
        let mut row = Vec::new();
        for (label, obj, spec, cfg) in runs {
            row.extend(visualise(&mut s, m, obj, spec, cfg, &[label.to_string()])?);
        }
        // ANCHOR_END: ablation
        let spec = GridSpec::new(150).title(&caption(&format!("Maximising channel {unit}"))).photo();
        s.save_grid(&[row], &spec, (m.name(), &slug(unit), "parametrisations"))?;

        // ANCHOR: neuron
        let (l, u) = (&unit.layer, unit.unit);
        let both = objective::channel(l, u, Some(0)) + objective::neuron(l, u, Some(1));
        let spec = ImageSpec { batch: 2, ..ImageSpec::square(size) };
        let labels = ["channel (everywhere)".to_string(), "neuron (centre only)".to_string()];
        let row = visualise(&mut s, m, &both, spec, &recipe, &labels)?;
        // ANCHOR_END: neuron
        let spec = GridSpec::new(220).title(&caption(&format!("{unit}: channel and neuron"))).photo();
        s.save_grid(&[row], &spec, (m.name(), &slug(unit), "channel-neuron"))?;
    }
    let unit = &units[0];

    // ANCHOR: layers
    // Channel 7 of every layer, early to late. Where a layer ends in a saturating activation
    // its values before the activation are maximised instead (see "Saturation"); those layers
    // are also rendered after the activation, in the same batch, for comparison.
    let seven = |l: &str| -> Result<(String, usize)> { Ok((l.to_owned(), 7 % m.layer(l)?.channels)) };
    let mut depth: Vec<(String, usize)> =
        roles.depth.iter().map(|l| seven(m.pre_activation(l).unwrap_or(l))).collect::<Result<_>>()?;
    let saturating: Vec<&str> =
        roles.depth.iter().copied().filter(|l| m.pre_activation(l).is_some()).collect();
    for l in &saturating {
        depth.push(seven(l)?);
    }
    let mut panels = channels(&mut s, m, &depth, size, &recipe)?;
    // ANCHOR_END: layers
    let after = panels.split_off(roles.depth.len());
    let title = caption("Channel 7 of each layer, early to late");
    s.save_grid(
        &in_rows(panels.clone(), 5),
        &GridSpec::new(150).title(&title).photo(),
        (m.name(), "layers", "channels"),
    )?;
    if !saturating.is_empty() {
        let (mut rows, mut titles) = (Vec::new(), Vec::new());
        for (l, post) in saturating.iter().zip(after) {
            let pre = m.pre_activation(l).expect("saturating");
            let before =
                panels.iter().find(|p| p.label.starts_with(&format!("{pre}:"))).expect("rendered above");
            // What each final image does to the unit, after the ReLU6 (capped at 6) and before.
            let unit = 7 % m.layer(l)?.channels;
            let mut row = Vec::new();
            for (what, panel) in [("after", &post), ("before", before)] {
                let (a, b) = mean_activation(m, &panel.image, (l, pre), unit, input, &s.device)?;
                println!("{l}:{unit} maximised {what} its ReLU6: mean {a:.2} after it, {b:.2} before");
                row.push(Panel::new(panel.image.clone(), format!("{a:.2} after, {b:.2} before")));
            }
            rows.push(row);
            titles.push(format!("{l}:{unit}"));
        }
        let titles: Vec<&str> = titles.iter().map(String::as_str).collect();
        let spec = GridSpec::new(220)
            .title(&format!("Saturation, {steps} steps"))
            .columns(&["objective after ReLU6", "objective before it"])
            .rows(&titles)
            .photo();
        s.save_grid(&rows, &spec, (m.name(), "saturation", "pre-activation"))?;
    }

    // ANCHOR: ten
    let n = m.layer(&unit.layer)?.channels.min(10);
    let ten: Vec<(String, usize)> = (0..n).map(|u| (unit.layer.clone(), u)).collect();
    let panels = channels(&mut s, m, &ten, size, &recipe)?;
    // ANCHOR_END: ten
    let title = caption(&format!("Channels 0 to {} of {}", n - 1, unit.layer));
    s.save_grid(
        &in_rows(panels, 5),
        &GridSpec::new(150).title(&title).photo(),
        (m.name(), &unit.layer, "ten-channels"),
    )?;

    if !roles.lookalikes.is_empty() {
        let units: Vec<(String, usize)> = roles
            .lookalikes
            .iter()
            .map(|p| parse_unit(m, p).map(|u| (u.layer, u.unit)))
            .collect::<Result<_>>()?;
        let panels = channels(&mut s, m, &units, size, &recipe)?;
        let title = caption("Units whose images look like curves, and like colour");
        s.save_grid(
            &in_rows(panels, 5),
            &GridSpec::new(150).title(&title).photo(),
            (m.name(), "lookalikes", "channels"),
        )?;
    }

    // ANCHOR: sum
    let other = (unit.unit + 1) % m.layer(&unit.layer)?.channels;
    let a = |i| objective::channel(&unit.layer, unit.unit, Some(i));
    let b = |i| objective::channel(&unit.layer, other, Some(i));
    let sum = a(0) + b(1) + a(2) + b(2); // images 0 and 1 one channel each, image 2 the sum
    let labels = [format!("{unit}"), format!("{}:{other}", unit.layer), "the sum of both".to_string()];
    let spec = ImageSpec { batch: 3, ..ImageSpec::square(size) };
    let row = visualise(&mut s, m, &sum, spec, &recipe, &labels)?;
    // ANCHOR_END: sum
    let spec = GridSpec::new(200).title(&caption("Two channels and their sum")).photo();
    s.save_grid(&[row], &spec, (m.name(), &slug(unit), "sum"))?;

    // ANCHOR: classes
    let logits = |names: &[&str]| -> Result<Vec<Objective>> {
        names.iter().enumerate().map(|(b, c)| objective::class_logit(m, c, Some(b))).collect()
    };
    // A model without these ImageNet classes shows its first three.
    let classes = logits(&["flamingo", "strawberry", "volcano"]).or_else(|_| logits(&["0", "1", "2"]))?;
    let labels: Vec<String> = classes.iter().map(|o| o.name.replace("class_logit ", "logit ")).collect();
    let spec = ImageSpec { batch: classes.len(), ..ImageSpec::square(size) };
    let row = visualise(&mut s, m, &Objective::sum(classes)?, spec, &recipe, &labels)?;
    // ANCHOR_END: classes
    s.save_grid(
        &[row],
        &GridSpec::new(200).title(&caption("Maximising class logits")).photo(),
        (m.name(), "classes", "logits"),
    )?;

    circuit(&mut s, m, &recipe, size, steps)?;
    s.finish()
}

/// The means of channel `unit` of a layer after and before its activation, `(post, pre)`, for
/// a final image enlarged to `input` pixels as in the render (without the transformations).
fn mean_activation(
    m: &dyn Model,
    img: &RgbImage,
    (post, pre): (&str, &str),
    unit: usize,
    input: usize,
    dev: &Device,
) -> Result<(f32, f32)> {
    let x = to_tensor(img, dev)?.unsqueeze(0)?;
    let x = vision_interp::ops::resize_bilinear_aligned(&x, input, input)?;
    let acts = m.forward_taps(&m.preprocess(&x)?, &Taps::layers(&[post, pre]))?;
    let mean =
        |l: &str| -> Result<f32> { Ok(acts.get(l)?.narrow(1, unit, 1)?.mean_all()?.to_scalar::<f32>()?) };
    Ok((mean(post)?, mean(pre)?))
}

/// A unit and the units of the layer before it that excite (and inhibit) it most, through the
/// actual weights between them (the model's circuit role: `head` → logit 282 "tiger cat" for
/// Lite0).
fn circuit(s: &mut Session, m: &dyn Model, recipe: &RenderConfig, size: usize, steps: usize) -> Result<()> {
    let Some((from, to, unit)) = m.card().roles.circuit else {
        eprintln!("skipped the circuit figure: {} has no direct connection to read", m.name());
        return Ok(());
    };
    let w = m.connection(from, to)?;
    // ANCHOR: circuit
    let weights: Vec<f32> = w.get(unit)?.to_vec1()?; // how each `from` unit feeds `to:unit`
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let picks: Vec<usize> = order[..3].iter().chain(order[order.len() - 2..].iter()).copied().collect();
    // `from` units are rendered before their activation, where the model has one there.
    let tap = m.pre_activation(from).unwrap_or(from);
    let mut objs = vec![objective::channel(to, unit, Some(0))];
    let name = if to == "logits" {
        format!("'{}', logit {unit}", m.classes()[unit])
    } else {
        format!("{to}:{unit}")
    };
    let mut labels = vec![name];
    for (b, &j) in picks.iter().enumerate() {
        objs.push(objective::channel(tap, j, Some(b + 1)));
        labels.push(format!("{from}:{j}, w = {:+.2}", weights[j]));
    }
    let spec = ImageSpec { batch: objs.len(), ..ImageSpec::square(size) };
    let row = visualise(s, m, &Objective::sum(objs)?, spec, recipe, &labels)?;
    // ANCHOR_END: circuit
    let title = format!("A circuit: {to}:{unit} and its strongest inputs from {from}, {steps} steps");
    s.save_grid(
        &in_rows(row, 3),
        &GridSpec::new(200).title(&title).photo(),
        (m.name(), &format!("{to}-{unit}"), "circuit"),
    )
}
