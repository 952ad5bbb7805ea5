//! The render loop: parametrised image → random transformations → the model's preprocessing →
//! upsampling to the model's size → forward pass to the objective's layers → loss → gradient →
//! Adam step on the image parameters.
use anyhow::{bail, ensure, Result};
use candle_core::Tensor;
use rand::rngs::StdRng;

use super::{compose, ImageParam, Objective, Parametrisation, Transform};
use crate::models::{Activations, Model, Taps};
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
    /// Every input is resized to exactly this size instead (bilinear, corners aligned):
    /// Lucent's `fixed_image_size`, for models trained on small images.
    pub fixed_input: Option<usize>,
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
            fixed_input: None,
            progress: true,
        }
    }
}

impl RenderConfig {
    /// A preprocessed batch resized as the model receives it: to exactly `fixed_input`, or up
    /// to `min_input` when smaller.
    pub fn model_input(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        Ok(if let Some(size) = self.fixed_input {
            crate::ops::resize_bilinear_aligned(x, size, size)?
        } else if let Some(min) = self.min_input.filter(|&min| h < min || w < min) {
            crate::ops::resize_bilinear_aligned(x, min, min)?
        } else {
            x.clone()
        })
    }
}

impl RenderConfig {
    /// The book's recipe for chapters 3, 6, 8 and 9: a 128-pixel image upsampled to 224 px,
    /// `steps` steps (128 by default), Lucent's defaults otherwise; with `quick`, a 64-pixel
    /// image upsampled to 96 px and 24 steps. Returns the image size and the settings.
    pub fn book(quick: bool, steps: Option<usize>) -> (usize, Self) {
        let steps = steps.unwrap_or(if quick { 24 } else { 128 });
        let (size, input) = if quick { (64, 96) } else { (128, 224) };
        (size, Self { steps, min_input: Some(input), ..Default::default() })
    }
}

/// What a render returns: the images at each threshold `(step, (B, 3, H, W))`, the loss
/// after every step, and how long the steps took.
pub struct Rendered {
    pub images: Vec<(usize, Tensor)>,
    pub losses: Vec<f32>,
    pub elapsed: std::time::Duration,
}

impl Rendered {
    /// The final images, `(B, 3, H, W)`.
    pub fn last(&self) -> &Tensor {
        &self.images.last().expect("the last step is always kept").1
    }

