//! Chapter 2: which pixels, and which regions, does a class score depend on?
//!
//! Vanilla saliency, SmoothGrad, integrated gradients and Grad-CAM on EfficientNet-Lite0 and
//! real photos, then two checks: Grad-CAM separates two classes in one image, and the maps
//! change when the model's weights are randomised (Adebayo et al., 2018).
use anyhow::Result;
use chapter_01_cnn_basics::scratch::{ScratchArgs, ScratchRun};
use clap::Parser;
use vision_interp::attribution::{self as attr, top_k};
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::data::Split;
use vision_interp::figure::{hstack, in_rows, line_chart_with, ChartSpec, Colorbar, GridSpec, Panel, Series};
use vision_interp::imageio::{blurred, load_photo, photo, side_by_side, to_tensor};
use vision_interp::imagenet::short_name;
use vision_interp::models::{Model, SimpleCnn};
use vision_interp::{asset, Tensor};

vision_interp::fast_allocator!();

#[derive(Parser)]
#[command(about = "Saliency maps, SmoothGrad, integrated gradients and Grad-CAM")]
struct Args {
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Noisy copies per SmoothGrad map [default: 32; 8 with --quick]
    #[arg(long, value_parser = vision_interp::flag::count)]
    samples: Option<usize>,
    /// Steps of the integrated-gradients path [default: 128; 32 with --quick]
    #[arg(long, value_parser = vision_interp::flag::steps)]
    ig_steps: Option<usize>,
    /// Baseline of integrated gradients: a black image, a blurred copy of the photo, or
    /// uniform noise
    #[arg(long, value_enum, default_value_t)]
    ig_baseline: Baseline,
    /// Explain this photo (any size; JPEG or PNG; grey-scale and RGBA are read as RGB) instead
    /// of the book's four
    #[arg(long)]
    image: Option<std::path::PathBuf>,
    /// The class to explain, by name or index [default: each photo's top-1 class]
    #[arg(long)]
    class: Option<String>,
    #[command(flatten)]
    scratch: ScratchArgs,
}

/// Where the integrated-gradients path starts.
#[derive(Clone, Copy, Default, clap::ValueEnum)]
enum Baseline {
    #[default]
    Black,
    Blur,
    Noise,
}

