//! The render loop: parametrised image → random transformations → the model's preprocessing →
//! upsampling to the model's size → forward pass to the objective's layers → loss → gradient →
//! Adam step on the image parameters.
use anyhow::{bail, Result};
use rand::rngs::StdRng;

use super::{compose, ImageParam, Objective, Transform};
use crate::models::{Model, Taps};
use crate::optim::Adam;

/// Settings of one render (Lucent's defaults: 512 steps, Adam with learning rate 0.05, the
/// standard transformations, upsampling to 224 px).
#[derive(Debug, Clone)]
pub struct RenderConfig {
    pub steps: usize,
    pub lr: f64,
    pub transforms: Vec<Transform>,
    /// Steps after which the current images are kept (the last step always is).
    pub thresholds: Vec<usize>,
    /// Inputs smaller than this are upsampled to it (bilinear, corners aligned).
    pub min_input: Option<usize>,
    pub progress: bool,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            steps: 512,
            lr: 0.05,
            transforms: super::transform::standard(),
            thresholds: vec![],
            min_input: Some(224),
            progress: true,
        }
    }
}

/// What a render returns: the images at each threshold `(step, (B, 3, H, W))`, and the loss
/// after every step.
pub struct Rendered {
    pub images: Vec<(usize, candle_core::Tensor)>,
    pub losses: Vec<f32>,
}

// ANCHOR: render
/// Optimises `param` to minimise `objective` on `model`.
pub fn render(
    model: &dyn Model,
    objective: &Objective,
    param: &ImageParam,
    cfg: &RenderConfig,
    rng: &mut StdRng,
) -> Result<Rendered> {
    for layer in &objective.layers {
        model.layer(layer)?;
    }
    let mut opt = Adam::from_vars(param.vars(), cfg.lr)?;
    let taps = Taps::layers(&objective.layers);
    let bar = cfg.progress.then(|| crate::progress::bar(cfg.steps as u64, "render"));
    let (mut images, mut losses) = (Vec::new(), Vec::with_capacity(cfg.steps));
    for step in 1..=cfg.steps {
        let img = param.image()?;
        let mut x = model.preprocess(&compose(&cfg.transforms, &img, rng)?)?;
        if let Some(min) = cfg.min_input {
            let (_, _, h, w) = x.dims4()?;
            if h < min || w < min {
                x = crate::ops::resize_bilinear_aligned(&x, min, min)?;
            }
        }
        // An objective on the image alone needs no forward pass.
        let acts = if taps.layers.is_empty() { Default::default() } else { model.forward_taps(&x, &taps)? };
        let loss = objective.loss(&acts, &img)?;
        let l = loss.to_scalar::<f32>()?;
        if !l.is_finite() {
            bail!("the loss of `{}` became {l} at step {step}: the render diverged (lower the learning rate, now {})", objective.name, cfg.lr);
        }
        opt.backward_step(&loss)?;
        losses.push(l);
        if cfg.thresholds.contains(&step) || step == cfg.steps {
            images.push((step, param.image()?.detach()));
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(Rendered { images, losses })
}
// ANCHOR_END: render
