//! Chapter 3: activation maximisation. Naive gradient ascent on pixels, why it makes noise, and
//! the recipe that makes features visible (a decorrelated Fourier parametrisation and random
//! transformations); units from early to late layers; channel and neuron objectives; and a
//! circuit: a unit with the units of the previous layer that feed it most.
use anyhow::Result;
use clap::Parser;
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{GridSpec, Panel};
use vision_interp::models::{parse_unit, Model};
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, Objective, RenderConfig, Space};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Activation maximisation: what makes a unit fire")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The unit of the parametrisation comparison, `layer:unit` [default: the model's showcase
    /// unit: stage5:12 for Lite0, mixed4a:476 for InceptionV1]
    #[arg(long)]
    unit: Option<String>,
    /// Optimisation steps per render [default: 128; 24 with --quick; Lucent uses 512]
    #[arg(long)]
    steps: Option<usize>,
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

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = m.card().roles;
    let steps = args.steps.unwrap_or(if s.quick { 24 } else { 128 });
    let (size, input) = if s.quick { (64, 128) } else { (128, 224) };
    let recipe = RenderConfig { steps, min_input: Some(input), ..Default::default() };
    let spec_unit = args.unit.clone().unwrap_or_else(|| roles.showcase_unit.to_owned());
    let unit = parse_unit(m, &spec_unit)?;
    let caption = |what: &str| format!("{what}, {}, {steps} steps", m.name());

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
    let spec = GridSpec::new(200).title(&caption(&format!("Maximising channel {spec_unit}"))).photo();
    s.save_grid(&[row], &spec, (m.name(), &spec_unit.replace(':', "-"), "parametrisations"))?;

    // ANCHOR: layers
    let units: Vec<(String, usize)> =
        roles.depth.iter().map(|l| Ok((l.to_string(), 7 % m.layer(l)?.channels))).collect::<Result<_>>()?;
    let batch: Vec<Objective> =
        units.iter().enumerate().map(|(b, (l, u))| objective::channel(l, *u, Some(b))).collect();
    let labels: Vec<String> = units.iter().map(|(l, u)| format!("{l}:{u}")).collect();
    let spec = ImageSpec { batch: units.len(), ..ImageSpec::square(size) };
    let row = visualise(&mut s, m, &Objective::sum(batch)?, spec, &recipe, &labels)?;
    // ANCHOR_END: layers
    s.save_grid(
        &[row],
        &GridSpec::new(150).title(&caption("Channel 7 of each layer, early to late")).photo(),
        (m.name(), "layers", "channels"),
    )?;

    // ANCHOR: neuron
    let both = objective::channel(&unit.layer, unit.unit, Some(0))
        + objective::neuron(&unit.layer, unit.unit, Some(1));
    let spec = ImageSpec { batch: 2, ..ImageSpec::square(size) };
    let row = visualise(
        &mut s,
        m,
        &both,
        spec,
        &recipe,
        &["channel (everywhere)".into(), "neuron (centre only)".into()],
    )?;
    // ANCHOR_END: neuron
    s.save_grid(
        &[row],
        &GridSpec::new(200).title(&caption(&format!("{spec_unit}: channel and neuron"))).photo(),
        (m.name(), &spec_unit.replace(':', "-"), "channel-neuron"),
    )?;

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
    s.finish();
    Ok(())
}

/// A unit and the units of the layer before that excite (and inhibit) it most, through the
/// actual weights of the 1×1 convolution between them (the model's circuit role: `stage6` →
/// `head:7` for Lite0).
fn circuit(s: &mut Session, m: &dyn Model, recipe: &RenderConfig, size: usize, steps: usize) -> Result<()> {
    let Some((from, to, unit)) = m.card().roles.circuit else {
        eprintln!("skipped the circuit figure: {} has no direct 1×1 connection to read", m.name());
        return Ok(());
    };
    let w = m.connection(from, to)?;
    // ANCHOR: circuit
    let weights: Vec<f32> = w.get(unit)?.to_vec1()?; // how each `from` unit feeds `to:unit`
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let picks: Vec<usize> = order[..4].iter().chain(order[order.len() - 2..].iter()).copied().collect();
    let mut objs = vec![objective::channel(to, unit, Some(0))];
    let mut labels = vec![format!("{to}:{unit}")];
    for (b, &j) in picks.iter().enumerate() {
        objs.push(objective::channel(from, j, Some(b + 1)));
        labels.push(format!("{from}:{j} (w = {:+.2})", weights[j]));
    }
    let spec = ImageSpec { batch: objs.len(), ..ImageSpec::square(size) };
    let row = visualise(s, m, &Objective::sum(objs)?, spec, recipe, &labels)?;
    // ANCHOR_END: circuit
    let title = format!("A circuit: {to}:{unit} and its strongest inputs, {}, {steps} steps", m.name());
    s.save_grid(
        &[row],
        &GridSpec::new(170).title(&title).photo(),
        (m.name(), &format!("{to}-{unit}"), "circuit"),
    )
}
