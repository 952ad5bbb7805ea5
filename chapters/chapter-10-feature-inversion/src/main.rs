//! Chapter 10: Lucent's feature-inversion notebook (Lucid's "caricatures"), rebuilt and taken
//! further. An image optimised so that its activations at one layer match a photo's: what each
//! depth of the network keeps of the photo, measured (correlation with the photo, and whether
//! the network still sees the photo's class), and the cosine exponent that decides how closely
//! the match follows the photo's direction rather than its magnitude.
use anyhow::{ensure, Result};
use clap::Parser;
use vision_interp::attribution::{probability, top_k};
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::figure::{chart_pair, GridSpec, Panel, Series, SeriesLabelPosition};
use vision_interp::imageio::load_photo;
use vision_interp::imagenet::short_name;
use vision_interp::models::Model;
use vision_interp::optvis::{objective, render, transform, ImageParam, ImageSpec, RenderConfig};
use vision_interp::Tensor;

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Lucent's feature inversion: what each layer keeps of a photo")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// The photo to invert [default: the book's cat, assets/photos/chelsea.png]
    #[arg(long)]
    image: Option<std::path::PathBuf>,
    /// Layer of the cosine-exponent sweep [default: two thirds of the way down the model's depth
    /// walk: stage5 on Lite0]
    #[arg(long)]
    layer: Option<String>,
    /// Cosine exponents of the sweep (the notebook's: 0, 0.5, 1, 2)
    #[arg(long, value_parser = vision_interp::flag::non_negative, value_delimiter = ',', default_value = "0,0.5,1,2")]
    cossim_pow: Vec<f64>,
    /// Cosine exponent of the walk through depth (the notebook's default is 0, which rewards
    /// most exaggeration; the book walks at 1, where a wrong direction costs more)
    #[arg(long, value_parser = vision_interp::flag::non_negative, default_value_t = 1.0)]
    pow: f64,
    /// Weight of the blur prior, subtracted: `− k·blur_input_each_step()` (0: none)
    #[arg(long, value_parser = vision_interp::flag::non_negative, default_value_t = 1.0)]
    blur: f64,
    /// Weight of a total-variation penalty, added: `+ k·total_variation()` (0: none)
    #[arg(long, value_parser = vision_interp::flag::non_negative, default_value_t = 0.0)]
    tv: f64,
    /// Optimisation steps per render [default: 128; 24 with --quick; the notebook uses 512]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    steps: Option<usize>,
}

/// One inversion and what it kept.
#[derive(Clone)]
struct Inverted {
    image: Tensor,
    /// Correlation of the inversion's pixels with the photo's, after 8 × 8 block means.
    correlation: f32,
    /// The model's probability of the photo's top-1 class on the inversion.
    class_probability: f32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(p) = args.cossim_pow.iter().chain([&args.pow]).find(|p| !(p.is_finite() && **p >= 0.0)) {
        anyhow::bail!("cosine exponents must be zero or positive, not {p}");
    }
    if let Some(k) = [args.blur, args.tv].into_iter().find(|k| !(k.is_finite() && *k >= 0.0)) {
        anyhow::bail!("--blur and --tv are weights of penalties: zero or positive, not {k}");
    }
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let steps = s.budget(args.steps, 24, 128);
    let size = if s.quick { 96 } else { m.input_size() };
    let path = args.image.clone().unwrap_or_else(|| vision_interp::asset("photos/chelsea.png"));
    let photo = load_photo(&path, size as u32, &s.device)?; // (3, size, size) in [0, 1]
    let original = top_k(m, &photo, 1)?.remove(0);
    let name = path.file_name().map_or(path.display().to_string(), |n| n.to_string_lossy().into_owned());
    println!("the photo: {name}, cropped and resized to {size} px; top-1 {original}");
    s.record("photo_p", original.prob);
    s.record("photo_class", short_name(&original.name));
    let cfg = RenderConfig { steps, transforms: transform::inversion(), ..Default::default() };
    let how = Inversion { cfg, class: original.class, blur: args.blur, tv: args.tv };
    let depth = m.card().roles.depth;
    let sweep_layer = match &args.layer {
        Some(l) => m.layer(l)?.name.clone(),
        None => depth[depth.len() * 2 / 3].to_owned(),
    };
    ensure!(!depth.is_empty(), "{} names no layers for a walk through depth", m.name());

    // Every depth, one render each from the same start.
    println!("\nthe photo inverted at every depth (cossim_pow {}):", args.pow);
    let start = s.rng.clone();
    let mut walk = Vec::new();
    for layer in depth {
        s.rng = start.clone();
        let inv = invert(&mut s, m, &photo, layer, args.pow, &how)?;
        s.record(&format!("r_{layer}"), inv.correlation);
        s.record(&format!("p_{layer}"), inv.class_probability);
        walk.push((layer.to_string(), inv));
    }
    let label = |inv: &Inverted| format!("r {:.2} p {:.2}", inv.correlation, inv.class_probability);
    let mut panels = vec![Panel::image(&photo, format!("photo: {}", short_name(&original.name)))?];
    for (layer, inv) in &walk {
        panels.push(Panel::image(&inv.image, format!("{layer} {}", label(inv)))?);
    }
    let rows: Vec<Vec<Panel>> = panels.chunks(5).map(<[Panel]>::to_vec).collect();
    let title =
        format!("{} inverted at every depth, {} px, {steps} steps, cossim_pow {}", m.name(), size, args.pow);
    s.save_grid(&rows, &GridSpec::new(170).title(&title).photo(), (m.name(), "inversion", "depth"))?;
    depth_chart(&mut s, m, &walk, short_name(&original.name))?;

