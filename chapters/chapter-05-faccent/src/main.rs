//! Chapter 5: feature accentuation. A photo pushed towards a class it is not, step by step, with
//! where it changed; one class from two photos; a channel accentuated in a fox-like photo; the
//! regulariser's weight from nothing to everything; three parametrisations; the change beside
//! chapter 2's saliency and Grad-CAM; and positive and negative CAM maps.
use std::path::PathBuf;

use anyhow::{Context, Result};
use chapter_05_faccent::accent::{
    accentuate, alpha_map, posneg_cam, posneg_image, with_alpha, AccentConfig, Accented,
};
use chapter_05_faccent::ACCENT;
use clap::Parser;
use vision_interp::attribution::{format_rho, grad_cam, saliency, spearman, top_k};
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{line_chart, GridSpec, Map, Panel, Series};
use vision_interp::image::RgbImage;
use vision_interp::imageio::{load_square, to_rgb_image};
use vision_interp::imagenet::short_name;
use vision_interp::models::{parse_unit, Model};
use vision_interp::optvis::{objective, ImageParam, ImageSpec, Objective, Space};
use vision_interp::{asset, ops, Tensor};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Feature accentuation: what a photo would need to look like for a unit to fire more")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Seed photo of the step-by-step, α, parametrisation, saliency and CAM figures [default:
    /// assets/photos/chelsea.png, a tabby cat]
    #[arg(long)]
    photo: Option<PathBuf>,
    /// Class to accentuate, by name or index
    #[arg(long, default_value = "tiger")]
    class: String,
    /// Weight α of the regulariser (0: plain feature visualisation from the photo)
    #[arg(long, value_parser = vision_interp::flag::non_negative, default_value_t = 1.0)]
    alpha: f64,
    /// Layer where the image is kept close to the photo [default: the model's: stage2 for
    /// Lite0, mixed3a for InceptionV1]
    #[arg(long)]
    reg_layer: Option<String>,
    /// Steps per accentuation [default: 64; 12 with --quick; Faccent's is 99]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
    /// Random views per step [default: 8; 4 with --quick; Faccent's is 16, twice the time]
    #[arg(long, value_parser = vision_interp::flag::count)]
    views: Option<usize>,
    /// Side of the square canvas in pixels [default: 256, the photos' size; 96 with --quick]
    #[arg(long, value_parser = vision_interp::flag::pixels_u32)]
    size: Option<u32>,
}

/// Panel side in the figures.
const CELL: u32 = 160;
/// Panel side in the animation, and its step between frames.
const GIF_CELL: u32 = 224;
const GIF_EVERY: usize = 16;

fn fit(img: &RgbImage) -> RgbImage {
    vision_interp::image::imageops::resize(
        img,
        CELL,
        CELL,
        vision_interp::image::imageops::FilterType::CatmullRom,
    )
}

/// The image and its alpha view (Faccent's `plot_alpha`, top 20 % of the transparency kept
/// whole), as RGB images.
fn views(img: &Tensor, transparency: &Tensor) -> Result<(RgbImage, RgbImage)> {
    let rgb = to_rgb_image(img)?;
    let alpha = with_alpha(&rgb, &alpha_map(transparency, 20.0, 2.0)?, [255, 255, 255]);
    Ok((fit(&rgb), fit(&alpha)))
}

/// The top class of an image `(1, 3, H, W)` (resized to the model's input) and its
/// probability.
fn top(m: &dyn Model, img: &Tensor) -> Result<(String, f32)> {
    let x = ops::resize_antialiased(&img.squeeze(0)?, m.input_size(), m.input_size())?;
    let p = &top_k(m, &x, 1)?[0];
    Ok((short_name(&p.name).to_owned(), p.prob))
}

/// `tiger 0.83`: the top class of an image and its probability.
fn top1(m: &dyn Model, img: &Tensor) -> Result<String> {
    let (name, p) = top(m, img)?;
    Ok(format!("{name} {p:.2}"))
}

/// Records the top class of `img` and its probability as `<key>_class` and `<key>_prob`.
fn record_top(s: &mut Session, key: &str, m: &dyn Model, img: &Tensor) -> Result<()> {
    let (name, p) = top(m, img)?;
    s.record(&format!("{key}_class"), name);
    s.record(&format!("{key}_prob"), p);
    Ok(())
}

