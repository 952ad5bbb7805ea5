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
use vision_interp::optvis::{
    objective, render, score, ImageParam, ImageSpec, Objective, RenderConfig, Rendered, Space,
};
use vision_interp::scan::{channel_means, Source};
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
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
    /// Leave out these kinds of Lucent's standard transformations (pad, jitter, scale,
    /// rotate), repeated or comma-separated
    #[arg(long, value_delimiter = ',', value_parser = ["pad", "jitter", "scale", "rotate"])]
    without: Vec<String>,
}

/// Renders `objective` (one image per batch entry) and returns the final images as panels, with
/// the render (its images and its loss at every step).
fn visualise(
    s: &mut Session,
    m: &dyn Model,
    obj: &Objective,
    spec: ImageSpec,
    cfg: &RenderConfig,
    labels: &[String],
) -> Result<(Vec<Panel>, Rendered)> {
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?;
    let out = render(m, obj, &param, cfg, &mut s.rng)?;
    let what = if labels.len() == 1 { format!("{}: {}", labels[0], obj.name) } else { obj.name.clone() };
    println!("{what:<60} loss {:>9.3} → {:>9.3}", out.losses[0], last_loss(&out));
    let panels = labels.iter().enumerate().map(|(i, l)| Panel::image(&out.last().get(i)?, l.clone()));
    Ok((panels.collect::<Result<_>>()?, out))
}

/// The loss at a render's last step.
fn last_loss(out: &Rendered) -> f32 {
    out.losses.last().copied().unwrap_or(f32::NAN)
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
    Ok(visualise(s, m, &Objective::sum(objs)?, spec, cfg, &labels)?.0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = m.card().roles;
    let steps = s.budget(args.steps, 24, 128);
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
        let (mut row, mut renders) = (Vec::new(), Vec::new());
        for (label, obj, spec, cfg) in runs {
            let (panels, out) = visualise(&mut s, m, obj, spec, cfg, &[label.to_string()])?;
            row.extend(panels);
            renders.push(out);
        }
        // The penalised run's loss is the whole objective, penalties included; the channel's
        // activation alone, on its final image:
        let alone = score(m, &target, renders[1].last(), &bare)?;
        // ANCHOR_END: ablation
        println!("pixels + L2 + TV: the channel alone on the final image {alone:.3}");
        if unit == &units[0] {
            // The value each run maximised at its last step (its loss, negated).
            for (key, out) in ["pixels", "penalised", "fourier", "transforms", "cppn"].iter().zip(&renders) {
                s.record(&format!("{key}_final"), -last_loss(out));
            }
            s.record("penalised_activation", alone);
        }
        let spec = GridSpec::new(150).title(&caption(&format!("Maximising channel {unit}"))).photo();
        s.save_grid(&[row], &spec, (m.name(), &slug(unit), "parametrisations"))?;

        // ANCHOR: neuron
        let (l, u) = (&unit.layer, unit.unit);
        let both = objective::channel(l, u, Some(0)) + objective::neuron(l, u, Some(1));
        let spec = ImageSpec { batch: 2, ..ImageSpec::square(size) };
        let labels = ["channel (everywhere)".to_string(), "neuron (centre only)".to_string()];
        let (row, _) = visualise(&mut s, m, &both, spec, &recipe, &labels)?;
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
    s.record("depth_layers", roles.depth.len());
    s.record("depth_images", depth.len());
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
                // e.g. `head_after_obj_post`: `head:7` maximised after its ReLU6, its mean after.
                s.record(&format!("{l}_{what}_obj_post"), a);
                s.record(&format!("{l}_{what}_obj_pre"), b);
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

    let lookalikes = chapter_03_actmax::LOOKALIKES.get(m.name()).copied().unwrap_or_default();
    if !lookalikes.is_empty() {
        let units: Vec<(String, usize)> =
            lookalikes.iter().map(|p| parse_unit(m, p).map(|u| (u.layer, u.unit))).collect::<Result<_>>()?;
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
    let (row, _) = visualise(&mut s, m, &sum, spec, &recipe, &labels)?;
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
    let (row, _) = visualise(&mut s, m, &Objective::sum(classes)?, spec, &recipe, &labels)?;
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
/// actual weights between them times how active those units are on the photo collection (the
/// model's circuit role: `head` → logit 282 "tiger cat" for Lite0).
fn circuit(s: &mut Session, m: &dyn Model, recipe: &RenderConfig, size: usize, steps: usize) -> Result<()> {
    let Some((from, to, unit)) = m.card().roles.circuit else {
        eprintln!("skipped the circuit figure: {} has no direct connection to read", m.name());
        return Ok(());
    };
    let w = m.connection(from, to)?;
    let photos = if s.quick { Some(32) } else { None };
    // ANCHOR: circuit
    // How each `from` unit feeds `to:unit`. A weight counts as much as the activation it
    // multiplies: rank the `from` units by their contribution, the weight times the unit's mean
    // over the photos of the collection.
    let weights: Vec<f32> = w.get(unit)?.to_vec1()?;
    let (means, seen) = channel_means(m, &Source::open("collection")?, from, photos, &s.device)?;
    let contribution: Vec<f32> = weights.iter().zip(&means).map(|(w, a)| w * a).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| contribution[b].total_cmp(&contribution[a]));
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
        labels.push(format!("{from}:{j}, {:+.2} × {:.2}", weights[j], means[j]));
    }
    let spec = ImageSpec { batch: objs.len(), ..ImageSpec::square(size) };
    let (row, _) = visualise(s, m, &Objective::sum(objs)?, spec, recipe, &labels)?;
    // ANCHOR_END: circuit
    record_circuit(s, &weights, &contribution, &picks, seen);
    let title = format!("A circuit: {to}:{unit} and its strongest inputs from {from}, {steps} steps");
    s.save_grid(
        &in_rows(row, 3),
        &GridSpec::new(200).title(&title).photo(),
        (m.name(), &format!("{to}-{unit}"), "circuit"),
    )
}

/// The circuit's numbers for the page: the inputs picked (`circuit_up1`…, `circuit_down1`…)
/// with their contribution (`circuit_up1_c`…), and what share of all the positive
/// contributions the three strongest make.
fn record_circuit(s: &mut Session, weights: &[f32], contribution: &[f32], picks: &[usize], seen: usize) {
    s.record("circuit_photos", seen);
    s.record("circuit_inputs", weights.len());
    s.record("circuit_max_weight", weights.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    for (i, &j) in picks.iter().enumerate() {
        let key = if i < 3 { format!("circuit_up{}", i + 1) } else { format!("circuit_down{}", i - 2) };
        s.record(&key, j);
        s.record(&format!("{key}_c"), contribution[j]);
    }
    let positive: f32 = contribution.iter().filter(|&&c| c > 0.0).sum();
    let top: f32 = picks.iter().take(3).map(|&j| contribution[j]).sum();
    s.record("circuit_top3_share", top / positive);
    println!(
        "circuit: the 3 strongest inputs make {:.1} % of the positive contributions (mean over {seen} photos)",
        100.0 * top / positive
    );
}