    // The cosine exponent at one layer (the walk's own inversion where it has it).
    println!("\nthe cosine exponent at {sweep_layer}:");
    let mut row = vec![Panel::image(&photo, "photo")?];
    for &p in &args.cossim_pow {
        let walked = walk.iter().find(|(l, _)| *l == sweep_layer && p == args.pow);
        let inv = match walked {
            Some((_, inv)) => {
                println!("  {sweep_layer:<16} pow {p:<4} the walk's inversion, above");
                inv.clone()
            }
            None => {
                s.rng = start.clone();
                invert(&mut s, m, &photo, &sweep_layer, p, &how)?
            }
        };
        let key = format!("{p}").replace('.', "_");
        s.record(&format!("pow_{key}_r"), inv.correlation);
        s.record(&format!("pow_{key}_p"), inv.class_probability);
        row.push(Panel::image(&inv.image, format!("pow {p} {}", label(&inv)))?);
    }
    let title = format!("{} {sweep_layer} inverted with cossim_pow (pow), {steps} steps", m.name());
    s.save_grid(&[row], &GridSpec::new(170).title(&title).photo(), (m.name(), &sweep_layer, "cossim-pow"))?;
    s.finish()
}

/// How every inversion is made: the render's settings, the class whose probability is
/// measured, and the weights of the two priors on the image.
struct Inversion {
    cfg: RenderConfig,
    class: usize,
    blur: f64,
    tv: f64,
}

/// Inverts `photo` at `layer` with cosine exponent `pow`, and measures what was kept.
fn invert(
    s: &mut Session,
    m: &dyn Model,
    photo: &Tensor,
    layer: &str,
    pow: f64,
    how: &Inversion,
) -> Result<Inverted> {
    let (_, h, w) = photo.dims3()?;
    // ANCHOR: invert
    // Image 0 is optimised; image 1 is the photo, in the batch so that it takes the same
    // random transformations and shares the forward pass.
    let spec = ImageSpec { height: h, width: w, ..ImageSpec::square(h) };
    let param = ImageParam::new(&spec, &mut s.rng, &s.device)?.with_fixed(&photo.unsqueeze(0)?)?;
    // A loss to minimise: match the photo's activations at `layer`; minus `blur` times
    // blur_input_each_step (itself −½Σ(x − blur(x))², so subtracting it pulls the image
    // towards its own blur); plus `tv` times the image's total variation (a penalty).
    let obj = objective::dot_compare(layer, 1, pow) - how.blur * objective::blur_input_each_step()
        + how.tv * objective::total_variation();
    let out = render(m, &obj, &param, &how.cfg, &mut s.rng)?;
    let image = out.last().get(0)?;
    // ANCHOR_END: invert
    let correlation = block_correlation(&image, photo, 8)?;
    let class_probability = probability(m, &image, how.class)?;
    println!(
        "  {layer:<16} pow {pow:<4} correlation with the photo {correlation:>5.2}   p(photo's class) {class_probability:.3}   {}",
        out.summary()
    );
    Ok(Inverted { image, correlation, class_probability })
}

/// The correlation of two images' pixels after averaging `block` × `block` squares: 1 when one
/// is the other brightened or with more contrast, 0 when they are unrelated. The blocks keep the
/// layout and forget the texture, which an inversion is not asked to copy pixel for pixel.
fn block_correlation(a: &Tensor, b: &Tensor, block: usize) -> Result<f32> {
    let centred = |t: &Tensor| -> Result<Tensor> {
        let v = t.unsqueeze(0)?.avg_pool2d(block)?.flatten_all()?;
        Ok(v.broadcast_sub(&v.mean_all()?)?)
    };
    let (x, y) = (centred(a)?, centred(b)?);
    let r = (&x * &y)?.sum_all()? / ((x.sqr()?.sum_all()?.sqrt()? * y.sqr()?.sum_all()?.sqrt()?)? + 1e-12)?;
    Ok(r?.to_scalar::<f32>()?)
}

/// What each depth kept, against depth: the correlation with the photo and the probability of
/// the photo's class.
fn depth_chart(s: &mut Session, m: &dyn Model, walk: &[(String, Inverted)], class: &str) -> Result<()> {
    let series = |label: &str, f: &dyn Fn(&Inverted) -> f32| Series {
        label: label.into(),
        points: walk.iter().enumerate().map(|(i, (_, inv))| (i as f32, f(inv))).collect(),
    };
    let axis = format!("depth: 0 = {}, …, {} = {}", walk[0].0, walk.len() - 1, walk[walk.len() - 1].0);
    let chart = chart_pair(
        &format!("{} inverted", m.name()),
        &axis,
        [
            (
                "correlation (8 × 8 block means)",
                series("with the photo", &|i| i.correlation),
                SeriesLabelPosition::UpperRight,
            ),
            (
                "probability of the photo's class",
                series(class, &|i| i.class_probability),
                SeriesLabelPosition::UpperLeft,
            ),
        ],
    )?;
    s.save(&chart, &s.figure(m.name(), "inversion", "depth-curves"))
}