/// One accentuation from `seed`, with a line of what it did.
fn run(
    m: &dyn Model,
    obj: &Objective,
    seed: &Tensor,
    space: Space,
    cfg: &AccentConfig,
    s: &mut Session,
) -> Result<Accented> {
    // ANCHOR: run
    let param = ImageParam::from_image(seed, space, if space == Space::Phase { 1.0 } else { 5.0 })?;
    let out = accentuate(m, obj, &param, seed, cfg, &mut s.rng)?;
    // ANCHOR_END: run
    let (a, z) = (out.activations[0], out.activations.last().copied().unwrap_or(f32::NAN));
    let balance = out.balance.map_or("none".into(), |b| format!("{b:.3}"));
    println!("{:<28} α {:<5} {space:?}: {a:>7.2} → {z:>7.2} (balance {balance})", obj.name, cfg.alpha);
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = ACCENT.chosen(m.name());
    // Every choice is checked before the first step, so that a typo writes nothing.
    let reg_layer = match (&args.reg_layer, roles) {
        (Some(l), _) => l.clone(),
        (None, Some(r)) => r.class_reg.to_owned(),
        (None, None) => anyhow::bail!("{} has no default regulariser layer: give --reg-layer", m.name()),
    };
    m.layer(&reg_layer)?;
    anyhow::ensure!(
        args.alpha >= 0.0 && args.alpha.is_finite(),
        "--alpha must be zero or positive, not {}",
        args.alpha
    );
    let class = m.class_index(&args.class)?;
    let class_name = short_name(&m.classes()[class]).to_owned();
    let size = s.budget(args.size, 96, 256);
    let photo_path = args.photo.clone().unwrap_or_else(|| asset("photos/chelsea.png"));
    let (seed, note) = load_square(&photo_path, size, &s.device)?;
    let stem = photo_path.file_stem().map_or("photo".into(), |n| n.to_string_lossy().into_owned());
    println!("seed {note}");
    let latent = roles.map(|r| r.latent).context("no latent-accentuation unit for this model")?;
    let latent_unit = parse_unit(m, latent.0)?;
    let collection = |name: &str| load_square(&asset(&format!("photos/collection/{name}")), size, &s.device);
    let (others, fox) = (
        [collection("wildlife/chameleon.jpg")?, collection("wildlife/crocodile.jpg")?],
        collection("animals/red_panda.jpg")?,
    );

    // ANCHOR: config
    let cfg = AccentConfig {
        steps: s.budget(args.steps, 12, 64),
        views: s.budget(args.views, 4, 8),
        input: s.quick.then_some(128),
        reg_layer: Some(reg_layer.clone()),
        alpha: args.alpha,
        ..Default::default()
    };
    let target = objective::channel("logits", class, None);
    // ANCHOR_END: config
    // The photo pushed towards the class, step by step, with its alpha view and top class.
    let main = run(m, &target, &seed, Space::Fft, &cfg, &mut s)?;
    // Five kept frames, from the photo itself to the last step.
    let picks: Vec<&_> = {
        let n = main.frames.len();
        let mut idx: Vec<usize> = [0, n / 8, n / 4, n / 2, n - 1].into();
        idx.dedup();
        idx.iter().map(|&i| &main.frames[i]).collect()
    };
    let (mut row, mut alpha_row) = (vec![], vec![]);
    for f in &picks {
        let (img, alpha) = views(&f.image, &f.transparency)?;
        row.push(Panel::new(img, format!("step {}: {}", f.step, top1(m, &f.image)?)));
        alpha_row.push(Panel::new(alpha, format!("activation {:.1}", main.activations[f.step])));
    }
    let what = format!(
        "{}, logit {class} ({class_name}), α {}, {} views, {} steps",
        m.name(),
        cfg.alpha,
        cfg.views,
        cfg.steps
    );
    let spec = GridSpec::new(CELL)
        .title(&format!("{stem} accentuated: {what}"))
        .rows(&["image", "alpha view"])
        .photo();
    s.save_grid(&[row, alpha_row], &spec, (m.name(), &format!("{stem}-{class_name}"), "steps"))?;
    record_top(&mut s, "start", m, &main.frames[0].image)?;
    record_top(&mut s, "end", m, &main.last().image)?;
    // The same photo as chapter 2 prepares it (the central 87.5 % of its shorter side, resized
    // to the model's input) against this chapter's canvas (its whole central square).
    let ch2 = vision_interp::imageio::load_photo(&photo_path, m.input_size() as u32, &s.device)?;
    record_top(&mut s, "ch2_crop", m, &ch2.unsqueeze(0)?)?;
    // The animation: the image and its alpha view at full canvas size, every `GIF_EVERY`-th
    // step and the last, each frame labelled with its step, the top class and the logit.
    let n = main.frames.len();
    let mut frames = Vec::new();
    for (i, f) in main.frames.iter().enumerate() {
        if f.step % GIF_EVERY != 0 && i != n - 1 {
            continue;
        }
        let rgb = to_rgb_image(&f.image)?;
        let alpha = with_alpha(&rgb, &alpha_map(&f.transparency, 20.0, 2.0)?, [255, 255, 255]);
        let panels = vec![
            Panel::new(rgb, format!("step {}: {}", f.step, top1(m, &f.image)?)),
            Panel::new(alpha, format!("alpha view, logit {:.1}", main.activations[f.step])),
        ];
        frames.push(vision_interp::figure::grid(&[panels], &GridSpec::new(GIF_CELL))?);
    }
    s.save_animation(&frames, 500, (m.name(), &format!("{stem}-{class_name}"), "animation"))?;
    // The same class from two other photos.
    let mut rows = vec![];
    for (photo, name) in others.iter().zip(["chameleon", "crocodile"]) {
        let out = run(m, &target, &photo.0, Space::Fft, &cfg, &mut s)?;
        let (img, alpha) = views(&out.last().image, &out.last().transparency)?;
        let seed_panel = Panel::new(fit(&to_rgb_image(&photo.0)?), format!("{name}: {}", top1(m, &photo.0)?));
        record_top(&mut s, &format!("{name}_start"), m, &photo.0)?;
        record_top(&mut s, &format!("{name}_end"), m, &out.last().image)?;
        rows.push(vec![
            seed_panel,
            Panel::new(img, top1(m, &out.last().image)?),
            Panel::new(alpha, "alpha view"),
        ]);
    }
    let spec = GridSpec::new(CELL)
        .title(&format!("Two photos accentuated: {what}"))
        .columns(&["seed", "accentuated", "where it changed"])
        .photo();
    s.save_grid(&rows, &spec, (m.name(), &class_name, "two-photos"))?;

    // ANCHOR: latent
    // A channel, kept close to the photo in an earlier layer with a lighter α; and the same
    // channel from noise, by the same views and steps (plain feature visualisation).
    let channel = objective::channel(&latent_unit.layer, latent_unit.unit, None);
    let latent_cfg = AccentConfig { reg_layer: Some(latent.1.to_owned()), alpha: latent.2, ..cfg.clone() };
    let accented = run(m, &channel, &fox.0, Space::Fft, &latent_cfg, &mut s)?;
    let noise = ImageParam::new(&ImageSpec::square(size as usize), &mut s.rng, &s.device)?;
    let start = noise.image()?.detach();
    let plain = accentuate(
        m,
        &channel,
        &noise,
        &start,
        &AccentConfig { reg_layer: None, ..cfg.clone() },
        &mut s.rng,
    )?;
    // ANCHOR_END: latent
    let (img, alpha) = views(&accented.last().image, &accented.last().transparency)?;
    s.record("latent_start", accented.activations[0]);
    s.record("latent_end", *accented.activations.last().expect("steps"));
    s.record("latent_noise", *plain.activations.last().expect("steps"));
    let row = vec![
        Panel::new(fit(&to_rgb_image(&fox.0)?), format!("red panda, {:.1}", accented.activations[0])),
        Panel::new(img, format!("accentuated, {:.1}", accented.activations.last().unwrap())),
        Panel::new(alpha, "where it changed"),
        Panel::new(
            fit(&to_rgb_image(&plain.last().image)?),
            format!("from noise, {:.1}", plain.activations.last().unwrap()),
        ),
    ];
    let title = format!(
        "{} {latent_unit}, kept at {} (α {}), {} views, {} steps",
        m.name(),
        latent.1,
        latent.2,
        cfg.views,
        cfg.steps
    );
    s.save_grid(
        &[row],
        &GridSpec::new(CELL).title(&title).photo(),
        (m.name(), &latent_unit.to_string().replace(':', "-"), "latent"),
    )?;

    // ANCHOR: sweep
    // α from 0 (feature visualisation started at the photo) to 16 (the photo barely moves).
    let mut row = vec![];
    let mut curves = vec![];
    for alpha in [0.0, 0.25, 1.0, 4.0, 16.0] {
        let out = if alpha == cfg.alpha {
            None
        } else {
            Some(run(m, &target, &seed, Space::Fft, &AccentConfig { alpha, ..cfg.clone() }, &mut s)?)
        };
        let out = out.as_ref().unwrap_or(&main);
        let img = &out.last().image;
        let rms = (img - &seed)?.sqr()?.mean_all()?.sqrt()?.to_scalar::<f32>()?;
        row.push(Panel::new(
            fit(&to_rgb_image(img)?),
            format!("α {alpha}: {}, RMS Δ {rms:.3}", top1(m, img)?),
        ));
        let key = format!("alpha_{}", format!("{alpha}").replace('.', "_"));
        s.record(&format!("{key}_rms"), rms);
        s.record(&format!("{key}_logit"), *out.activations.last().expect("steps"));
        record_top(&mut s, &key, m, img)?;
        let points = out.activations.iter().enumerate().map(|(i, &a)| (i as f32, a)).collect();
        curves.push(Series { label: format!("α = {alpha}"), points });
    }
    // ANCHOR_END: sweep
    let spec = GridSpec::new(CELL)
        .title(&format!("α swept: {}", what.replace(&format!(", α {}", cfg.alpha), "")))
        .photo();
    s.save_grid(&[row], &spec, (m.name(), &format!("{stem}-{class_name}"), "alpha-sweep"))?;
    let title = format!("{stem} → {class_name}: the logit over the step's views, by α");
    let chart = line_chart(&curves, &title, "step", &format!("logit {class} ({class_name})"), (720, 380))?;
    s.save(&chart, &s.figure(m.name(), &format!("{stem}-{class_name}"), "alpha-curves"))?;

    // Three parametrisations from the same photo.
    let mut row = vec![];
    for space in [Space::Pixel, Space::Fft, Space::Phase] {
        let out = if space == Space::Fft { None } else { Some(run(m, &target, &seed, space, &cfg, &mut s)?) };
        let out = out.as_ref().unwrap_or(&main);
        let label = format!("{space:?}: {}", top1(m, &out.last().image)?);
        if space != Space::Fft {
            record_top(&mut s, &format!("{space:?}").to_lowercase(), m, &out.last().image)?;
        }
        row.push(Panel::new(fit(&to_rgb_image(&out.last().image)?), label));
    }
    let spec = GridSpec::new(CELL).title(&format!("Parametrisations: {what}")).photo();
    s.save_grid(&[row], &spec, (m.name(), &format!("{stem}-{class_name}"), "parametrisations"))?;

    // ANCHOR: compare
    // Where accentuation changed the photo, beside where chapter 2's methods say the class's
    // evidence is, compared by rank correlation on a 28 × 28 grid.
    let photo224 = ops::resize_antialiased(&seed.squeeze(0)?, m.input_size(), m.input_size())?;
    let change = Map::from_tensor(&main.last().transparency.squeeze(0)?.mean(0)?)?.resize(28, 28);
    let sal = Map::from_tensor(&saliency(m, &photo224, class)?)?.resize(28, 28);
    let last_conv = m.card().roles.last_conv;
    let cam = Map::from_tensor(&grad_cam(m, &photo224, class, last_conv)?.cam)?.resize(28, 28);
    let (rho_sal, rho_cam) = (spearman(&change.data, &sal.data), spearman(&change.data, &cam.data));
    // ANCHOR_END: compare
    s.record("rho_saliency", rho_sal.unwrap_or(f32::NAN));
    s.record("rho_gradcam", rho_cam.unwrap_or(f32::NAN));
    println!(
        "transparency vs saliency {}, vs Grad-CAM at {last_conv} {}",
        format_rho(rho_sal),
        format_rho(rho_cam)
    );
    let rgb = to_rgb_image(&seed)?;
    let shown = |map: &Map| {
        fit(&vision_interp::figure::overlay(
            &rgb,
            &map.normalize_max(),
            vision_interp::figure::Colormap::Inferno,
            0.7,
        ))
    };
    let row = vec![
        Panel::new(fit(&rgb), stem.clone()),
        Panel::new(shown(&change), "accentuation's change"),
        Panel::new(shown(&sal), format!("saliency, {}", format_rho(rho_sal))),
        Panel::new(shown(&cam), format!("Grad-CAM {last_conv}, {}", format_rho(rho_cam))),
    ];
    let spec =
        GridSpec::new(CELL).title(&format!("Where the {class_name} evidence is: {}", m.name())).photo();
    s.save_grid(&[row], &spec, (m.name(), &format!("{stem}-{class_name}"), "vs-saliency"))?;

    // Positive (red) and negative (blue) CAM maps of the class, before and after.
    let layers = &m.card().roles.cam_ladder[2..];
    let mut rows = vec![];
    for (img, name) in [(&seed, stem.as_str()), (&main.last().image, "accentuated")] {
        let x = ops::resize_antialiased(img, m.input_size(), m.input_size())?;
        let big = to_rgb_image(img)?;
        let cams = posneg_cam(m, &x, ("logits", class), layers, false)?;
        let mut row = vec![Panel::new(fit(&big), format!("{name}: {}", top1(m, img)?))];
        for c in &cams {
            row.push(Panel::new(fit(&posneg_image(&big, c)?), c.layer.clone()));
        }
        rows.push(row);
    }
    let spec = GridSpec::new(CELL)
        .title(&format!("CAM maps of {class_name}, red for, blue against: {}", m.name()))
        .photo();
    s.save_grid(&rows, &spec, (m.name(), &format!("{stem}-{class_name}"), "cam"))?;
    s.finish()
}
