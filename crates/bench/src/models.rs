//! `bench models`: forward pass, and forward pass plus the gradient of one logit with respect
//! to the input, at 224 px, for InceptionV1 (against Lucent), EfficientNet-Lite0 and MobileNetV2
//! (against timm) and GoogLeNet (against torchvision). InceptionV1 uses the parity fixtures'
//! hash-built weights, which the PyTorch peer loads from the same file; Lite0 uses the book's
//! weights here, the others hash-built ones where no weights file is found, and the peers
//! random ones (the speed does not depend on the values).
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Var};
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{self, Model};

use crate::report::{short_model, Report};
use crate::{run_peer, table, time_it, Timing};

#[derive(clap::Args)]
pub struct Args {
    /// Models to measure
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "inceptionv1,efficientnet-lite0,googlenet,mobilenet-v2"
    )]
    models: Vec<String>,
    /// Timed runs (the median is reported)
    #[arg(long, default_value_t = 10)]
    runs: usize,
}

pub fn run(a: &Args, device: &Device, python: Option<&Path>, threads: usize, r: &mut Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let input = hash_init::input(0, 224, &Device::Cpu)?;
    let input_path = dir.path().join("input.safetensors");
    candle_core::safetensors::save(
        &[("input".to_string(), input.clone())].into_iter().collect(),
        &input_path,
    )?;
    let x = input.to_device(device)?;
    for name in &a.models {
        let weights = dir.path().join(format!("{name}.safetensors"));
        let model: Box<dyn Model> = if name == "inceptionv1" {
            candle_core::safetensors::save(
                &hash_init::tensors(&tensor_shapes(), 0, &Device::Cpu)?,
                &weights,
            )?;
            Box::new(InceptionV1::load(Some(&weights), device)?)
        } else {
            match models::load(name, None, device) {
                Ok(m) => m,
                Err(_) => models::entry(name)?.hashed(0, device)?,
            }
        };
        let class = 1;
        let forward = time_it(2, a.runs, 1, || {
            model.logits(&x)?.to_vec2::<f32>()?;
            Ok(())
        })?;
        let gradient = time_it(2, a.runs, 1, || {
            let xv = Var::from_tensor(&x)?;
            let logit = model.logits(xv.as_tensor())?.get(0)?.get(class)?;
            let g = logit.backward()?;
            g.get(xv.as_tensor()).context("input gradient")?.sum_all()?.to_scalar::<f32>()?;
            Ok(())
        })?;
        let mut fwd = vec![Timing::ours(forward)];
        let mut grad = vec![Timing::ours(gradient)];
        if let Some(python) = python {
            let mut args = vec![
                "--model".to_string(),
                name.clone(),
                "--input".into(),
                input_path.display().to_string(),
                "--class-index".into(),
                class.to_string(),
                "--runs".into(),
                a.runs.to_string(),
                "--threads".into(),
                threads.to_string(),
            ];
            if name == "inceptionv1" {
                args.extend(["--weights".to_string(), weights.display().to_string()]);
            }
            let peer = run_peer(python, "models.py", &args)?;
            r.peer_versions(&peer);
            let peer_name = peer["name"].as_str().context("peer name")?.to_string();
            fwd.push(Timing {
                name: peer_name.clone(),
                key: "peer",
                seconds: peer["forward_s"].as_f64().context("forward_s")?,
            });
            grad.push(Timing {
                name: peer_name,
                key: "peer",
                seconds: peer["gradient_s"].as_f64().context("gradient_s")?,
            });
        }
        let m = short_model(name);
        table(
            r,
            &format!("{m}_forward"),
            &format!("{name}: forward, 1 × 3 × 224 × 224"),
            "images/s",
            1.0,
            &fwd,
        );
        let title = format!("{name}: forward + gradient of one logit w.r.t. the input");
        table(r, &format!("{m}_forward_input_gradient"), &title, "images/s", 1.0, &grad);
    }
    // The headline: what every attribution method of chapter 2 costs, on the book's model.
    if a.models.iter().any(|m| m == "efficientnet-lite0") {
        r.headline("lite0_forward_input_gradient");
    }
    Ok(())
}
