//! Feature accentuation (Hamblin et al., *Feature Accentuation*, 2024; the Faccent library):
//! feature visualisation that starts from a photo and is kept close to it.
//!
//! Each step draws several random views of the image (square crops of 5–99 % of the side,
//! a little noise, resized to the model's input) and runs them as one batch. The loss is
//! `−objective + α · β · distance`, where the distance is the mean L2 distance between the
//! image's and the seed's activations at an early layer, over the same views, and the balance
//! β is a constant measured once, on the first step's views: the L1 size of the objective's
//! gradient with respect to the parameters divided by the distance's (Faccent's `obj/reg
//! ratio`). At α = 1 the two terms' gradients are then equally large at the first step, and
//! only there. The gradient of
//! the objective alone with respect to the pixels, accumulated over the steps, is the
//! *transparency* map: where the image had to change.
use anyhow::{bail, ensure, Result};
use candle_core::{Device, Tensor, Var};
use rand::{rngs::StdRng, Rng};

use vision_interp::figure::Map;
use vision_interp::image::{Rgb, RgbImage};
use vision_interp::models::{Model, Taps};
use vision_interp::optim::Adam;
use vision_interp::optvis::{ImageParam, Objective};

/// Settings of one accentuation; the default is Faccent's `render_vis` with
/// `accent_reg_layer` set: 99 steps of Adam at 0.05, 16 views a step, crops of 5–99 % of the
/// side, noise 0.02, α = 1, a frame every 2 steps.
#[derive(Debug, Clone)]
pub struct AccentConfig {
    pub steps: usize,
    pub lr: f64,
    /// Random views per step, run as one batch.
    pub views: usize,
    /// Smallest and largest crop side, as fractions of the image's side.
    pub crop: (f64, f64),
    /// Standard deviation of the Gaussian noise (plus uniform noise of the same width).
    pub noise: f64,
    /// The layer where the image is kept close to the seed (`None`: plain visualisation from
    /// the photo, α = 0).
    pub reg_layer: Option<String>,
    /// Weight α of the regulariser: the distance enters the loss as `α · β · distance`, β the
    /// balance measured at the first step.
    pub alpha: f64,
    /// Keep a frame every this many steps (and after the last).
    pub every: usize,
    /// Stop once the objective on the whole image (no crop, no noise) exceeds this.
    pub cutoff: Option<f32>,
    /// Projected gradient descent: after each step (plain SGD at `lr`, as Faccent), move the
    /// image back onto the L2 ball of this radius around the seed.
    pub pgd: Option<f64>,
    /// Side of the model's input that every view is resized to [default: the model's].
    pub input: Option<usize>,
    pub progress: bool,
}

impl Default for AccentConfig {
    fn default() -> Self {
        Self {
            steps: 99,
            lr: 0.05,
            views: 16,
            crop: (0.05, 0.99),
            noise: 0.02,
            reg_layer: None,
            alpha: 1.0,
            every: 2,
            cutoff: None,
            pgd: None,
            input: None,
            progress: true,
        }
    }
}

/// A kept step: the image and the transparency accumulated so far, both `(1, 3, H, W)`.
pub struct Frame {
    pub step: usize,
    pub image: Tensor,
    pub transparency: Tensor,
}

/// What an accentuation returns.
pub struct Accented {
    pub frames: Vec<Frame>,
    /// The objective's value (the activation, the loss's negative) at every step, over the
    /// step's views.
    pub activations: Vec<f32>,
    /// The regulariser's distance at every step (empty without a regulariser).
    pub distances: Vec<f32>,
    /// The balance β measured at the first step (`None` without a regulariser).
    pub balance: Option<f64>,
    /// The step at which the activation cutoff stopped the run.
    pub stopped_at: Option<usize>,
}

impl Accented {
    /// The last frame.
    pub fn last(&self) -> &Frame {
        self.frames.last().expect("an accentuation keeps at least one frame")
    }
}

// ANCHOR: views
/// One step's random views: square boxes `(top, left, side)` in pixels and the noise added to
/// each crop before it is resized; the same views apply to the image and to the seed.
pub struct Views {
    boxes: Vec<(usize, usize, usize)>,
    noise: Vec<Tensor>,
    size: usize,
}

