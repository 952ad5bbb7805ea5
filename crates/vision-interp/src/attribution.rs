//! Attribution: which input pixels, or which regions of a feature map, a class score depends on.
//!
//! Vanilla saliency (Simonyan et al. 2014), SmoothGrad (Smilkov et al. 2017), integrated
//! gradients (Sundararajan et al. 2017) and Grad-CAM (Selvaraju et al. 2017). Every function
//! takes images as `(3, H, W)` in [0, 1] and differentiates through the model's preprocessing,
//! so gradients are with respect to the pixels a reader sees.
use anyhow::{ensure, Result};
use candle_core::{DType, IndexOp, Tensor, Var, D};
use rand::rngs::StdRng;

use crate::models::{Model, Taps};

/// A class and its probability.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub class: usize,
    pub name: String,
    pub prob: f32,
}

impl std::fmt::Display for Prediction {
    /// `282 tiger cat (0.39)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = crate::imagenet::short_name(&self.name);
        write!(f, "{} {name} ({:.2})", self.class, self.prob)
    }
}

/// The `k` most probable classes of one image.
pub fn top_k(model: &dyn Model, img: &Tensor, k: usize) -> Result<Vec<Prediction>> {
    let logits = model.logits(&img.unsqueeze(0)?)?.squeeze(0)?;
    let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_vec1::<f32>()?;
    let mut idx: Vec<usize> = (0..probs.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    Ok(idx
        .into_iter()
        .take(k)
        .map(|class| Prediction { class, name: model.classes()[class].clone(), prob: probs[class] })
        .collect())
}

/// The probability of `class` for one image `(3, H, W)`.
pub fn probability(model: &dyn Model, img: &Tensor, class: usize) -> Result<f32> {
    let logits = model.logits(&img.unsqueeze(0)?)?.squeeze(0)?;
    Ok(candle_nn::ops::softmax(&logits, D::Minus1)?.get(class)?.to_scalar::<f32>()?)
}

// ANCHOR: input_gradients
/// Gradient of the class logit (pre-softmax score) `y_c` with respect to each image of a batch
/// `(N, 3, H, W)`, and the logits themselves.
pub fn input_gradients(model: &dyn Model, batch: &Tensor, class: usize) -> Result<(Tensor, Tensor)> {
    let x = Var::from_tensor(&batch.to_dtype(DType::F32)?)?;
    let logits = model.logits(x.as_tensor())?;
    // The images of a batch do not interact (BatchNorm is in evaluation mode), so the gradient
    // of the summed scores with respect to image n is the gradient of y_c(image n).
    let score = logits.i((.., class))?.sum_all()?;
    let grads = score.backward()?;
    let g = grads.get(x.as_tensor()).cloned().unwrap_or(x.as_tensor().zeros_like()?);
    Ok((g, logits.detach()))
}
// ANCHOR_END: input_gradients

/// `(3, H, W)` → `(H, W)`: the largest absolute value over the colour channels.
pub fn channel_max_abs(t: &Tensor) -> Result<Tensor> {
    Ok(t.abs()?.max(0)?)
}

// ANCHOR: saliency
/// Vanilla saliency `S = max_k |∂y_c/∂x_k|` (class `c`, colour channel `k`), an `(H, W)` map.
pub fn saliency(model: &dyn Model, img: &Tensor, class: usize) -> Result<Tensor> {
    let (g, _) = input_gradients(model, &img.unsqueeze(0)?, class)?;
    channel_max_abs(&g.squeeze(0)?)
}
// ANCHOR_END: saliency

/// SmoothGrad: the mean saliency of `samples` noisy copies `x + N(0, σ²)`, with
/// `σ = noise · (max x − min x)`. Copies are processed `batch` at a time.
pub fn smoothgrad(
    model: &dyn Model,
    img: &Tensor,
    class: usize,
    samples: usize,
    noise: f32,
    batch: usize,
    rng: &mut StdRng,
) -> Result<Tensor> {
    ensure!(samples > 0 && batch > 0, "SmoothGrad needs at least one sample");
    let range = (img.max_all()? - img.min_all()?)?.to_scalar::<f32>()?;
    let sigma = noise * range.max(1e-6);
    let pb = crate::progress::bar(samples as u64, "SmoothGrad");
    let mut sum: Option<Tensor> = None;
    let mut done = 0;
    while done < samples {
        let n = batch.min(samples - done);
        let noise = crate::rng::randn(rng, (n, 3, img.dim(1)?, img.dim(2)?), 0.0, sigma, img.device())?;
        let noisy = img.unsqueeze(0)?.broadcast_add(&noise)?;
        let (g, _) = input_gradients(model, &noisy, class)?;
        let maps = g.abs()?.max(1)?.sum(0)?; // Σ over the copies of max_c |g|
        sum = Some(match sum {
            None => maps,
            Some(s) => (s + maps)?,
        });
        done += n;
        pb.inc(n as u64);
    }
    pb.finish_and_clear();
    Ok((sum.expect("samples > 0") / samples as f64)?)
}

/// The result of integrated gradients.
pub struct IntegratedGradients {
    /// `(x − x') ⊙ mean gradient along the straight path`, `(3, H, W)`, signed.
    pub attributions: Tensor,
    /// `(α, y_class(x' + α(x − x')))` at every step of the path.
    pub path_scores: Vec<(f32, f32)>,
    /// `(Σ attributions, y(x) − y(x'))`: equal for an exact path integral (completeness).
    pub completeness: (f32, f32),
}

// ANCHOR: integrated_gradients
/// Integrated gradients from `baseline` to `img` with `steps` trapezoid intervals.
pub fn integrated_gradients(
    model: &dyn Model,
    img: &Tensor,
    baseline: &Tensor,
    class: usize,
    steps: usize,
    batch: usize,
) -> Result<IntegratedGradients> {
    ensure!(steps > 0 && batch > 0, "integrated gradients needs at least one step");
    let alphas: Vec<f32> = (0..=steps).map(|k| k as f32 / steps as f32).collect();
    let diff = (img - baseline)?;
    let mut grad_sum = diff.zeros_like()?;
    let mut path_scores = Vec::with_capacity(alphas.len());
    let pb = crate::progress::bar(alphas.len() as u64, "IG path");
    for chunk in alphas.chunks(batch) {
        let a = Tensor::from_slice(chunk, (chunk.len(), 1, 1, 1), img.device())?;
        let points = baseline.unsqueeze(0)?.broadcast_add(&a.broadcast_mul(&diff.unsqueeze(0)?)?)?;
        let (g, logits) = input_gradients(model, &points, class)?;
        // ANCHOR: solution-ig-trapezoid Weight each point's gradient by the trapezoid rule (½ at α = 0 and α = 1, 1 elsewhere) and add the weighted gradients of the chunk to `grad_sum`
        // Trapezoid rule: the two ends count half.
        let w: Vec<f32> = chunk.iter().map(|&al| if al == 0.0 || al == 1.0 { 0.5 } else { 1.0 }).collect();
        let w = Tensor::from_vec(w, (chunk.len(), 1, 1, 1), img.device())?;
        grad_sum = (grad_sum + g.broadcast_mul(&w)?.sum(0)?)?;
        // ANCHOR_END: solution-ig-trapezoid
        let scores = logits.i((.., class))?.to_vec1::<f32>()?;
        path_scores.extend(chunk.iter().copied().zip(scores));
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    let attributions = (diff * (grad_sum / steps as f64)?)?;
    let total = attributions.sum_all()?.to_scalar::<f32>()?;
    let gap = path_scores.last().expect("steps > 0").1 - path_scores[0].1;
    Ok(IntegratedGradients { attributions, path_scores, completeness: (total, gap) })
}
// ANCHOR_END: integrated_gradients

/// The result of Grad-CAM at one layer.
pub struct GradCam {
    /// `ReLU(Σ_k α_k A^k)`, at the layer's resolution `(h, w)`, not normalised.
    pub cam: Tensor,
    /// Channel weights `α_k = mean_ij ∂y_c/∂A^k_ij`.
    pub alphas: Tensor,
}

// ANCHOR: grad_cam
/// Grad-CAM of `class` at `layer`. The gradient with respect to the layer's activation is
/// read from a probe added there (Candle keeps gradients of `Var`s only).
pub fn grad_cam(model: &dyn Model, img: &Tensor, class: usize, layer: &str) -> Result<GradCam> {
    model.layer(layer)?;
    let x = model.preprocess(&img.unsqueeze(0)?)?;
    let acts = model.forward_taps(&x, &Taps::layers(&["logits"]).probe(layer))?;
    let a = acts.get(layer)?.squeeze(0)?; // (C, h, w)
    let score = acts.get("logits")?.i((0, class))?;
    let grads = score.backward()?;
    let probe = acts.probe(layer)?;
    let g = match grads.get(probe.as_tensor()) {
        Some(g) => g.squeeze(0)?,
        None => a.zeros_like()?,
    };
    let (alphas, cam) = cam_map(&g, &a.detach())?;
    Ok(GradCam { cam, alphas })
}

/// The channel weights `α (C)` and the map `(h, w)` from the class score's gradient `g` and the
/// activation `a`, both `(C, h, w)`.
fn cam_map(g: &Tensor, a: &Tensor) -> Result<(Tensor, Tensor)> {
    // ANCHOR: solution-grad-cam-map Return (alphas, cam): alphas (C) is the mean of g over each channel's positions, cam (h, w) is ReLU(Σ_k alphas_k a_k), summed over the channels
    let alphas = g.mean(D::Minus1)?.mean(D::Minus1)?; // (C)
    let cam = a.broadcast_mul(&alphas.reshape((alphas.dim(0)?, 1, 1))?)?.sum(0)?.relu()?;
    Ok((alphas, cam))
    // ANCHOR_END: solution-grad-cam-map
}
// ANCHOR_END: grad_cam

/// Spearman rank correlation of two equally long lists of values (ties get average ranks);
/// `None` when either list is constant (an all-zero map has no ranks to correlate).
pub fn spearman(a: &[f32], b: &[f32]) -> Option<f32> {
    fn ranks(v: &[f32]) -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            let avg = (i + j) as f64 / 2.0;
            for &k in &idx[i..=j] {
                r[k] = avg;
            }
            i = j + 1;
        }
        r
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return None;
    }
    Some((sab / (saa * sbb).sqrt()) as f32)
}

