//! Activation grids (Olah et al., "The Building Blocks of Interpretability", 2018): what a
//! layer sees at every position of a photo, drawn as one feature visualisation per position,
//! and the few groups (non-negative factors) those positions are made of.
//!
//! - [`position_vectors`]: the layer's channel vector at each position of the photo;
//! - [`render_cells`]: the "very naive" grid, one image per position, all in one batch, each
//!   pulled towards its own position's vector ([`objective::dot_each`]);
//! - [`render_grouped`]: the "less naive" grid, where every cell image is its own image plus
//!   the group images weighted by the cell's share of each group, optimised in random
//!   mini-batches of cells: cells of the same object share their groups' images, and the grid
//!   hangs together;
//! - [`group_attribution`]: how much each group of an earlier layer contributes to each group
//!   of the grid's layer (gradient × activation, split by group), and [`attribution_account`]:
//!   how much of each group's score that split leaves out.
use anyhow::{ensure, Result};
use candle_core::{Device, Tensor, D};
use rand::rngs::StdRng;

use vision_interp::models::{Model, Taps};
use vision_interp::optim::Adam;
use vision_interp::optvis::render::forward;
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, RenderConfig, Rendered, Transform};

use crate::nmf::Nmf;

/// A layer's activations on a photo, one channel vector per position.
pub struct PositionVectors {
    /// `(rows · cols, C)`, row-major over positions.
    pub vectors: Tensor,
    pub rows: usize,
    pub cols: usize,
}

// ANCHOR: position_vectors
/// The channel vector of `layer` at every position of `photo` `(3, H, W)` in [0, 1], the
/// photo fed at its own size.
pub fn position_vectors(model: &dyn Model, photo: &Tensor, layer: &str) -> Result<PositionVectors> {
    model.layer(layer)?;
    let x = model.preprocess(&photo.unsqueeze(0)?)?;
    let a = model.forward_taps(&x, &Taps::layers(&[layer]))?.get(layer)?.squeeze(0)?; // (C, h, w)
    let (c, rows, cols) = a.dims3()?;
    let vectors = a.reshape((c, rows * cols))?.t()?.contiguous()?;
    Ok(PositionVectors { vectors, rows, cols })
}
// ANCHOR_END: position_vectors

// ANCHOR: groups
/// The positions' vectors `(N, C)` factorised into `k` groups by NMF ([`crate::nmf::nmf`],
/// `iterations` updates). A layer after a ReLU (InceptionV1's `mixed4d`) is non-negative and
/// is factorised as it is. A layer that can be negative (a linear bottleneck: Lite0's stages
/// end in a projection without activation) is split into its positive and negative parts,
/// `[max(v, 0), max(−v, 0)]` `(N, 2C)`, which NMF can factorise; each group's two halves are
/// then folded back into one signed direction `h⁺ − h⁻` `(C)`, so that `W H` reconstructs
/// `v` (to within √2 times the split's relative error, which is what `errors` reports).
pub fn groups(vectors: &Tensor, k: usize, iterations: usize, rng: &mut StdRng) -> Result<Nmf> {
    let c = vectors.dim(1)?;
    if vectors.min_all()?.to_scalar::<f32>()? >= 0.0 {
        return crate::nmf::nmf(vectors, k, iterations, rng);
    }
    let split = Tensor::cat(&[vectors.relu()?, vectors.neg()?.relu()?], 1)?;
    let mut f = crate::nmf::nmf(&split, k, iterations, rng)?;
    f.h = (f.h.narrow(1, 0, c)? - f.h.narrow(1, c, c)?)?;
    Ok(f)
}
// ANCHOR_END: groups

/// Settings of a grid's render.
#[derive(Debug, Clone)]
pub struct GridConfig {
    /// Side of each cell image in pixels; cells are fed to the model at this size (the
    /// notebook's `fixed_image_size`).
    pub cell: usize,
    pub steps: usize,
    pub lr: f64,
    pub transforms: Vec<Transform>,
    /// Largest mini-batch of cells [`render_grouped`] optimises at once (the notebook: 64).
    pub batch: usize,
    pub progress: bool,
}

impl GridConfig {
    fn render_config(&self) -> RenderConfig {
        RenderConfig {
            steps: self.steps,
            lr: self.lr,
            transforms: self.transforms.clone(),
            thresholds: vec![],
            min_input: None,
            fixed_input: Some(self.cell),
            progress: self.progress,
        }
    }
}