const PHOTOS: [&str; 4] = ["chelsea.png", "coffee.png", "grace_hopper.jpg", "camera.png"];

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.run, env!("CARGO_PKG_NAME"))?;
    let model = args.model.load(&s.device)?;
    let m = model.as_ref();
    let roles = m.card().roles; // which layers of this model play which part
    let size = m.input_size();
    let (tiger_cat, espresso) = (m.class_index("tiger cat")?, m.class_index("espresso")?);
    let samples = s.budget(args.samples, 8, 32);
    let steps = s.budget(args.ig_steps, 32, 128);
    let fractions = if s.quick { 8 } else { 32 }; // points of the deletion and insertion curves
    let photos: Vec<(String, Tensor)> = match &args.image {
        Some(path) => vec![(path.display().to_string(), load_photo(path, size as u32, &s.device)?)],
        None => {
            PHOTOS.iter().map(|n| Ok((n.to_string(), photo(n, size, &s.device)?))).collect::<Result<_>>()?
        }
    };
    let fixed_class = args.class.as_deref().map(|c| m.class_index(c)).transpose()?;
    s.record("smoothgrad_samples", samples);
    s.record("ig_steps", steps);
    s.record("curve_points", fractions + 1);

    // ANCHOR: methods
    let (mut rows, mut ig_paths, mut curves, mut ig_errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, img) in &photos {
        let top = top_k(m, img, 3)?; // img: (3, 224, 224) in [0, 1]
        println!("{name}: {}", top.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "));
        let class = fixed_class.unwrap_or(top[0].class);
        let baseline = match args.ig_baseline {
            Baseline::Black => img.zeros_like()?,
            Baseline::Blur => blurred(img)?, // Gaussian, σ = 8 px at 224
            Baseline::Noise => img.rand_like(0.0, 1.0)?,
        };
        let saliency = attr::saliency(m, img, class)?; // (224, 224)
        let smooth = attr::smoothgrad(m, img, class, samples, 0.15, 8, &mut s.rng)?;
        let ig = attr::integrated_gradients(m, img, &baseline, class, steps, 16)?;
        let (total, gap) = ig.completeness; // equal when the path integral is exact
        println!("  integrated gradients: Σ attributions {total:.2}, y(x) − y(baseline) {gap:.2}");
        ig_errors.push((name.clone(), record_photo(&mut s, name, &top[0], &ig))); // |Σ − gap| / |gap|
        let cam = attr::grad_cam(m, img, class, roles.last_conv)?.cam; // (7, 7) for Lite0
        let ig_map = ig.attributions.sum(0)?;
        let label = format!("{} {:.2}", short_name(&m.classes()[class]), attr::probability(m, img, class)?);
        rows.push(vec![
            Panel::image(img, label)?,
            Panel::magnitude(&saliency, "")?,
            Panel::magnitude(&smooth, "")?,
            Panel::signed(&ig_map, "")?,
            Panel::overlay(img, &cam, "")?,
        ]);
        ig_paths.push(Series {
            label: format!("{name}: {}", short_name(&m.classes()[class])),
            points: ig.path_scores,
        });
        let random = vision_interp::rng::rand_uniform(&mut s.rng, (size, size), 0.0, 1.0, &s.device)?;
        curves.push(faithfulness(m, img, class, [&saliency, &smooth, &ig_map, &cam, &random], fractions)?);
    }
    // ANCHOR_END: methods
    let columns = [
        "input, class, p",
        "saliency",
        &format!("SmoothGrad, n = {samples}"),
        &format!("IG, {steps} steps"),
        &format!("Grad-CAM {}", roles.last_conv),
    ];
    let spec = GridSpec::new(200)
        .columns(&columns)
        .colorbar(Colorbar::magnitude("saliency, SmoothGrad"))
        .colorbar(Colorbar::signed("integrated gradients"))
        .colorbar(Colorbar::overlay("Grad-CAM"))
        .photo();
    s.save_grid(&rows, &spec, (m.name(), "photos", "attribution-methods"))?;
    faithfulness_figure(&mut s, m, &curves)?;

    record_ig_summary(&mut s, &ig_errors, &ig_paths, steps);
    // ANCHOR: ig_path
    let title = "Top-1 logit along the straight path from black to the photo";
    let spec = ChartSpec::new(title, "α (0 = black, 1 = photo)", "logit", (720, 440)).legend_below();
    let chart = line_chart_with(&ig_paths, &spec)?;
    // ANCHOR_END: ig_path
    s.save(&chart, &s.figure(m.name(), "photos", "ig-path"))?;

    // The first photo (chelsea.png, or --image) and its class (tiger cat, or --class) for the
    // walk through depth and the sanity check.
    let (subject, cat) = (&photos[0].0, &photos[0].1);
    let cat_class = fixed_class.map_or_else(|| Ok(top_k(m, cat, 1)?[0].class), Ok::<_, anyhow::Error>)?;
    let class_name = short_name(&m.classes()[cat_class]);
    let slug = std::path::Path::new(subject).file_stem().map_or("photo".into(), |s| s.to_string_lossy());
    // ANCHOR: layers
    let mut row = vec![Panel::image(cat, "input")?];
    for &layer in roles.cam_ladder {
        let l = m.layer(layer)?;
        let cam = attr::grad_cam(m, cat, cat_class, layer)?.cam;
        row.push(Panel::overlay(cat, &cam, format!("{layer} ({}×{}×{})", l.channels, l.height, l.width))?);
    }
    // ANCHOR_END: layers
    let spec = GridSpec::new(220)
        .title(&format!("Grad-CAM for '{class_name}' at {} depths", roles.cam_ladder.len()))
        .colorbar(Colorbar::overlay("Grad-CAM"))
        .photo();
    s.save_grid(&in_rows(row, 3), &spec, (m.name(), &slug, "gradcam-layers"))?;

    // ANCHOR: two_classes
    let left = vision_interp::imageio::read_rgb(&asset("photos/chelsea.png"))?;
    let right = vision_interp::imageio::read_rgb(&asset("photos/coffee.png"))?;
    let both = to_tensor(&side_by_side(&left, &right, size as u32), &s.device)?; // (3, 224, 673)
    let logits = m.logits(&both.unsqueeze(0)?)?.squeeze(0)?;
    let mut rows = Vec::new();
    for class in [tiger_cat, espresso] {
        let logit = logits.get(class)?.to_scalar::<f32>()?;
        let name = short_name(&m.classes()[class]);
        rows.push(vec![
            Panel::image(&both, format!("class {class} '{name}', logit {logit:.1}"))?,
            Panel::magnitude(&attr::saliency(m, &both, class)?, "saliency")?,
            Panel::overlay(&both, &attr::grad_cam(m, &both, class, roles.last_conv)?.cam, "Grad-CAM")?,
        ]);
    }
    // ANCHOR_END: two_classes
    let spec = GridSpec::new(300)
        .title("One image, two classes")
        .colorbar(Colorbar::magnitude("saliency"))
        .colorbar(Colorbar::overlay("Grad-CAM"))
        .photo();
    s.save_grid(&rows, &spec, (m.name(), "cat-and-espresso", "class-discriminative"))?;

    // ANCHOR: sanity
    let (cascade, last_conv) = (roles.cascade, roles.last_conv); // logits, head, stage6, … for Lite0
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let trained = (attr::saliency(m, cat, cat_class)?, attr::grad_cam(m, cat, cat_class, last_conv)?.cam);
    let mut sal_row = vec![Panel::magnitude(&trained.0, "trained")?];
    let mut cam_row = vec![Panel::overlay(cat, &trained.1, "trained")?];
    let mut cam_rhos = Vec::new(); // the defined ones, for the range the page quotes
    let w = args.model.weights.as_deref();
    for k in 1..=cascade.len() {
        // Every layer from the logits down to cascade[k - 1] gets random weights.
        let random = args.model.entry()?.load_randomized(w, &s.device, &cascade[..k], args.run.seed)?;
        let sal = attr::saliency(random.as_ref(), cat, cat_class)?;
        let cam = attr::grad_cam(random.as_ref(), cat, cat_class, last_conv)?.cam;
        let rho_sal = attr::spearman(&flat(&trained.0)?, &flat(&sal)?);
        let rho_cam = attr::spearman(&flat(&trained.1)?, &flat(&cam)?);
        let down_to = cascade[k - 1];
        record_rho(&mut s, &format!("rho_saliency_{down_to}"), rho_sal);
        record_rho(&mut s, &format!("rho_gradcam_{down_to}"), rho_cam);
        cam_rhos.extend(rho_cam);
        println!(
            "randomised down to {down_to:>6}: Spearman saliency {}, Grad-CAM {}",
            attr::format_rho(rho_sal),
            attr::format_rho(rho_cam)
        );
        // ρ is undefined when a map is the same everywhere (Grad-CAM's ReLU can clear it).
        let label =
            |rho: Option<f32>| rho.map_or(format!("→{down_to}: all 0"), |r| format!("→{down_to} ρ={r:.2}"));
        sal_row.push(Panel::magnitude(&sal, label(rho_sal))?);
        cam_row.push(Panel::overlay(cat, &cam, label(rho_cam))?);
    }
    // ANCHOR_END: sanity
    s.record("rho_gradcam_min", cam_rhos.iter().copied().fold(f32::INFINITY, f32::min));
    s.record("rho_gradcam_max", cam_rhos.iter().copied().fold(f32::NEG_INFINITY, f32::max));
    // Six panels a row: the trained map and five steps, then the other five.
    let per_row = cascade.len().div_ceil(2) + 1;
    let (sal_rows, cam_rows) = (in_rows(sal_row, per_row), in_rows(cam_row, per_row));
    let cam_title = format!("Grad-CAM {last_conv}");
    let titles: Vec<&str> = (0..sal_rows.len())
        .map(|i| if i == 0 { "saliency" } else { "" })
        .chain((0..cam_rows.len()).map(|i| if i == 0 { cam_title.as_str() } else { "" }))
        .collect();
    let spec = GridSpec::new(130)
        .title(&format!("Cascading randomisation from the logits down, '{class_name}'"))
        .rows(&titles)
        .colorbar(Colorbar::magnitude("saliency"))
        .colorbar(Colorbar::overlay("Grad-CAM"))
        .photo();
    let rows: Vec<Vec<Panel>> = sal_rows.into_iter().chain(cam_rows).collect();
    s.save_grid(&rows, &spec, (m.name(), &slug, "sanity-randomization"))?;

    // The 10-class SimpleCNN that chapter 1 trains from scratch (on Fashion-MNIST by default).
    let run = args.scratch.run(s.quick);
    let cnn = run.trained(args.run.seed, &s.device)?; // chapter 1's, or trained now if absent
    explain_scratch_model(&mut s, &cnn, &run)?;
    s.finish()
}

