//! Chapter 2: which pixels, and which regions, does a class score depend on?
//!
//! Vanilla saliency, SmoothGrad, integrated gradients and Grad-CAM on EfficientNet-Lite0 and
//! real photos, then two checks: Grad-CAM separates two classes in one image, and the maps
//! change when the model's weights are randomised (Adebayo et al., 2018).
// ANCHOR: all
use anyhow::Result;
use clap::Parser;
use vision_interp::attribution::{self as attr, top_k};
use vision_interp::cli::{CommonArgs, Session};
use vision_interp::figure::{grid, line_chart, overlay, Colormap, GridSpec, Map, Panel, Series};
use vision_interp::imagenet::short_name;
use vision_interp::{asset, imageio, models, Tensor};

#[derive(Parser)]
#[command(about = "Saliency maps, SmoothGrad, integrated gradients and Grad-CAM")]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

const PHOTOS: [&str; 4] = [
    "chelsea.png",
    "coffee.png",
    "grace_hopper.jpg",
    "camera.png",
];

// ANCHOR: panels
/// Magnitude maps: clip at the 99th percentile, inferno. Signed maps: blue-white-red.
fn magnitude(map: &Tensor, label: &str) -> Result<Panel> {
    let map = Map::from_tensor(map)?.normalize_quantile(0.99);
    Ok(Panel::new(map.colorize(Colormap::Inferno), label))
}

fn signed(map: &Tensor, label: &str) -> Result<Panel> {
    let map = Map::from_tensor(map)?.normalize_signed(0.99);
    Ok(Panel::new(map.colorize(Colormap::BlueWhiteRed), label))
}

/// Grad-CAM: divide by the maximum, upsample bilinearly, lay over the photo (α = 0.5).
fn cam_overlay(img: &Tensor, cam: &Tensor, label: &str) -> Result<Panel> {
    let photo = imageio::to_rgb_image(img)?;
    let map = Map::from_tensor(cam)?.normalize_max();
    Ok(Panel::new(
        overlay(&photo, &map, Colormap::Inferno, 0.5),
        label,
    ))
}
// ANCHOR_END: panels

