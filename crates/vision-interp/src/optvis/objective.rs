//! Objectives with Lucent's algebra and sign: each is a *loss to minimise* (the negative of
//! what is maximised), they add, subtract, negate and scale, and each knows the layers it
//! reads. `"layer:unit"` is a channel objective.
use std::ops::{Add, Mul, Neg, Sub};
use std::sync::Arc;

use anyhow::{ensure, Result};
use candle_core::{Tensor, D};

use crate::models::{parse_unit, Activations, Model};

type LossFn = dyn Fn(&Activations, &Tensor) -> Result<Tensor> + Send + Sync;

// ANCHOR: objective
/// A loss computed from recorded activations (and the input image, for penalties on it).
#[derive(Clone)]
pub struct Objective {
    /// Layers the objective reads (the forward pass records them).
    pub layers: Vec<String>,
    /// A short description for captions and logs (`channel stage5:12`).
    pub name: String,
    f: Arc<LossFn>,
}
// ANCHOR_END: objective

impl Objective {
    fn new(
        layers: Vec<String>,
        name: String,
        f: impl Fn(&Activations, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Self {
        Self { layers, name, f: Arc::new(f) }
    }

    /// The loss, a scalar tensor.
    pub fn loss(&self, acts: &Activations, image: &Tensor) -> Result<Tensor> {
        (self.f)(acts, image)
    }

    /// `"layer:unit"` as a channel objective, checked against the model's layers.
    pub fn parse(model: &dyn Model, spec: &str) -> Result<Self> {
        let u = parse_unit(model, spec)?;
        Ok(channel(&u.layer, u.unit, None))
    }

    /// The sum of several objectives (zero objectives: an error).
    pub fn sum(objs: impl IntoIterator<Item = Objective>) -> Result<Self> {
        let mut it = objs.into_iter();
        let first = it.next().ok_or_else(|| anyhow::anyhow!("the sum of no objectives"))?;
        Ok(it.fold(first, |a, b| a + b))
    }
}

// ANCHOR: custom
/// Any loss as an objective (Lucent's `@wrap_objective`): `f(activations, image)` returns a
/// scalar to minimise, reading the activations of `layers` with `acts.get(layer)` (they are
/// recorded because they are named here) or the image itself.
pub fn custom(
    name: &str,
    layers: &[&str],
    f: impl Fn(&Activations, &Tensor) -> Result<Tensor> + Send + Sync + 'static,
) -> Objective {
    let layers = layers.iter().map(|l| l.to_string()).collect();
    Objective::new(layers, name.to_owned(), f)
}
// ANCHOR_END: custom

/// The activations of `layer`, restricted to image `batch` when given.
fn acts_of(acts: &Activations, layer: &str, batch: Option<usize>) -> Result<Tensor> {
    let t = acts.get(layer)?;
    Ok(match batch {
        Some(b) => {
            let n = t.dim(0)?;
            ensure!(b < n, "{layer}: batch index {b} is out of range for a batch of {n} image(s)");
            t.narrow(0, b, 1)?
        }
        None => t.clone(),
    })
}

/// Channel `unit` of `a`, the activations of `layer` `(B, C, …)`, with an error that names the
/// layer when it has no such channel.
fn unit_of(a: &Tensor, layer: &str, unit: usize) -> Result<Tensor> {
    let c = a.dim(1)?;
    ensure!(unit < c, "{layer} has units 0..={} ({c} channels); unit {unit} is out of range", c - 1);
    Ok(a.narrow(1, unit, 1)?)
}

// ANCHOR: channel
/// Channel `unit` of `layer`, averaged over batch (or image `batch`) and space: `−mean`.
/// On a layer without space (logits) it is the unit's value.
pub fn channel(layer: &str, unit: usize, batch: Option<usize>) -> Objective {
    let l = layer.to_owned();
    let name = format!("channel {layer}:{unit}");
    Objective::new(vec![layer.into()], name, move |acts, _| {
        Ok(unit_of(&acts_of(acts, &l, batch)?, &l, unit)?.mean_all()?.neg()?)
    })
}
// ANCHOR_END: channel

/// Unit `unit` of `layer` at the centre position (`h/2`, `w/2`, the bottom-right of the central
/// 2 × 2 for even sizes, as in Lucent): `−mean` over the batch.
pub fn neuron(layer: &str, unit: usize, batch: Option<usize>) -> Objective {
    let l = layer.to_owned();
    let name = format!("neuron {layer}:{unit}");
    Objective::new(vec![layer.into()], name, move |acts, _| {
        let a = acts_of(acts, &l, batch)?;
        let (_, _, h, w) = a.dims4()?;
        Ok(unit_of(&a, &l, unit)?.narrow(2, h / 2, 1)?.narrow(3, w / 2, 1)?.mean_all()?.neg()?)
    })
}

/// Cosine similarity between the channel vector and `direction` at every position, averaged
/// (Lucent's `direction`), negated.
pub fn direction(layer: &str, direction: &Tensor, batch: Option<usize>) -> Objective {
    let (l, d) = (layer.to_owned(), direction.clone());
    Objective::new(vec![layer.into()], format!("direction {layer}"), move |acts, _| {
        neg_mean_cosine(&acts_of(acts, &l, batch)?, &d)
    })
}

/// Minus the mean, over batch and positions, of the cosine similarity between the channel
/// vector of `a` `(N, C, H, W)` and `direction` `(C)` (PyTorch's eps 1e-8 on the norms'
/// product).
fn neg_mean_cosine(a: &Tensor, direction: &Tensor) -> Result<Tensor> {
    let d = direction.to_dtype(a.dtype())?.to_device(a.device())?.reshape((1, a.dim(1)?, 1, 1))?;
    let dot = a.broadcast_mul(&d)?.sum_keepdim(1)?;
    let norms = a.sqr()?.sum_keepdim(1)?.sqrt()?.broadcast_mul(&d.sqr()?.sum_keepdim(1)?.sqrt()?)?;
    Ok(dot.broadcast_div(&norms.clamp(1e-8f32, f32::MAX)?)?.mean_all()?.neg()?)
}

/// Lucent's `direction_neuron`: the cosine similarity of the channel vector at one position
/// (`(y, x)`, by default the centre as in [`neuron`]) with `direction`, negated.
pub fn direction_neuron(
    layer: &str,
    direction: &Tensor,
    at: Option<(usize, usize)>,
    batch: Option<usize>,
) -> Objective {
    let (l, d) = (layer.to_owned(), direction.clone());
    Objective::new(vec![layer.into()], format!("direction_neuron {layer}"), move |acts, _| {
        let a = acts_of(acts, &l, batch)?;
        let (_, _, h, w) = a.dims4()?;
        let (y, x) = at.unwrap_or((h / 2, w / 2));
        ensure!(y < h && x < w, "direction_neuron: position ({y}, {x}) is outside {l}'s {h}×{w}");
        neg_mean_cosine(&a.narrow(2, y, 1)?.narrow(3, x, 1)?, &d)
    })
}

/// Lucid's `class_logit`: the logit of a class, summed over the batch (or of image `batch`),
/// negated. `label` is a class name of the model (`"tabby"`, case ignored; a unique
/// prefix or word also matches) or its index.
pub fn class_logit(model: &dyn Model, label: &str, batch: Option<usize>) -> Result<Objective> {
    let classes = model.classes();
    let class = model.class_index(label)?;
    let name = format!("class_logit {class} ({})", classes[class]);
    Ok(Objective::new(vec!["logits".into()], name, move |acts, _| {
        let a = acts_of(acts, "logits", batch)?;
        Ok(a.flatten_from(1)?.narrow(1, class, 1)?.sum_all()?.neg()?)
    }))
}

// ANCHOR: class_probability
/// A class's softmax probability, summed over the batch (or of image `batch`), negated: what
/// Lucent's `labels` objective optimises on a model whose last layer is a softmax
/// (InceptionV1's `labels:229`). Its gradient is `p_c (e_c − p)` with respect to the logits:
/// it can grow `p_c` by lowering the other logits as well as by raising `c`'s, and it vanishes
/// once `p_c` is near 1, so the image stops improving long before the logit does.
pub fn class_probability(model: &dyn Model, label: &str, batch: Option<usize>) -> Result<Objective> {
    let classes = model.classes();
    let class = model.class_index(label)?;
    let name = format!("class_probability {class} ({})", classes[class]);
    Ok(Objective::new(vec!["logits".into()], name, move |acts, _| {
        let a = acts_of(acts, "logits", batch)?.flatten_from(1)?;
        // ANCHOR: solution-softmax Return minus the softmax probability of `class`, summed over the batch, from the logits `a` (subtract the row maximum before exp)
        // Built from exp, sum and div (whose gradients Candle has), after subtracting the max.
        let e = a.broadcast_sub(&a.max_keepdim(1)?.detach())?.exp()?;
        let p = e.broadcast_div(&e.sum_keepdim(1)?)?;
        Ok(p.narrow(1, class, 1)?.sum_all()?.neg()?)
        // ANCHOR_END: solution-softmax
    }))
}
// ANCHOR_END: class_probability

// ANCHOR: diversity
/// The features that diversity compares between the images of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// Each image's Gram matrix of the layer, `G = F Fᵀ` with `F` its `C × HW` activations:
    /// which channels fire together, wherever they fire (Lucent's choice; style, not layout).
    Gram,
    /// Each image's channel means over positions: how much each channel fires.
    Pooled,
}

/// The features `f` of every image of `a` `(B, C, H, W)`, one row each, scaled to unit length
/// (Frobenius norm for a Gram matrix, PyTorch's `normalize` with eps 1e-12).
fn unit_features(a: &Tensor, f: Features) -> Result<Tensor> {
    let (b, c, h, w) = a.dims4()?;
    let rows = match f {
        Features::Gram => {
            let flat = a.reshape((b, c, h * w))?;
            flat.matmul(&flat.transpose(1, 2)?)?.reshape((b, c * c))?
        }
        Features::Pooled => a.reshape((b, c, h * w))?.mean(2)?,
    };
    Ok(rows.broadcast_div(&rows.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?)?)
}

/// `Σ_{i≠j} ⟨f̂_i, f̂_j⟩`: the cosine similarities of every ordered pair of different images.
fn pairwise_similarity_sum(a: &Tensor, f: Features) -> Result<Tensor> {
    // ANCHOR: solution-pairwise-similarity Return Σ over ordered pairs i ≠ j of ⟨f̂_i, f̂_j⟩, the rows of unit_features(a, f)
    let g = unit_features(a, f)?;
    let sim = g.matmul(&g.t()?)?; // (B, B), ones on the diagonal
    let eye = Tensor::eye(sim.dim(0)?, sim.dtype(), sim.device())?;
    Ok((sim.sum_all()? - (&sim * eye)?.sum_all()?)?)
    // ANCHOR_END: solution-pairwise-similarity
}

/// Lucent's `diversity`: minus the similarities of every pair of images' normalised Gram
/// matrices at `layer`, over the batch size, `−Σ_{i≠j} ⟨Ĝ_i, Ĝ_j⟩ / B` (use it subtracted:
/// `obj − k·diversity`).
pub fn diversity(layer: &str) -> Objective {
    diversity_of(layer, Features::Gram)
}

/// [`diversity`] on other features of the layer: `−Σ_{i≠j} ⟨f̂_i, f̂_j⟩ / B`.
pub fn diversity_of(layer: &str, features: Features) -> Objective {
    let l = layer.to_owned();
    let name = match features {
        Features::Gram => format!("diversity {layer}"),
        Features::Pooled => format!("pooled diversity {layer}"),
    };
    Objective::new(vec![layer.into()], name, move |acts, _| {
        let a = acts.get(&l)?;
        let (b, c, _, _) = a.dims4()?;
        ensure!(b >= 2, "diversity needs a batch of at least two images, not {b}");
        ensure!(
            c >= 2,
            "diversity on {l}: a layer of one channel has the same normalised Gram matrix (1) for every image, so there is nothing to pull apart; choose a layer with more channels"
        );
        Ok((pairwise_similarity_sum(a, features)? / b as f64)?.neg()?)
    })
}
// ANCHOR_END: diversity

/// How alike the images of a batch are at a layer, `a` `(B, C, H, W)` with `B ≥ 2`: the mean
/// cosine similarity of their features over the `B(B−1)` ordered pairs of different images
/// (1: the same features; 0: nothing in common).
pub fn similarity(a: &Tensor, features: Features) -> Result<f32> {
    let b = a.dim(0)?;
    ensure!(b >= 2, "similarity needs a batch of at least two images, not {b}");
    Ok(pairwise_similarity_sum(a, features)?.to_scalar::<f32>()? / (b * (b - 1)) as f32)
}

/// Lucent's `channel_interpolate`: image `n` of a batch of `B` weighs channel `unit1` of
/// `layer1` by `1 − n/(B−1)` and channel `unit2` of `layer2` by `n/(B−1)`, so the batch moves
/// from one feature to the other. The two layers must have one spatial size: the means of
/// layers of different resolutions are on different scales, and "halfway" would mean nothing.
pub fn channel_interpolate(layer1: &str, unit1: usize, layer2: &str, unit2: usize) -> Objective {
    let (l1, l2) = (layer1.to_owned(), layer2.to_owned());
    let name = format!("interpolate {layer1}:{unit1} → {layer2}:{unit2}");
    Objective::new(merged(std::slice::from_ref(&l1), std::slice::from_ref(&l2)), name, move |acts, _| {
        let (a1, a2) = (acts.get(&l1)?, acts.get(&l2)?);
        let b = a1.dim(0)?;
        ensure!(b >= 2, "channel_interpolate needs a batch of at least two images, not {b}");
        let (s1, s2) = (&a1.dims()[2..], &a2.dims()[2..]);
        ensure!(
            s1 == s2,
            "channel_interpolate between layers of different sizes: {l1} is {s1:?} and {l2} is {s2:?}; interpolate between units of one layer, or of layers of one size"
        );
        let (c1, c2) = (unit_of(a1, &l1, unit1)?, unit_of(a2, &l2, unit2)?);
        // ANCHOR: solution-interpolate-weights Return −Σ_n [(1 − w_n)·mean(c1[n]) + w_n·mean(c2[n])] with w_n = n / (B − 1)
        // Per image means, weighted by 1 − w_n and w_n.
        let w: Vec<f32> = (0..b).map(|n| n as f32 / (b - 1) as f32).collect();
        let w = Tensor::new(w.as_slice(), a1.device())?.to_dtype(a1.dtype())?;
        let (m1, m2) = (c1.flatten_from(1)?.mean(1)?, c2.flatten_from(1)?.mean(1)?);
        let total = ((m1 * w.affine(-1.0, 1.0)?)?.sum_all()? + (m2 * w)?.sum_all()?)?;
        Ok(total.neg()?)
        // ANCHOR_END: solution-interpolate-weights
    })
}

/// Lucent's `alignment`: a penalty (positive) on the squared difference of `layer` between
/// images `i` and `i + d` of the batch, `Σ_{d=1..4} Σ_i mean((a_i − a_{i+d})²) / ratio^d`, so
/// that neighbouring images of an interpolation stay alike.
pub fn alignment(layer: &str, decay_ratio: f64) -> Objective {
    let l = layer.to_owned();
    Objective::new(vec![layer.into()], format!("alignment {layer}"), move |acts, _| {
        let a = acts.get(&l)?;
        let b = a.dim(0)?;
        let mut total = a.zeros_like()?.sum_all()?;
        for d in 1..=4usize {
            for i in 0..b.saturating_sub(d) {
                let diff = (a.narrow(0, i, 1)? - a.narrow(0, i + d, 1)?)?.sqr()?.mean_all()?;
                total = (total + (diff / decay_ratio.powi(d as i32))?)?;
            }
        }
        Ok(total)
    })
}

// ANCHOR: dot_compare
/// Lucid's `dot_compare`, the objective of feature inversion: image 0's activations `φ₀` at
/// `layer` against those of image `target` of the same batch (the photo, in the batch so that
/// it is transformed with the image), `−⟨φ₀, φ_t⟩ · max(cos(φ₀, φ_t), 0.1)^p` with `p` =
/// `cossim_pow`. The loss is `−‖φ₀‖ ‖φ_t‖ cos^(1+p)`: a larger `φ₀` pays at every `p`, and a
/// larger `p` makes a direction away from the photo's cost more. Lucid divides the dot
/// product by `‖φ₀‖` alone, which is `‖φ_t‖ cos`: the same objective up to the constant
/// factor `‖φ_t‖^p`. Lucid floors that ratio at 0.1; here the cosine itself is held at 0.1 or
/// more (the book's choice), so that a fractional power of a negative cosine is never taken.
pub fn dot_compare(layer: &str, target: usize, cossim_pow: f64) -> Objective {
    let l = layer.to_owned();
    let name = format!("dot_compare {layer} (cossim_pow {cossim_pow})");
    Objective::new(vec![layer.into()], name, move |acts, _| {
        let a = acts.get(&l)?;
        let n = a.dim(0)?;
        ensure!(
            target > 0 && target < n,
            "dot_compare: the target is image {target} of a batch of {n}; it must be another image than 0, the one optimised"
        );
        let (x, t) = (a.get(0)?.flatten_all()?, a.get(target)?.flatten_all()?);
        let dot = (&x * &t)?.sum_all()?;
        if cossim_pow == 0.0 {
            return Ok(dot.neg()?);
        }
        // ANCHOR: solution-dot-compare Return −⟨x, t⟩ · max(cos(x, t), 0.1)^cossim_pow (1e-6 added to the norms' product)
        let norms = (x.sqr()?.sum_all()?.sqrt()? * t.sqr()?.sum_all()?.sqrt()?)?;
        let cos = (&dot / (norms + 1e-6)?)?.clamp(0.1f32, f32::MAX)?;
        Ok((dot * cos.powf(cossim_pow)?)?.neg()?)
        // ANCHOR_END: solution-dot-compare
    })
}
// ANCHOR_END: dot_compare

// ANCHOR: dot_each
/// One target activation vector per image (chapter 12's activation grid): image `b` of the
/// batch is pulled towards `targets[b]` `(B, C)`, the loss being minus the dot product of its
/// channel vector with the target, averaged over its positions and over the batch (the
/// notebook sums its `dot_compare` over the cells; the mean reads the same for any number of
/// cells, and Adam's steps do not depend on the loss's scale).
pub fn dot_each(layer: &str, targets: &Tensor) -> Objective {
    let (l, t) = (layer.to_owned(), targets.clone());
    Objective::new(vec![layer.into()], format!("dot with a target per image at {layer}"), move |acts, _| {
        let a = acts.get(&l)?;
        let (b, c) = (a.dim(0)?, a.dim(1)?);
        ensure!(
            t.dims() == [b, c],
            "{l}: {b} images of {c} channels, but the targets are {:?} (one {c}-vector per image)",
            t.dims()
        );
        let t = t.to_dtype(a.dtype())?.to_device(a.device())?.reshape((b, c, 1, 1))?;
        let per_position = a.broadcast_mul(&t)?.sum_keepdim(1)?.flatten_from(1)?;
        Ok(per_position.mean_all()?.neg()?)
    })
}
// ANCHOR_END: dot_each

/// Lucent's `blur_input_each_step`: `−½ Σ (x − blur(x))²`, the blurred image held fixed (no
/// gradient). Subtracted, `obj − k·blur_input_each_step()`, each step moves the image a
/// fraction `k` of the way towards its own 3 × 3 blur: a smoothness prior.
pub fn blur_input_each_step() -> Objective {
    Objective::new(vec![], "blur input".into(), move |_, x| {
        let (_, c, _, _) = x.dims4()?;
        let k = Tensor::new(&[[0.5f32, 1.0, 0.5], [1.0, 1.0, 1.0], [0.5, 1.0, 0.5]], x.device())?;
        let k = k.reshape((1, 1, 3, 3))?.repeat((c, 1, 1, 1))?;
        let d = x.detach();
        let blur = (d.conv2d(&k, 1, 1, 1, c)? / d.ones_like()?.conv2d(&k, 1, 1, 1, c)?)?;
        Ok(((x - blur)?.sqr()?.sum_all()? * -0.5)?)
    })
}

/// Lucid's L1 penalty on the image, `Σ|x − c|`, returned positive so that `obj + k·l1(c)`
/// penalises (Lucid's recipes subtract its maximised form).
pub fn l1(constant: f64) -> Objective {
    Objective::new(vec![], "L1".into(), move |_, x| Ok((x - constant)?.abs()?.sum_all()?))
}

// ANCHOR: penalties
/// Lucid's L2 penalty, `√(ε + Σ(x − c)²)` with ε = 10⁻⁶: the norm, not its square; positive
/// (see [`l1`]).
pub fn l2(constant: f64) -> Objective {
    Objective::new(vec![], "L2".into(), move |_, x| Ok(((x - constant)?.sqr()?.sum_all()? + 1e-6)?.sqrt()?))
}

/// Total variation of the image, `Σ |x[i+1, j] − x[i, j]| + |x[i, j+1] − x[i, j]|`, positive.
pub fn total_variation() -> Objective {
    Objective::new(vec![], "total variation".into(), move |_, x| {
        let (_, _, h, w) = x.dims4()?;
        let dy = (x.narrow(2, 1, h - 1)? - x.narrow(2, 0, h - 1)?)?.abs()?.sum_all()?;
        let dx = (x.narrow(D::Minus1, 1, w - 1)? - x.narrow(D::Minus1, 0, w - 1)?)?.abs()?.sum_all()?;
        Ok((dy + dx)?)
    })
}
// ANCHOR_END: penalties

fn merged(a: &[String], b: &[String]) -> Vec<String> {
    let mut v = a.to_vec();
    for l in b {
        if !v.contains(l) {
            v.push(l.clone());
        }
    }
    v
}

// ANCHOR: algebra
impl Add for Objective {
    type Output = Objective;
    fn add(self, rhs: Objective) -> Objective {
        let layers = merged(&self.layers, &rhs.layers);
        let name = format!("{} + {}", self.name, rhs.name);
        let (f, g) = (self.f, rhs.f);
        Objective::new(layers, name, move |a, x| Ok((f(a, x)? + g(a, x)?)?))
    }
}

impl Mul<f64> for Objective {
    type Output = Objective;
    fn mul(self, k: f64) -> Objective {
        let name = format!("{k}·({})", self.name);
        let f = self.f;
        Objective::new(self.layers, name, move |a, x| Ok((f(a, x)? * k)?))
    }
}
// ANCHOR_END: algebra

impl Mul<Objective> for f64 {
    type Output = Objective;
    fn mul(self, o: Objective) -> Objective {
        o * self
    }
}

impl Neg for Objective {
    type Output = Objective;
    fn neg(self) -> Objective {
        self * -1.0
    }
}

impl Sub for Objective {
    type Output = Objective;
    fn sub(self, rhs: Objective) -> Objective {
        self + (-rhs)
    }
}