const METHODS: [&str; 5] = ["saliency", "SmoothGrad", "integrated gradients", "Grad-CAM", "random order"];
/// The methods' names in the keys of `numbers.json`.
const METHOD_KEYS: [&str; 5] = ["saliency", "smoothgrad", "ig", "gradcam", "random"];

/// `grace_hopper.jpg` → `grace_hopper`, `T-shirt/top` → `t_shirt_top`: a name as part of a key.
fn key(name: &str) -> String {
    let stem = std::path::Path::new(name).file_stem().map_or(name.into(), |s| s.to_string_lossy());
    let words: Vec<String> = stem
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    words.join("_")
}

/// Spearman's ρ under `key`, or the word `undefined` when a map was constant.
fn record_rho(s: &mut Session, key: &str, rho: Option<f32>) {
    match rho {
        Some(r) => s.record(key, r),
        None => s.record(key, "undefined"),
    }
}

/// A photo's top-1 class and the two sides of integrated gradients' completeness; returns the
/// relative error `|Σ − gap| / |gap|`.
fn record_photo(s: &mut Session, photo: &str, top: &attr::Prediction, ig: &attr::IntegratedGradients) -> f32 {
    let p = key(photo);
    s.record(&format!("{p}_class"), top.class);
    s.record(&format!("{p}_top1"), short_name(&top.name));
    let (total, gap) = ig.completeness;
    s.record(&format!("{p}_ig_sum"), total);
    s.record(&format!("{p}_ig_gap"), gap);
    ((total - gap) / gap).abs()
}