fn main() -> Result<()> {
    let args = Args::parse();
    let mut s = Session::start(&args.common, "chapter-02-saliency-gradcam")?;
    let model = models::load(
        &args.common.model,
        args.common.weights.as_deref(),
        &s.device,
    )?;
    let m = model.as_ref();
    let size = m.input_size() as u32;
    let (samples, steps) = if s.quick { (8, 32) } else { (32, 128) };

    // ANCHOR: methods
    let mut rows = Vec::new();
    let mut ig_paths = Vec::new();
    for name in PHOTOS {
        let img = imageio::load_photo(&asset(&format!("photos/{name}")), size, &s.device)?;
        let top = top_k(m, &img, 3)?;
        println!(
            "{name}: {}",
            top.iter()
                .map(|p| format!("{} {} ({:.2})", p.class, short_name(&p.name), p.prob))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let class = top[0].class;
        let saliency = attr::saliency(m, &img, class)?; // (H, W)
        let smooth = attr::smoothgrad(m, &img, class, samples, 0.15, 8, &mut s.rng)?;
        let black = img.zeros_like()?;
        let ig = attr::integrated_gradients(m, &img, &black, class, steps, 16)?;
        let (total, gap) = ig.completeness; // equal when the path integral is exact
        println!("  integrated gradients: Σ attributions {total:.2}, y(x) − y(black) {gap:.2}");
        ig_paths.push(Series {
            label: format!("{name}: {}", short_name(&top[0].name)),
            points: ig.path_scores.clone(),
        });
        let cam = attr::grad_cam(m, &img, class, "head")?; // (7, 7)
        rows.push(vec![
            Panel::new(
                imageio::to_rgb_image(&img)?,
                format!("{} {:.2}", short_name(&top[0].name), top[0].prob),
            ),
            magnitude(&saliency, "saliency")?,
            magnitude(&smooth, &format!("SmoothGrad n={samples}"))?,
            signed(&ig.attributions.sum(0)?, &format!("IG, {steps} steps"))?,
            cam_overlay(&img, &cam.cam, "Grad-CAM head")?,
        ]);
    }
    // ANCHOR_END: methods
    let titles = [
        "input, top-1",
        "|∂y/∂x| max over RGB",
        "mean of noisy maps",
        "Σ_RGB (x−x')·∫∇y",
        "ReLU(Σ α_k A^k)",
    ];
    let spec = GridSpec {
        title: "",
        col_titles: &titles.map(String::from),
        row_titles: &[],
        cell: 200,
    };
    s.save(
        &grid(&rows, &spec)?,
        &s.figure(m.name(), "photos", "attribution-methods"),
    )?;

    // ANCHOR: layers
    let cat = imageio::load_photo(&asset("photos/chelsea.png"), size, &s.device)?;
    let tiger_cat = 282;
    let mut row = vec![Panel::new(imageio::to_rgb_image(&cat)?, "input")];
    for layer in ["stage3", "stage4", "stage5", "stage6", "head"] {
        let info = m.layer(layer)?;
        let cam = attr::grad_cam(m, &cat, tiger_cat, layer)?;
        row.push(cam_overlay(
            &cat,
            &cam.cam,
            &format!("{layer} ({}×{}×{})", info.channels, info.height, info.width),
        )?);
    }
    // ANCHOR_END: layers
    let spec = GridSpec {
        title: "Grad-CAM for 'tiger cat' at five depths",
        col_titles: &[],
        row_titles: &[],
        cell: 180,
    };
    s.save(
        &grid(&[row], &spec)?,
        &s.figure(m.name(), "chelsea", "gradcam-layers"),
    )?;

    // ANCHOR: two_classes
    let left = imageio::read_rgb(&asset("photos/chelsea.png"))?;
    let right = imageio::read_rgb(&asset("photos/coffee.png"))?;
    let both = imageio::to_tensor(&imageio::side_by_side(&left, &right, size), &s.device)?;
    let mut rows = Vec::new();
    for class in [tiger_cat, 967] {
        let name = short_name(&m.classes()[class]).to_owned();
        let logit = m
            .logits(&both.unsqueeze(0)?)?
            .get(0)?
            .get(class)?
            .to_scalar::<f32>()?;
        rows.push(vec![
            Panel::new(
                imageio::to_rgb_image(&both)?,
                format!("class {class} '{name}', logit {logit:.1}"),
            ),
            magnitude(&attr::saliency(m, &both, class)?, "saliency")?,
            cam_overlay(
                &both,
                &attr::grad_cam(m, &both, class, "head")?.cam,
                "Grad-CAM head",
            )?,
        ]);
    }
    // ANCHOR_END: two_classes
    let spec = GridSpec {
        title: "One image, two classes",
        col_titles: &[],
        row_titles: &[],
        cell: 300,
    };
    s.save(
        &grid(&rows, &spec)?,
        &s.figure(m.name(), "cat-and-espresso", "class-discriminative"),
    )?;

    // ANCHOR: ig_path
    let title = "Top-1 logit along the straight path from black to the photo";
    let chart = line_chart(
        &ig_paths,
        title,
        "α (0 = black, 1 = photo)",
        "logit",
        (720, 400),
    )?;
    // ANCHOR_END: ig_path
    s.save(&chart, &s.figure(m.name(), "photos", "ig-path"))?;

    // ANCHOR: sanity
    let cascade = [
        "logits", "head", "stage6", "stage5", "stage4", "stage3", "stage2", "stage1", "stage0",
        "stem",
    ];
    let base_sal = attr::saliency(m, &cat, tiger_cat)?;
    let base_cam = attr::grad_cam(m, &cat, tiger_cat, "head")?.cam;
    let mut sal_row = vec![magnitude(&base_sal, "trained")?];
    let mut cam_row = vec![cam_overlay(&cat, &base_cam, "trained")?];
    let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
    for k in 1..=cascade.len() {
        let random = models::load_randomized(
            m.name(),
            args.common.weights.as_deref(),
            &s.device,
            &cascade[..k],
            &mut s.rng,
        )?;
        let sal = attr::saliency(random.as_ref(), &cat, tiger_cat)?;
        let cam = attr::grad_cam(random.as_ref(), &cat, tiger_cat, "head")?.cam;
        let (rs, rc) = (
            attr::spearman(&flat(&base_sal)?, &flat(&sal)?),
            attr::spearman(&flat(&base_cam)?, &flat(&cam)?),
        );
        println!(
            "randomised down to {:>6}: Spearman ρ saliency {rs:.2}, Grad-CAM {rc:.2}",
            cascade[k - 1]
        );
        sal_row.push(magnitude(&sal, &format!("→{} ρ={rs:.2}", cascade[k - 1]))?);
        cam_row.push(cam_overlay(
            &cat,
            &cam,
            &format!("→{} ρ={rc:.2}", cascade[k - 1]),
        )?);
    }
    // ANCHOR_END: sanity
    let rows_t = ["saliency".to_owned(), "Grad-CAM head".to_owned()];
    let spec = GridSpec {
        title: "Cascading randomisation from the logits down",
        col_titles: &[],
        row_titles: &rows_t,
        cell: 120,
    };
    s.save(
        &grid(&[sal_row, cam_row], &spec)?,
        &s.figure(m.name(), "chelsea", "sanity-randomization"),
    )?;
    s.finish();
    Ok(())
}
// ANCHOR_END: all