impl Views {
    /// `n` views of an `h × w` image: side fraction `δ ~ U[lo, hi]`, top-left corner uniform
    /// in `[0, 1 − δ]` (Faccent's `box_crop_2`), noise `N(0, σ²) + U[−σ/2, σ/2)` (its
    /// `uniform_gaussian_noise`), each view resized to `size`.
    pub fn draw(
        h: usize,
        w: usize,
        n: usize,
        cfg: &AccentConfig,
        size: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Self> {
        let (mut boxes, mut noise) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let d = rng.random_range(cfg.crop.0..=cfg.crop.1);
            let (y0, x0) = (rng.random_range(0.0..=1.0 - d), rng.random_range(0.0..=1.0 - d));
            let top = (y0 * h as f64) as usize;
            let left = (x0 * w as f64) as usize;
            let side_h = (((y0 + d) * h as f64) as usize).min(h) - top;
            let side_w = (((x0 + d) * w as f64) as usize).min(w) - left;
            let side = side_h.min(side_w).max(1);
            let s = cfg.noise as f32;
            let gauss = vision_interp::rng::randn(rng, (1, 3, side, side), 0.0, s, device)?;
            let unif = vision_interp::rng::rand_uniform(rng, (1, 3, side, side), -s / 2.0, s / 2.0, device)?;
            boxes.push((top, left, side));
            noise.push((gauss + unif)?);
        }
        Ok(Self { boxes, noise, size })
    }

    /// The views of a batch `(B, 3, H, W)`: `(n·B, 3, size, size)`, view-major.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = Vec::with_capacity(self.boxes.len());
        for (&(top, left, side), noise) in self.boxes.iter().zip(&self.noise) {
            let crop = x.narrow(2, top, side)?.narrow(3, left, side)?.broadcast_add(noise)?;
            out.push(vision_interp::ops::resize_antialiased(&crop, self.size, self.size)?);
        }
        Ok(Tensor::cat(&out, 0)?)
    }
}
// ANCHOR_END: views

// ANCHOR: distance
/// Faccent's `l2_compare`: the L2 distance over channels between two activations `(N, C, …)`
/// at every view and position, averaged. (A floor of 10⁻²⁰ under the square root keeps the
/// gradient finite where the two are equal.)
pub fn l2_distance(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    // ANCHOR: solution-l2-distance Return the mean over views and positions of √(Σ_channels (a − b)² + 1e-20)
    Ok(((a - b)?.sqr()?.sum_keepdim(1)? + 1e-20)?.sqrt()?.mean_all()?)
    // ANCHOR_END: solution-l2-distance
}
// ANCHOR_END: distance

/// Adam, or plain SGD for projected gradient descent (as Faccent).
enum Step {
    Adam(Adam),
    Sgd(Vec<Var>, f64),
}