/// Over the photos: the smallest and largest completeness error (with their photos), and how
/// early the score rises along the path: the smallest share of its rise from the baseline that
/// a photo's score has covered at α = 1/8, and how many of the trapezoid steps lie before it.
fn record_ig_summary(s: &mut Session, errors: &[(String, f32)], paths: &[Series], steps: usize) {
    let by_error = |a: &&(String, f32), b: &&(String, f32)| a.1.total_cmp(&b.1);
    if let (Some(lo), Some(hi)) = (errors.iter().min_by(by_error), errors.iter().max_by(by_error)) {
        s.record("ig_error_min", lo.1);
        s.record("ig_error_min_photo", key(&lo.0));
        s.record("ig_error_max", hi.1);
        s.record("ig_error_max_photo", key(&hi.0));
    }
    let share_at_eighth = |points: &[(f32, f32)]| {
        let (start, end) = (points[0].1, points[points.len() - 1].1);
        let at = points.iter().find(|&&(a, _)| a >= 0.125).map_or(end, |&(_, y)| y);
        (at - start) / (end - start)
    };
    let share = paths.iter().map(|p| share_at_eighth(&p.points)).fold(f32::INFINITY, f32::min);
    s.record("ig_share_at_eighth", share);
    s.record("ig_steps_to_eighth", steps.div_ceil(8));
}

/// Deletion and insertion curves of each method's map on one photo, and of a random order of
/// the pixels as the control.
fn faithfulness(
    m: &dyn Model,
    img: &Tensor,
    class: usize,
    maps: [&Tensor; 5],
    fractions: usize,
) -> Result<Vec<attr::PixelCurves>> {
    // ANCHOR: faithfulness
    let blur = blurred(img)?; // insertion starts from this copy with the detail removed
    maps.into_iter().map(|map| attr::deletion_insertion(m, img, &blur, map, class, fractions)).collect()
    // ANCHOR_END: faithfulness
}