/// `ρ=0.42`, or `ρ undefined` when a map is constant.
pub fn format_rho(rho: Option<f32>) -> String {
    rho.map_or_else(|| "ρ undefined".to_owned(), |r| format!("ρ={r:.2}"))
}

// ANCHOR: deletion
/// Deletion and insertion curves (Petsiuk et al., 2018) of an attribution map: the class
/// probability as the pixels are changed in the map's order, most important first.
pub struct PixelCurves {
    /// `(fraction of pixels set to black, p(class))`: a faithful map makes it fall fast.
    pub deletion: Vec<(f32, f32)>,
    /// `(fraction of pixels restored into a blurred copy, p(class))`: a faithful map makes it
    /// rise fast.
    pub insertion: Vec<(f32, f32)>,
}

impl PixelCurves {
    /// The areas under the two curves (trapezoid rule over the fraction of pixels).
    pub fn areas(&self) -> (f32, f32) {
        let area = |c: &[(f32, f32)]| c.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum();
        (area(&self.deletion), area(&self.insertion))
    }
}

/// Deletion and insertion curves of `map` (`(H, W)`, larger = more important; a coarser map is
/// upsampled bilinearly) for `class` of `img` `(3, H, W)`, at `steps + 1` evenly spaced
/// fractions of the pixels. Insertion starts from `blurred`, a copy of the photo with its
/// detail removed.
pub fn deletion_insertion(
    model: &dyn Model,
    img: &Tensor,
    blurred: &Tensor,
    map: &Tensor,
    class: usize,
    steps: usize,
) -> Result<PixelCurves> {
    ensure!(steps > 0, "deletion curves need at least one step");
    let (_, h, w) = img.dims3()?;
    let m = crate::figure::Map::from_tensor(map)?.resize(w as u32, h as u32);
    let mut order: Vec<usize> = (0..h * w).collect();
    order.sort_by(|&a, &b| m.data[b].total_cmp(&m.data[a]).then(a.cmp(&b)));
    // rank[p] = position of pixel p in the order; a pixel is changed at fraction k/steps
    // when its rank is below k·HW/steps.
    let mut rank = vec![0f32; h * w];
    for (r, &p) in order.iter().enumerate() {
        rank[p] = r as f32;
    }
    let rank = Tensor::from_vec(rank, (1, 1, h, w), img.device())?;
    let cuts: Vec<f32> = (0..=steps).map(|k| (k * h * w) as f32 / steps as f32).collect();
    let cut = Tensor::from_slice(&cuts, (cuts.len(), 1, 1, 1), img.device())?;
    let changed = rank.broadcast_lt(&cut)?.to_dtype(img.dtype())?; // (steps+1, 1, H, W)
    let kept = (1.0 - &changed)?;
    let (x, b) = (img.unsqueeze(0)?, blurred.unsqueeze(0)?);
    let deleted = x.broadcast_mul(&kept)?; // changed pixels are black
    let inserted = (x.broadcast_mul(&changed)? + b.broadcast_mul(&kept)?)?;
    let prob = |batch: Tensor| -> Result<Vec<(f32, f32)>> {
        let mut out = Vec::with_capacity(cuts.len());
        for (k, chunk) in (0..cuts.len()).collect::<Vec<_>>().chunks(8).enumerate() {
            let logits = model.logits(&batch.narrow(0, k * 8, chunk.len())?)?;
            let p = candle_nn::ops::softmax(&logits, D::Minus1)?.i((.., class))?.to_vec1::<f32>()?;
            out.extend(chunk.iter().map(|&i| i as f32 / steps as f32).zip(p));
        }
        Ok(out)
    };
    Ok(PixelCurves { deletion: prob(deleted)?, insertion: prob(inserted)? })
}
// ANCHOR_END: deletion