impl Step {
    fn apply(&mut self, loss: &Tensor) -> Result<()> {
        match self {
            Step::Adam(a) => a.backward_step(loss),
            Step::Sgd(vars, lr) => {
                let grads = loss.backward()?;
                for v in vars.iter() {
                    if let Some(g) = grads.get(v.as_tensor()) {
                        v.set(&(v.as_tensor() - (g * *lr)?)?)?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// The sum of |∂(img · g)/∂θ| over the parametrisation's variables: the size of the gradient
/// `g` with respect to the image, carried back to the parameters.
fn param_gradient_size(param: &ImageParam, img: &Tensor, g: &Tensor) -> Result<f64> {
    let grads = (img * g)?.sum_all()?.backward()?;
    let mut total = 0.0;
    for (_, v) in param.vars() {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g.abs()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    Ok(total)
}

// ANCHOR: accentuate
/// Accentuates `objective` on `param`, which starts at `seed` `(1, 3, H, W)`
/// ([`ImageParam::from_image`]).
pub fn accentuate(
    model: &dyn Model,
    objective: &Objective,
    param: &ImageParam,
    seed: &Tensor,
    cfg: &AccentConfig,
    rng: &mut StdRng,
) -> Result<Accented> {
    ensure!(param.batch == 1, "accentuate optimises one image, not {}", param.batch);
    ensure!(cfg.alpha >= 0.0 && cfg.alpha.is_finite(), "α must be zero or positive, not {}", cfg.alpha);
    ensure!(cfg.views > 0 && cfg.steps > 0, "accentuate needs at least one view and one step");
    ensure!(
        0.0 < cfg.crop.0 && cfg.crop.0 <= cfg.crop.1 && cfg.crop.1 <= 1.0,
        "crop sizes must satisfy 0 < min ≤ max ≤ 1, not {:?}",
        cfg.crop
    );
    let mut layers = objective.layers.clone();
    for l in layers.iter().chain(&cfg.reg_layer) {
        model.layer(l)?;
    }
    let reg = cfg.reg_layer.as_deref().filter(|_| cfg.alpha > 0.0);
    if let Some(r) = reg {
        if !layers.iter().any(|l| l == r) {
            layers.push(r.to_owned());
        }
    }
    let taps = Taps::layers(&layers);
    let (_, _, h, w) = param.image()?.dims4()?;
    let size = cfg.input.unwrap_or(model.input_size());
    let mut step_fn = match cfg.pgd {
        Some(_) => Step::Sgd(param.vars().into_iter().map(|(_, v)| v).collect(), cfg.lr),
        None => Step::Adam(Adam::from_vars(param.vars(), cfg.lr)?),
    };
    let bar = cfg.progress.then(|| vision_interp::progress::bar(cfg.steps as u64, "accentuate"));
    let mut out =
        Accented { frames: vec![], activations: vec![], distances: vec![], balance: None, stopped_at: None };
    let mut transparency = seed.zeros_like()?;
    for step in 0..cfg.steps {
        let img = param.image()?;
        // The pixels as a variable of their own: the objective's gradient with respect to them
        // is the transparency map, and the two terms' gradients are combined there.
        let x = Var::from_tensor(&img.detach())?;
        let views = Views::draw(h, w, cfg.views, cfg, size, rng, seed.device())?;
        let acts = model.forward_taps(&model.preprocess(&views.apply(x.as_tensor())?)?, &taps)?;
        let obj = objective.loss(&acts, x.as_tensor())?;
        let value = -obj.to_scalar::<f32>()?;
        if !value.is_finite() {
            bail!(
                "the objective `{}` became {value} at step {step}: the accentuation diverged",
                objective.name
            );
        }
        let g_obj = obj.backward()?.get(x.as_tensor()).cloned().unwrap_or(x.as_tensor().zeros_like()?);
        transparency = (transparency + g_obj.abs()?)?;
        let mut g = g_obj.clone();
        if let Some(r) = reg {
            // The seed's views, cut and noised exactly like the image's, run only as far as
            // the regulariser's layer.
            let seed_acts =
                model.forward_taps(&model.preprocess(&views.apply(seed)?)?, &Taps::layers(&[r]))?;
            let dist = l2_distance(acts.get(r)?, &seed_acts.get(r)?.detach())?;
            out.distances.push(dist.to_scalar::<f32>()?);
            let g_reg = dist.backward()?.get(x.as_tensor()).cloned().unwrap_or(x.as_tensor().zeros_like()?);
            let balance = match out.balance {
                Some(b) => b,
                None => {
                    let (o, d) = (
                        param_gradient_size(param, &img, &g_obj)?,
                        param_gradient_size(param, &img, &g_reg)?,
                    );
                    ensure!(d > 0.0 && o.is_finite(), "the regulariser at `{r}` has no gradient at the seed: the balance cannot be measured");
                    *out.balance.insert(o / d)
                }
            };
            g = (g + (g_reg * (cfg.alpha * balance))?)?;
        }
        out.activations.push(value);
        let last = step + 1 == cfg.steps;
        let stop = match cfg.cutoff {
            Some(c) => whole_image_value(model, objective, &img.detach(), &layers, size)? > c,
            None => false,
        };
        if step % cfg.every.max(1) == 0 || last || stop {
            out.frames.push(Frame { step, image: img.detach(), transparency: transparency.clone() });
        }
        if stop {
            out.stopped_at = Some(step);
            break;
        }
        // The chain rule from the pixels' gradient to the parameters: ∂(img · g)/∂θ.
        step_fn.apply(&(&img * g.detach())?.sum_all()?)?;
        if let Some(radius) = cfg.pgd {
            project(param, seed, radius)?;
        }
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(out)
}
// ANCHOR_END: accentuate

/// The objective's value on the whole image resized to the model's input (no crop, no noise).
fn whole_image_value(
    model: &dyn Model,
    objective: &Objective,
    img: &Tensor,
    layers: &[String],
    s: usize,
) -> Result<f32> {
    let x = vision_interp::ops::resize_antialiased(img, s, s)?;
    let acts = model.forward_taps(&model.preprocess(&x)?, &Taps::layers(layers))?;
    Ok(-objective.loss(&acts, &x)?.to_scalar::<f32>()?)
}

/// Faccent's `pgd_alpha`: if the image is farther than `radius` (L2, over all pixels) from the
/// seed, moves it onto that sphere and the parameters with it.
fn project(param: &ImageParam, seed: &Tensor, radius: f64) -> Result<()> {
    let img = param.image()?.detach();
    let d = (&img - seed)?;
    let norm = d.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()? as f64;
    if norm > radius {
        param.set_image(&(seed + (d * (radius / norm))?)?)?;
    }
    Ok(())
}

// ANCHOR: alpha
/// Faccent's alpha image (`plot_alpha`): the transparency `(1, 3, H, W)` averaged over colour,
/// clipped at its `(100 − p)`-th percentile, divided by its maximum and blurred (Gaussian, σ
/// px): 1 where the image changed most for the objective, 0 where it did not.
pub fn alpha_map(transparency: &Tensor, p: f32, sigma: f32) -> Result<Map> {
    let m = Map::from_tensor(&transparency.squeeze(0)?.mean(0)?)?;
    let hi = m.percentile(100.0 - p);
    Ok(m.map(|v| v.min(hi)).normalize_max().blur(sigma))
}
// ANCHOR_END: alpha

/// The photo shown through its alpha map over `background`: `α·image + (1 − α)·background`.
pub fn with_alpha(img: &RgbImage, alpha: &Map, background: [u8; 3]) -> RgbImage {
    let a = alpha.resize(img.width(), img.height());
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let t = a.data[(y * img.width() + x) as usize].clamp(0.0, 1.0);
        let p = img.get_pixel(x, y);
        Rgb(std::array::from_fn(|c| (t * p[c] as f32 + (1.0 - t) * background[c] as f32).round() as u8))
    })
}

/// Positive and negative attribution maps of one layer (after Faccent's `posneg_cam_maps`).
pub struct PosNegCam {
    pub layer: String,
    /// `Σ_c ReLU(A ⊙ G)` `(h, w)`: where activations push the target up.
    pub positive: Tensor,
    /// `Σ_c ReLU(−A ⊙ G)`: where they push it down.
    pub negative: Tensor,
}

// ANCHOR: posneg
/// Positive and negative CAM maps of `target` (a channel objective, its layer and unit summed
/// over positions) for the image `(1, 3, H, W)` at each of `layers`: with activations `A` and
/// the target's gradient `G` there, the positive and negative parts of the product,
/// `Σ_c ReLU(±A ⊙ G)`; with `average_grads`, `G` is first averaged over positions (Grad-CAM's
/// weights). Faccent's `posneg_cam_maps` splits the gradient alone, `Σ_c A ⊙ ReLU(±G)`, which
/// is a split by sign only where `A ≥ 0` (after a ReLU); the book's split holds for a layer
/// of either sign, such as a linear bottleneck. Either way, positive minus negative is
/// `Σ_c A ⊙ G`.
pub fn posneg_cam(
    model: &dyn Model,
    img: &Tensor,
    target: (&str, usize),
    layers: &[&str],
    average_grads: bool,
) -> Result<Vec<PosNegCam>> {
    let mut taps = Taps::layers(&[target.0]);
    for l in layers {
        taps = taps.probe(l);
    }
    let acts = model.forward_taps(&model.preprocess(img)?, &taps)?;
    let t = acts.get(target.0)?.narrow(1, target.1, 1)?.sum_all()?;
    let grads = t.backward()?;
    let mut out = Vec::new();
    for l in layers {
        let a = acts.get(l)?;
        let probe = acts.probe(l)?;
        let g = grads.get(probe.as_tensor()).cloned().unwrap_or(a.zeros_like()?);
        let g = if average_grads {
            g.mean_keepdim(2)?.mean_keepdim(3)?.broadcast_as(a.shape())?.contiguous()?
        } else {
            g
        };
        let ag = (a * g)?;
        let pos = ag.relu()?.sum(1)?.squeeze(0)?;
        let neg = ag.neg()?.relu()?.sum(1)?.squeeze(0)?;
        out.push(PosNegCam { layer: l.to_string(), positive: pos, negative: neg });
    }
    Ok(out)
}
// ANCHOR_END: posneg

/// Faccent's `visualize_posneg_cam_map`, working: the photo in low-contrast grey, and over it
/// the positive map in red and the negative in blue (each scaled between its 50th and 95th
/// percentile, upsampled and blurred, σ = 2 px), opaque where either is strong.
pub fn posneg_image(img: &RgbImage, cam: &PosNegCam) -> Result<RgbImage> {
    let (w, h) = img.dimensions();
    let scaled = |t: &Tensor| -> Result<Map> {
        let m = Map::from_tensor(t)?;
        let (lo, hi) = (m.percentile(50.0), m.percentile(95.0));
        let span = (hi - lo).max(f32::MIN_POSITIVE);
        Ok(m.map(|v| ((v - lo) / span).clamp(0.0, 1.0)).resize(w, h).blur(2.0))
    };
    let (pos, neg) = (scaled(&cam.positive)?, scaled(&cam.negative)?);
    let cmap = vision_interp::figure::Colormap::BlueWhiteRed;
    Ok(RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        let p = img.get_pixel(x, y);
        let grey = (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
        let bg = (((grey - 0.5) * 0.4 + 0.5) * 255.0).clamp(0.0, 255.0);
        let (a, b) = (pos.data[i].clamp(0.0, 1.0), neg.data[i].clamp(0.0, 1.0));
        let colour = cmap.rgb((a - b + 1.0) / 2.0);
        let opacity = a.max(b);
        Rgb(std::array::from_fn(|c| (opacity * colour[c] as f32 + (1.0 - opacity) * bg).round() as u8))
    }))
}