// ANCHOR: render_cells
/// The "very naive" grid: one FFT image per target vector `(N, C)`, image `n` pulled towards
/// `targets[n]` at `layer`, all `N` in one batch.
pub fn render_cells(
    model: &dyn Model,
    layer: &str,
    targets: &Tensor,
    cfg: &GridConfig,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Rendered> {
    let spec = ImageSpec { batch: targets.dim(0)?, ..ImageSpec::square(cfg.cell) };
    let param = ImageParam::new(&spec, rng, device)?;
    render(model, &objective::dot_each(layer, targets), &param, &cfg.render_config(), rng)
}
// ANCHOR_END: render_cells

/// What [`render_grouped`] returns.
pub struct Grouped {
    /// Every cell's final image `(N, 3, S, S)`.
    pub cells: Tensor,
    /// The group images alone `(G, 3, S, S)`.
    pub groups: Tensor,
    /// The mean loss of each pass over the cells.
    pub losses: Vec<f32>,
    /// Mini-batches per pass (each an update of the cells in it and of every group image).
    pub batches_per_pass: usize,
    pub elapsed: std::time::Duration,
}

/// The weights of each cell on each group: the NMF's `W` `(N, G)` with each group's column
/// divided by its largest value (the notebook's `groups /= groups.max(0)`), so that every
/// group is at full strength in the cell that holds the most of it.
pub fn group_weights(f: &Nmf) -> Result<Tensor> {
    let max = f.w.max_keepdim(0)?.clamp(1e-12f32, f32::MAX)?;
    Ok(f.w.broadcast_div(&max)?)
}

// ANCHOR: render_grouped
/// The "less naive" grid: cell `n` is `0.7 · own_n + 0.5 · Σ_g weights[n, g] · group_g`,
/// mixed before the colour transform and the sigmoid, where `own` and `group` are FFT images.
/// Each of the `cfg.steps` steps is a pass over all cells in a random order, in equal
/// mini-batches of at most `cfg.batch` whose gradients are summed into one Adam update: every
/// cell image and every group image gets `cfg.steps` updates, as a cell of [`render_cells`]
/// does (the notebook draws one mini-batch of 64 per step, so that each cell gets a fraction
/// of the steps; the full passes are the book's choice).
pub fn render_grouped(
    model: &dyn Model,
    layer: &str,
    targets: &Tensor,
    weights: &Tensor,
    cfg: &GridConfig,
    rng: &mut StdRng,
    device: &Device,
) -> Result<Grouped> {
    let (n, g) = weights.dims2()?;
    ensure!(targets.dim(0)? == n, "{} targets for {n} cells", targets.dim(0)?);
    let square = ImageSpec::square(cfg.cell);
    let own = ImageParam::new(&ImageSpec { batch: n, ..square }, rng, device)?;
    let groups = ImageParam::new(&ImageSpec { batch: g, ..square }, rng, device)?;
    let vars =
        own.vars().into_iter().chain(groups.vars().into_iter().map(|(k, v)| (format!("group {k}"), v)));
    let mut opt = Adam::from_vars(vars.collect(), cfg.lr)?;
    let mix = |cells: &Tensor| -> Result<Tensor> {
        let own_raw = own.raw()?.index_select(cells, 0)?;
        let group_raw = groups.raw()?.flatten_from(1)?; // (G, 3·S·S)
        let shared = weights.index_select(cells, 0)?.matmul(&group_raw)?.reshape(own_raw.shape())?;
        own.to_rgb(&((own_raw * 0.7)? + (shared * 0.5)?)?)
    };
    let (rc, taps) = (cfg.render_config(), Taps::layers(&[layer]));
    let batches = n.div_ceil(cfg.batch.max(1));
    let bar = cfg.progress.then(|| vision_interp::progress::bar(cfg.steps as u64, "render"));
    let (mut losses, start) = (Vec::with_capacity(cfg.steps), std::time::Instant::now());
    for _ in 0..cfg.steps {
        let order = rand::seq::index::sample(rng, n, n).into_vec();
        let (mut pass, mut grads) = (0.0, Vec::new());
        for b in 0..batches {
            let picked: Vec<u32> =
                order[b * n / batches..(b + 1) * n / batches].iter().map(|&i| i as u32).collect();
            let cells = Tensor::new(picked.as_slice(), device)?;
            let img = mix(&cells)?;
            let acts = forward(model, &rc, &img, 0, &taps, rng)?;
            let loss = objective::dot_each(layer, &targets.index_select(&cells, 0)?).loss(&acts, &img)?;
            let l = loss.to_scalar::<f32>()?;
            ensure!(
                l.is_finite(),
                "the grid's loss became {l} at step {}: lower the learning rate",
                losses.len() + 1
            );
            Adam::add(&mut grads, opt.gradients(&loss)?)?;
            pass += l * picked.len() as f32 / n as f32;
        }
        opt.step_with(&grads)?;
        losses.push(pass);
        if let Some(b) = &bar {
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let all = Tensor::arange(0u32, n as u32, device)?;
    Ok(Grouped {
        cells: mix(&all)?.detach(),
        groups: groups.image()?.detach(),
        losses,
        batches_per_pass: batches,
        elapsed: start.elapsed(),
    })
}
// ANCHOR_END: render_grouped

// ANCHOR: group_attribution
/// How much each NMF group of an earlier layer `a` feeds each group of a later layer `b` on
/// `photo`: entry `(i, j)` is `Σ_positions Σ_channels W_a[p, i] H_a[i, c] · ∂s_j/∂a[c, p]`,
/// the part of layer `a`'s activation that group `i` reconstructs, times the gradient of group
/// `j`'s score `s_j = Σ_p ⟨b[·, p], H_b[j]⟩` (how strongly the photo shows group `j`). Summed
/// over `i` it is the gradient × activation of `s_j` at layer `a`, up to the factorisation's
/// error: a first-order split of group `j`'s score among the groups below it. `(G_a, G_b)`.
pub fn group_attribution(
    model: &dyn Model,
    photo: &Tensor,
    (layer_a, groups_a): (&str, &Nmf),
    (layer_b, groups_b): (&str, &Nmf),
) -> Result<Tensor> {
    let x = model.preprocess(&photo.unsqueeze(0)?)?;
    let mut columns = Vec::new();
    for j in 0..groups_b.h.dim(0)? {
        let acts = model.forward_taps(&x, &Taps::layers(&[layer_b]).probe(layer_a))?;
        let b = acts.get(layer_b)?.squeeze(0)?; // (C_b, h, w)
        let direction = groups_b.h.get(j)?.reshape((b.dim(0)?, 1, 1))?;
        let score = b.broadcast_mul(&direction)?.sum_all()?;
        let grads = score.backward()?;
        let probe = acts.probe(layer_a)?;
        let g =
            grads.get(probe.as_tensor()).map_or_else(|| probe.as_tensor().zeros_like(), |g| Ok(g.clone()))?;
        let g = g.squeeze(0)?.flatten_from(1)?; // (C_a, positions)
        ensure!(
            groups_a.w.dim(0)? == g.dim(1)? && groups_a.h.dim(1)? == g.dim(0)?,
            "the groups of {layer_a} factorise a {:?} matrix, but {layer_a} has {} positions × {} channels on this photo",
            (groups_a.w.dim(0)?, groups_a.h.dim(1)?),
            g.dim(1)?,
            g.dim(0)?
        );
        // Group i's reconstruction at each position and channel, W[p, i] H[i, c], against g.
        let through = groups_a.h.matmul(&g)?; // (G_a, positions): ⟨H_a[i], g[·, p]⟩
        columns.push((through * groups_a.w.t()?)?.sum(D::Minus1)?); // (G_a)
    }
    Ok(Tensor::stack(&columns, 1)?)
}
// ANCHOR_END: group_attribution

/// How far [`group_attribution`]'s split is from what it splits, for each group `j` of layer
/// `b`: its score `s_j`, the gradient × activation of `s_j` at layer `a` (`Σ ∂s_j/∂a · a`,
/// which differs from `s_j` by what is not linear between the layers: biases, clipping and
/// the other paths' constant parts), and the gradient × the groups' reconstruction `W_a H_a`
/// (the column sum of the split; it differs from the gradient × activation by the NMF's
/// residual, `∂s_j/∂a · (a − W_a H_a)`).
pub struct AttributionAccount {
    pub score: Vec<f32>,
    pub grad_act: Vec<f32>,
    pub grad_recon: Vec<f32>,
}

/// The [`AttributionAccount`] of [`group_attribution`] with the same arguments.
pub fn attribution_account(
    model: &dyn Model,
    photo: &Tensor,
    (layer_a, groups_a): (&str, &Nmf),
    (layer_b, groups_b): (&str, &Nmf),
) -> Result<AttributionAccount> {
    let x = model.preprocess(&photo.unsqueeze(0)?)?;
    let recon = groups_a.w.matmul(&groups_a.h)?.t()?; // (C_a, positions)
    let mut account = AttributionAccount { score: vec![], grad_act: vec![], grad_recon: vec![] };
    for j in 0..groups_b.h.dim(0)? {
        let acts = model.forward_taps(&x, &Taps::layers(&[layer_b]).probe(layer_a))?;
        let b = acts.get(layer_b)?.squeeze(0)?;
        let direction = groups_b.h.get(j)?.reshape((b.dim(0)?, 1, 1))?;
        let score = b.broadcast_mul(&direction)?.sum_all()?;
        let grads = score.backward()?;
        let probe = acts.probe(layer_a)?;
        let a = acts.get(layer_a)?.squeeze(0)?.flatten_from(1)?; // (C_a, positions)
        let g =
            grads.get(probe.as_tensor()).map_or_else(|| probe.as_tensor().zeros_like(), |g| Ok(g.clone()))?;
        let g = g.squeeze(0)?.flatten_from(1)?;
        ensure!(g.dims() == recon.dims(), "the groups of {layer_a} do not factorise {layer_a} on this photo");
        account.score.push(score.to_scalar::<f32>()?);
        account.grad_act.push((&g * &a)?.sum_all()?.to_scalar::<f32>()?);
        account.grad_recon.push((&g * &recon)?.sum_all()?.to_scalar::<f32>()?);
    }
    Ok(account)
}
