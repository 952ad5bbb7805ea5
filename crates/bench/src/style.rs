//! `bench style`: one style transfer as chapter 11 runs it (the content photo and the first
//! painting at 224 px, Lucid's recipe: a Fourier image in a batch with the photo and the
//! painting, Lucent's standard transformations, mean-L1 content loss and Gram-matrix style loss,
//! Adam 0.05), beside the same algorithm in Lucent (`render_vis` with the notebook's loss
//! functions, `peers/style.py`), in the same run: on Lite0 (timm's `tf_efficientnet_lite0` on
//! the peer's side, the same layers under Lucent's hook names) and on InceptionV1 with Lucid's
//! own layers (hash-built weights, which Lucent loads from the same file).
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use chapter_11_style_transfer::style::{self, StyleStatistic};
use vision_interp::imageio::load_square;
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{self, Model};
use vision_interp::optvis::{render, RenderConfig};

use crate::report::{short_model, Report};
use crate::{flags, run_peer, table, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Image side in pixels (chapter 11: the model's input size, 224)
    #[arg(long, default_value_t = 224)]
    size: u32,
    /// Steps (chapter 11: 128; Lucid: 512)
    #[arg(long, default_value_t = 64)]
    steps: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let content = vision_interp::asset("photos/collection/monuments/france-eiffelTower.jpg");
    let painting = vision_interp::asset("photos/paintings/church-at-auvers.jpg");
    let dir = tempfile::tempdir()?;
    let weights = dir.path().join("inceptionv1.safetensors");
    candle_core::safetensors::save(&hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu)?, &weights)?;
    let lite0 = models::load("efficientnet-lite0", None, device)?;
    let inception: Box<dyn Model> = Box::new(InceptionV1::load(Some(&weights), device)?);
    // Lucent names a module by its path with underscores: timm's Lite0 stem ends in `bn1`
    // (batch norm with its ReLU6), its stages are `blocks_0` … `blocks_6`.
    let lucent_name = |model: &str, layer: &str| match (model, layer.strip_prefix("stage")) {
        ("efficientnet-lite0", Some(k)) => format!("blocks_{k}"),
        ("efficientnet-lite0", None) if layer == "stem" => "bn1".to_owned(),
        _ => layer.to_owned(),
    };
    for m in [lite0.as_ref(), inception.as_ref()] {
        let roles = chapter_11_style_transfer::STYLE
            .chosen(m.name())
            .context("the model has no style-transfer layers")?;
        let (photo, _) = load_square(&content, a.size, device)?;
        let (style_img, _) = load_square(&painting, a.size, device)?;
        let obj = style::transfer_objective(
            roles.content,
            roles.style,
            roles.content_weight,
            1.0,
            StyleStatistic::Gram,
        );
        let cfg = RenderConfig { steps: a.steps, min_input: None, progress: false, ..Default::default() };
        let time = |cfg: &RenderConfig| -> Result<f64> {
            let mut rng = vision_interp::rng::seeded(0);
            let param = style::transfer_batch(&photo, &style_img, &mut rng, device)?;
            let t = std::time::Instant::now();
            render(m, &obj, &param, cfg, &mut rng)?;
            Ok(t.elapsed().as_secs_f64())
        };
        time(&RenderConfig { steps: 2, ..cfg.clone() })?; // warm-up
        let mut rows = vec![Timing::ours(time(&cfg)?)];
        if let Some(python) = python {
            let names = |l: &[&str]| l.iter().map(|l| lucent_name(m.name(), l)).collect::<Vec<_>>().join(",");
            let mut args = flags(&[
                ("--model", m.name().to_owned()),
                ("--content", content.display().to_string()),
                ("--style", painting.display().to_string()),
                ("--content-layers", names(roles.content)),
                ("--style-layers", names(roles.style)),
                ("--content-weight", roles.content_weight.to_string()),
                ("--size", a.size.to_string()),
                ("--steps", a.steps.to_string()),
                ("--threads", threads.to_string()),
            ]);
            if m.name() == "inceptionv1" {
                args.extend(flags(&[("--weights", weights.display().to_string())]));
            }
            let peer = run_peer(python, "style.py", &args)?;
            r.peer_versions(&peer);
            let name = peer["name"].as_str().context("peer name")?.to_string();
            rows.push(Timing { name, key: "peer", seconds: peer["seconds"].as_f64().context("seconds")? });
        }
        let title = format!(
            "{}: one style transfer, {} px, {} steps (content {}, style {})",
            m.name(),
            a.size,
            a.steps,
            roles.content.join("+"),
            roles.style.join("+")
        );
        table(r, &short_model(m.name()), &title, "transfers/min", 60.0, &rows);
    }
    Ok(())
}