/// The curves averaged over the photos, one line per method, and the areas under them.
fn faithfulness_figure(s: &mut Session, m: &dyn Model, curves: &[Vec<attr::PixelCurves>]) -> Result<()> {
    let mean = |k: usize, pick: fn(&attr::PixelCurves) -> &Vec<(f32, f32)>| -> Vec<(f32, f32)> {
        let first = pick(&curves[0][k]);
        (0..first.len())
            .map(|i| (first[i].0, curves.iter().map(|c| pick(&c[k])[i].1).sum::<f32>() / curves.len() as f32))
            .collect()
    };
    let (mut deletion, mut insertion) = (Vec::new(), Vec::new());
    println!(
        "faithfulness over {} photo(s), area under the curve (deletion: lower is better; insertion: higher):",
        curves.len()
    );
    for (k, method) in METHODS.iter().enumerate() {
        let areas: Vec<(f32, f32)> = curves.iter().map(|c| c[k].areas()).collect();
        let n = areas.len() as f32;
        let (d, i) = (areas.iter().map(|a| a.0).sum::<f32>() / n, areas.iter().map(|a| a.1).sum::<f32>() / n);
        println!("  {method:<21} deletion {d:.3}, insertion {i:.3}");
        s.record(&format!("deletion_{}", METHOD_KEYS[k]), d);
        s.record(&format!("insertion_{}", METHOD_KEYS[k]), i);
        deletion.push(Series { label: method.to_string(), points: mean(k, |c| &c.deletion) });
        insertion.push(Series { label: method.to_string(), points: mean(k, |c| &c.insertion) });
    }
    let x = "fraction of pixels changed, most important first";
    let chart = |series: &[Series], title: &str| {
        let spec = ChartSpec::new(title, x, "p(class)", (480, 400)).y_range(0.0, 1.0).legend_below();
        line_chart_with(series, &spec)
    };
    let del = chart(&deletion, "Deletion: pixels set to black")?;
    let ins = chart(&insertion, "Insertion: pixels restored into a blur")?;
    let both = hstack(&del, &ins, 10);
    s.save(&both, &s.figure(m.name(), "photos", "deletion-insertion"))
}

/// Saliency and Grad-CAM at the last convolution for the first evaluation image of six classes.
fn explain_scratch_model(s: &mut Session, cnn: &SimpleCnn, run: &ScratchRun) -> Result<()> {
    // ANCHOR: scratch
    let eval = run.dataset(Split::Eval)?;
    let layer = cnn.card().roles.last_conv; // conv3
    let mut rows = Vec::new();
    for i in (0..eval.len()).filter(|&i| eval.labels[..i].iter().all(|&l| l != eval.labels[i])).take(6) {
        let img = eval.images.get(i)?.to_device(&s.device)?; // (3, 32, 32) for Fashion-MNIST
        let top = top_k(cnn, &img, 1)?.remove(0);
        let truth = &eval.classes[eval.labels[i] as usize];
        s.record(&format!("scratch_{}_pred", key(truth)), top.name.as_str());
        s.record(&format!("scratch_{}_p", key(truth)), top.prob);
        rows.push(vec![
            Panel::image(&img, format!("{truth} → {} {:.2}", top.name, top.prob))?,
            Panel::magnitude(&attr::saliency(cnn, &img, top.class)?, "saliency")?,
            Panel::overlay(
                &img,
                &attr::grad_cam(cnn, &img, top.class, layer)?.cam,
                format!("Grad-CAM {layer}"),
            )?,
        ]);
    }
    // ANCHOR_END: scratch
    let spec = GridSpec::new(150)
        .title("SimpleCNN (chapter 1), true → predicted")
        .colorbar(Colorbar::magnitude("saliency"))
        .colorbar(Colorbar::overlay("Grad-CAM"))
        .photo();
    s.save_grid(&rows, &spec, ("simple-cnn", run.data.slug(), "attribution"))
}
