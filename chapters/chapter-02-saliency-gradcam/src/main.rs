//! Chapter 2: which pixels, and which regions, does a class score depend on?
//!
//! Vanilla saliency, SmoothGrad, integrated gradients and Grad-CAM on EfficientNet-Lite0 and
//! real photos, then two checks: Grad-CAM separates two classes in one image, and the maps
//! change when the model's weights are randomised (Adebayo et al., 2018).
use anyhow::Result;
use clap::Parser;
use vision_interp::attribution::{self as attr, top_k};
use vision_interp::cli::{ModelArgs, RunArgs, Session};
use vision_interp::data::Split;
use vision_interp::figure::{line_chart, GridSpec, Panel, Series};
use vision_interp::handoff::{ScratchData, ScratchRun};
use vision_interp::imageio::{photo, side_by_side, to_tensor};
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
    #[arg(long)]
    samples: Option<usize>,
    /// Steps of the integrated-gradients path [default: 128; 32 with --quick]
    #[arg(long)]
    ig_steps: Option<usize>,
    /// Data chapter 1 trained its SimpleCNN on
    #[arg(long, value_enum, default_value_t)]
    dataset: ScratchData,
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
    let samples = args.samples.unwrap_or(if s.quick { 8 } else { 32 });
    let steps = args.ig_steps.unwrap_or(if s.quick { 32 } else { 128 });

    // ANCHOR: methods
    let (mut rows, mut ig_paths) = (Vec::new(), Vec::new());
    for name in PHOTOS {
        let img = photo(name, size, &s.device)?; // (3, 224, 224) in [0, 1]
        let top = top_k(m, &img, 3)?;
        println!("{name}: {}", top.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "));
        let class = top[0].class;
        let saliency = attr::saliency(m, &img, class)?; // (224, 224)
        let smooth = attr::smoothgrad(m, &img, class, samples, 0.15, 8, &mut s.rng)?;
        let ig = attr::integrated_gradients(m, &img, &img.zeros_like()?, class, steps, 16)?;
        let (total, gap) = ig.completeness; // equal when the path integral is exact
        println!("  integrated gradients: Σ attributions {total:.2}, y(x) − y(black) {gap:.2}");
        let cam = attr::grad_cam(m, &img, class, roles.last_conv)?.cam; // (7, 7) for Lite0
        rows.push(vec![
            Panel::image(&img, format!("{} {:.2}", short_name(&top[0].name), top[0].prob))?,
            Panel::magnitude(&saliency, "saliency")?,
            Panel::magnitude(&smooth, format!("SmoothGrad n={samples}"))?,
            Panel::signed(&ig.attributions.sum(0)?, format!("IG, {steps} steps"))?,
            Panel::overlay(&img, &cam, format!("Grad-CAM {}", roles.last_conv))?,
        ]);
        let label = format!("{name}: {}", short_name(&top[0].name));
        ig_paths.push(Series { label, points: ig.path_scores });
    }
    // ANCHOR_END: methods
    let columns =
        ["input, top-1", "|∂y/∂x| max over RGB", "mean of noisy maps", "Σ_RGB (x−x')·∫∇y", "ReLU(Σ α_k A^k)"];
    let spec = GridSpec::new(200).columns(&columns).photo();
    s.save_grid(&rows, &spec, (m.name(), "photos", "attribution-methods"))?;

    // ANCHOR: ig_path
    let title = "Top-1 logit along the straight path from black to the photo";
    let chart = line_chart(&ig_paths, title, "α (0 = black, 1 = photo)", "logit", (720, 400))?;
    // ANCHOR_END: ig_path
    s.save(&chart, &s.figure(m.name(), "photos", "ig-path"))?;

    // ANCHOR: layers
    let cat = photo("chelsea.png", size, &s.device)?;
    let mut row = vec![Panel::image(&cat, "input")?];
    for &layer in roles.cam_ladder {
        let l = m.layer(layer)?;
        let cam = attr::grad_cam(m, &cat, tiger_cat, layer)?.cam;
        row.push(Panel::overlay(&cat, &cam, format!("{layer} ({}×{}×{})", l.channels, l.height, l.width))?);
    }
    // ANCHOR_END: layers
    let spec = GridSpec::new(180)
        .title(&format!("Grad-CAM for 'tiger cat' at {} depths", roles.cam_ladder.len()))
        .photo();
    s.save_grid(&[row], &spec, (m.name(), "chelsea", "gradcam-layers"))?;

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
    let spec = GridSpec::new(300).title("One image, two classes").photo();
    s.save_grid(&rows, &spec, (m.name(), "cat-and-espresso", "class-discriminative"))?;

    // ANCHOR: sanity
    let (cascade, last_conv) = (roles.cascade, roles.last_conv); // logits, head, stage6, … for Lite0
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    let trained = (attr::saliency(m, &cat, tiger_cat)?, attr::grad_cam(m, &cat, tiger_cat, last_conv)?.cam);
    let mut sal_row = vec![Panel::magnitude(&trained.0, "trained")?];
    let mut cam_row = vec![Panel::overlay(&cat, &trained.1, "trained")?];
    let w = args.model.weights.as_deref();
    for k in 1..=cascade.len() {
        // Every layer from the logits down to cascade[k - 1] gets random weights.
        let random = args.model.entry()?.load_randomized(w, &s.device, &cascade[..k], args.run.seed)?;
        let sal = attr::saliency(random.as_ref(), &cat, tiger_cat)?;
        let cam = attr::grad_cam(random.as_ref(), &cat, tiger_cat, last_conv)?.cam;
        let rho_sal = attr::spearman(&flat(&trained.0)?, &flat(&sal)?);
        let rho_cam = attr::spearman(&flat(&trained.1)?, &flat(&cam)?);
        let down_to = cascade[k - 1];
        println!("randomised down to {down_to:>6}: Spearman ρ saliency {rho_sal:.2}, Grad-CAM {rho_cam:.2}");
        sal_row.push(Panel::magnitude(&sal, format!("→{down_to} ρ={rho_sal:.2}"))?);
        cam_row.push(Panel::overlay(&cat, &cam, format!("→{down_to} ρ={rho_cam:.2}"))?);
    }
    // ANCHOR_END: sanity
    let spec = GridSpec::new(120)
        .title("Cascading randomisation from the logits down")
        .rows(&["saliency", &format!("Grad-CAM {last_conv}")])
        .photo();
    s.save_grid(&[sal_row, cam_row], &spec, (m.name(), "chelsea", "sanity-randomization"))?;

    // The 10-class SimpleCNN that chapter 1 trains from scratch (on Fashion-MNIST by default).
    let run = ScratchRun::new(args.dataset, s.quick);
    let cnn = run.trained(args.run.seed, &s.device)?; // chapter 1's, or trained now if absent
    explain_scratch_model(&mut s, &cnn, &run)?;
    s.finish();
    Ok(())
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
    let spec = GridSpec::new(150).title("SimpleCNN (chapter 1), true → predicted").photo();
    s.save_grid(&rows, &spec, ("simple-cnn", run.data.slug(), "attribution"))
}