    /// Optimisation steps per second of wall-clock time.
    pub fn steps_per_second(&self) -> f64 {
        self.losses.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// One line for a chapter's output: the loss before and after, and the speed.
    pub fn summary(&self) -> String {
        let (first, last) =
            (self.losses.first().unwrap_or(&f32::NAN), self.losses.last().unwrap_or(&f32::NAN));
        format!("loss {first:>9.3} → {last:>9.3}  {:>5.1} steps/s", self.steps_per_second())
    }
}

/// [`render`] from a fresh parametrisation `spec`, drawn from `rng` on `device`.
pub fn render_new(
    model: &dyn Model,
    objective: &Objective,
    spec: &crate::optvis::ImageSpec,
    cfg: &RenderConfig,
    rng: &mut StdRng,
    device: &candle_core::Device,
) -> Result<Rendered> {
    let param = ImageParam::new(spec, rng, device)?;
    render(model, objective, &param, cfg, rng)
}

// ANCHOR: render
/// Optimises `param` to minimise `objective` on `model`.
pub fn render(
    model: &dyn Model,
    objective: &Objective,
    param: &dyn Parametrisation,
    cfg: &RenderConfig,
    rng: &mut StdRng,
) -> Result<Rendered> {
    ensure!(cfg.steps > 0, "a render needs at least one step (steps = 0)");
    for layer in &objective.layers {
        model.layer(layer)?;
    }
    let mut opt = Adam::from_vars(param.vars(), cfg.lr)?;
    let taps = Taps::layers(&objective.layers);
    let bar = cfg.progress.then(|| crate::progress::bar(cfg.steps as u64, "render"));
    let (mut images, mut losses) = (Vec::new(), Vec::with_capacity(cfg.steps));
    let start = std::time::Instant::now();
    for step in 1..=cfg.steps {
        let img = param.image()?;
        // Random transformations, the model's preprocessing and resizing, the forward pass.
        let acts = forward(model, cfg, &img, param.fixed_len(), &taps, rng)?;
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
    Ok(Rendered { images, losses, elapsed: start.elapsed() })
}
// ANCHOR_END: render

// ANCHOR: forward
/// One step's forward pass of the batch `img`: Lucent's random transformations (`cfg`), the
/// model's preprocessing, resizing to the model's input (`cfg`), and the layers of `taps`.
///
/// The last `fixed` images of the batch are constants (a photo beside the optimised image:
/// feature inversion, style transfer). They take the same random transformations as the
/// others (the same draws from a copy of `rng`) but go through them and the model in a pass
/// of their own that records no graph, so that the backward pass covers only the optimised
/// images. Transformations and models are per-image (batch norm in evaluation mode), so the
/// activations and gradients are those of one pass over the whole batch. An objective on the
/// image alone needs no forward pass.
pub fn forward(
    model: &dyn Model,
    cfg: &RenderConfig,
    img: &Tensor,
    fixed: usize,
    taps: &Taps,
    rng: &mut StdRng,
) -> Result<Activations> {
    let view = |x: &Tensor, rng: &mut StdRng| -> Result<Tensor> {
        cfg.model_input(&model.preprocess(&compose(&cfg.transforms, x, rng)?)?)
    };
    let b = img.dim(0)?;
    if fixed == 0 || fixed >= b || !taps.probes.is_empty() {
        let x = view(img, rng)?;
        return if taps.layers.is_empty() {
            Ok(Activations::default())
        } else {
            model.forward_taps(&x, taps)
        };
    }
    let mut same_draws = rng.clone();
    let optimised = view(&img.narrow(0, 0, b - fixed)?, rng)?;
    if taps.layers.is_empty() {
        return Ok(Activations::default());
    }
    let constants = view(&img.narrow(0, b - fixed, fixed)?.detach(), &mut same_draws)?;
    model.forward_taps(&optimised, taps)?.cat(model.forward_taps(&constants, taps)?)
}
// ANCHOR_END: forward

// ANCHOR: score
/// The value `objective` maximises (its loss, negated) on `images` `(B, 3, H, W)` without the
/// random transformations, resized as `cfg` resizes them: what a finished render reached,
/// comparable between renders whatever their transformations.
pub fn score(model: &dyn Model, objective: &Objective, images: &Tensor, cfg: &RenderConfig) -> Result<f32> {
    let x = cfg.model_input(&model.preprocess(images)?)?;
    let acts = if objective.layers.is_empty() {
        Default::default()
    } else {
        model.forward_taps(&x, &Taps::layers(&objective.layers))?
    };
    Ok(-objective.loss(&acts, images)?.to_scalar::<f32>()?)
}
// ANCHOR_END: score

/// The logit and the softmax probability of class `class` for each image of `images`
/// `(B, 3, H, W)`, without the random transformations and resized as `cfg` resizes them: what
/// a render of that class reached, as the model saw it.
pub fn class_verdicts(
    model: &dyn Model,
    images: &Tensor,
    class: usize,
    cfg: &RenderConfig,
) -> Result<Vec<(f32, f32)>> {
    let x = cfg.model_input(&model.preprocess(images)?)?;
    let logits = model.forward_taps(&x, &Taps::layers(&["logits"]))?.get("logits")?.flatten_from(1)?;
    let p = candle_nn::ops::softmax(&logits, 1)?;
    let pick =
        |t: &Tensor| -> Result<Vec<f32>> { Ok(t.narrow(1, class, 1)?.flatten_all()?.to_vec1::<f32>()?) };
    Ok(pick(&logits)?.into_iter().zip(pick(&p)?).collect())
}