// ANCHOR: receptive_field
/// The receptive field of `layer`, measured: the side of the square of input pixels whose
/// change moves the layer's centre position (the gradient of the sum of its channels there is
/// non-zero), and the layer's stride (input size over the layer's size). Measured at
/// `size` × `size` on noise in [0, 1]; a field that reaches the border is measured again at
/// twice the size, up to 2048 px.
pub fn receptive_field(
    model: &dyn Model,
    layer: &str,
    size: usize,
    device: &candle_core::Device,
    rng: &mut StdRng,
) -> Result<(usize, f32)> {
    model.layer(layer)?;
    let mut size = size;
    loop {
        let noise = crate::rng::rand_uniform(rng, (1, 3, size, size), 0.0, 1.0, device)?;
        let x = Var::from_tensor(&noise)?;
        let acts = model.forward_taps(&model.preprocess(x.as_tensor())?, &Taps::layers(&[layer]))?;
        let a = acts.get(layer)?;
        ensure!(a.rank() == 4, "`{layer}` has no spatial positions, so no receptive field");
        let (_, _, lh, lw) = a.dims4()?;
        let centre = a.i((0, .., lh / 2, lw / 2))?.sum_all()?;
        let g = centre.backward()?.get(x.as_tensor()).map(|g| g.abs()).transpose()?;
        let g = match g {
            Some(g) => g.sum(1)?.squeeze(0)?.to_vec2::<f32>()?,
            None => anyhow::bail!("`{layer}`: the centre position does not depend on the input"),
        };
        let rows: Vec<usize> = (0..size).filter(|&i| g[i].iter().any(|&v| v > 0.0)).collect();
        let cols: Vec<usize> = (0..size).filter(|&j| g.iter().any(|r| r[j] > 0.0)).collect();
        let (Some(&r0), Some(&r1), Some(&c0), Some(&c1)) =
            (rows.first(), rows.last(), cols.first(), cols.last())
        else {
            anyhow::bail!("`{layer}`: no input pixel moves its centre position");
        };
        let touches = r0 == 0 || c0 == 0 || r1 == size - 1 || c1 == size - 1;
        if !touches || size >= 2048 {
            return Ok(((r1 - r0 + 1).max(c1 - c0 + 1), size as f32 / lh as f32));
        }
        size *= 2;
    }
}
// ANCHOR_END: receptive_field
