//! Batch normalisation in training mode followed by ReLU, fused, with a hand-written backward
//! pass.
//!
//! Candle's `BatchNorm` builds training mode from a transpose, a copy, reductions and
//! broadcast operations; its backward pass then sums gradients over broadcast axes with
//! strided reductions, and on a CPU it dominated SimpleCNN's training step (about 95 ms of a
//! 240 ms step for the first block alone). The fused kernel makes two passes over each channel
//! forward and two backward. With `M = N·H·W` values per channel, `x̂ = (x − μ)/√(σ² + ε)`
//! and `y = max(0, γ x̂ + β)`, the gradients are, with `g = ∂L/∂y · [y > 0]`:
//!
//! `∂L/∂β = Σ g`, `∂L/∂γ = Σ g x̂`, `∂L/∂x = γ/(M √(σ² + ε)) · (M g − ∂L/∂β − x̂ ∂L/∂γ)`.
//!
//! [`batch_norm_relu_reference`] is the same computation from plain Candle operations (any
//! device); the tests compare the two, and the reference with finite differences.
use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::f32_slice;

/// Per-channel batch statistics of a training-mode forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchStats {
    /// Mean of each channel over batch and space.
    pub mean: Vec<f32>,
    /// Biased variance (divided by `M`), the one used to normalise.
    pub var: Vec<f32>,
    /// Values per channel, `M = N·H·W` (for the unbiased variance of running statistics).
    pub count: usize,
}

/// `max(0, γ (x − μ)/√(σ² + ε) + β)` with the batch's own statistics, for `x` of shape
/// `(N, C, H, W)`, `gamma` and `beta` of shape `(C)`. Returns the output and the statistics.
/// On the CPU this is one fused kernel; elsewhere it is [`batch_norm_relu_reference`].
pub fn batch_norm_relu_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    if super::cpu_kernels(x) {
        fused(x, gamma, beta, eps, None)
    } else {
        batch_norm_relu_reference(x, gamma, beta, eps)
    }
}

/// [`batch_norm_relu_train`] followed by a `k × k` max pool of stride `k`: on the CPU one
/// kernel, so that the normalised activations never become a node of the graph (Candle's
/// backward pass would give them a zeroed gradient buffer and an addition of their own);
/// elsewhere the two operations.
pub fn batch_norm_relu_pool_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    k: usize,
) -> Result<(Tensor, BatchStats)> {
    let (_, _, h, w) = x.dims4()?;
    if super::cpu_kernels(x) {
        let (oh, ow) =
            (super::pool_output_size(h, k, k, 0, false), super::pool_output_size(w, k, k, 0, false));
        fused(x, gamma, beta, eps, Some(super::cpu::MaxPool::new(k, k, 0, oh, ow)))
    } else {
        let (y, stats) = batch_norm_relu_reference(x, gamma, beta, eps)?;
        Ok((super::max_pool2d(&y, k, k, 0, false)?, stats))
    }
}

fn fused(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    pool: Option<super::cpu::MaxPool>,
) -> Result<(Tensor, BatchStats)> {
    let shared = Arc::new(Mutex::new(None));
    let op = BnReluTrain { eps, stats: shared.clone(), pool, activations: Default::default() };
    let y = x.contiguous()?.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let stats = shared.lock().expect("stats lock").clone().expect("forward pass stored its statistics");
    Ok((y, stats))
}

/// The same as [`batch_norm_relu_train`] from Candle operations (any device, slower backward).
pub fn batch_norm_relu_reference(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, BatchStats)> {
    let (n, c, h, w) = x.dims4()?;
    let mean = x.mean_keepdim((0, 2, 3))?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim((0, 2, 3))?;
    let xhat = centred.broadcast_div(&(&var + eps)?.sqrt()?)?;
    let y = xhat.broadcast_mul(&gamma.reshape((1, c, 1, 1))?)?.broadcast_add(&beta.reshape((1, c, 1, 1))?)?;
    let stats = BatchStats {
        mean: mean.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
        var: var.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?,
        count: n * h * w,
    };
    Ok((y.relu()?, stats))
}

/// `Σ f(a_i, b_i)` over one run (a plane: at most a few thousand values) in eight f32 lanes,
/// which the compiler vectorises, returned as f64 for the sum over planes.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let rest: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(&u, &v)| f(u, v)).sum();
    for (u, v) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += f(u[i], v[i]);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + rest as f64
}

/// [`lane_sum`] of `f(a_i, b_i, c_i)`.
fn lane_sum3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let (ca, cb, cc) = (a.chunks_exact(8), b.chunks_exact(8), c.chunks_exact(8));
    let rest: f32 =
        ca.remainder().iter().zip(cb.remainder()).zip(cc.remainder()).map(|((&u, &v), &w)| f(u, v, w)).sum();
    for ((u, v), w) in ca.zip(cb).zip(cc) {
        for i in 0..8 {
            lanes[i] += f(u[i], v[i], w[i]);
        }
    }
    lanes.iter().map(|&l| l as f64).sum::<f64>() + rest as f64
}

/// Channel `c`'s values: `n` runs of `hw` contiguous values, `c·hw` apart from `(n, c)` to
/// `(n, c + 1)`.
fn for_channel(data: &[f32], c: usize, channels: usize, hw: usize) -> impl Iterator<Item = &[f32]> {
    data.chunks(channels * hw).map(move |image| &image[c * hw..(c + 1) * hw])
}

/// The training-mode forward kernel. It keeps the statistics it computed for the backward pass
/// and for the caller's running averages.
struct BnReluTrain {
    eps: f64,
    stats: Arc<Mutex<Option<BatchStats>>>,
    /// A max pool applied to the activations before they are returned.
    pool: Option<super::cpu::MaxPool>,
    /// With `pool`, the activations before pooling, kept for the backward pass.
    activations: Arc<Mutex<Option<Tensor>>>,
}

impl BnReluTrain {
    fn stats(&self) -> Result<(BatchStats, Vec<f32>)> {
        let stats = self.stats.lock().expect("stats lock").clone();
        let stats =
            stats.ok_or_else(|| candle_core::Error::Msg("batch norm: backward before forward".into()))?;
        let inv_std = stats.var.iter().map(|v| 1.0 / (v + self.eps as f32).sqrt()).collect();
        Ok((stats, inv_std))
    }
}

impl CustomOp3 for BnReluTrain {
    fn name(&self) -> &'static str {
        "batch-norm-relu-train"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = lx.shape().dims4()?;
        let (x, gamma, beta) =
            (f32_slice(sx, lx, "input")?, f32_slice(sg, lg, "gamma")?, f32_slice(sb, lb, "beta")?);
        if gamma.len() != c || beta.len() != c {
            candle_core::bail!(
                "batch norm: {c} channels but {} weights and {} biases",
                gamma.len(),
                beta.len()
            );
        }
        let (hw, count) = (h * w, n * h * w);
        let moments: Vec<(f32, f32)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let sum: f64 = for_channel(x, ch, c, hw).map(|p| lane_sum(p, p, |v, _| v)).sum();
                let mean = (sum / count as f64) as f32;
                let ss: f64 =
                    for_channel(x, ch, c, hw).map(|p| lane_sum(p, p, |v, _| (v - mean) * (v - mean))).sum();
                (mean, (ss / count as f64) as f32)
            })
            .collect();
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(hw).zip(x.par_chunks(hw)).enumerate().for_each(|(plane, (out, inp))| {
            let ch = plane % c;
            let (mean, var) = moments[ch];
            let scale = gamma[ch] / (var + self.eps as f32).sqrt();
            let shift = beta[ch] - mean * scale;
            for (o, &v) in out.iter_mut().zip(inp) {
                *o = (v * scale + shift).max(0.0);
            }
        });
        let stats = BatchStats {
            mean: moments.iter().map(|m| m.0).collect(),
            var: moments.iter().map(|m| m.1).collect(),
            count,
        };
        *self.stats.lock().expect("stats lock") = Some(stats);
        match &self.pool {
            None => Ok((CpuStorage::F32(y), lx.shape().clone())),
            Some(pool) => {
                let pooled = pool.forward_slice(&y, (n, c, h, w));
                *self.activations.lock().expect("activations lock") =
                    Some(Tensor::from_vec(y, lx.shape(), &candle_core::Device::Cpu)?);
                Ok((CpuStorage::F32(pooled), Shape::from((n, c, pool.oh, pool.ow))))
            }
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (stats, inv_std) = self.stats()?;
        let (grad, y) = match &self.pool {
            None => (grad.contiguous()?, y.clone()),
            Some(pool) => {
                let y = self.activations.lock().expect("activations lock").clone();
                let y =
                    y.ok_or_else(|| candle_core::Error::Msg("batch norm: backward before forward".into()))?;
                (pool.backward(grad, x.shape())?, y)
            }
        };
        let y = &y;
        let param_op = BnParamGrad { mean: stats.mean.clone(), inv_std: inv_std.clone() };
        let sums = x.apply_op3_no_bwd(&grad, y, &param_op)?;
        let (dbeta, dgamma) = (sums.get(0)?, sums.get(1)?);
        let sums = sums.flatten_all()?.to_vec1()?;
        let dx_op = BnInputGrad { mean: stats.mean, inv_std, gamma: gamma.to_vec1()?, sums };
        let dx = x.apply_op3_no_bwd(&grad, y, &dx_op)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// `(x, ∂L/∂y, y)` → `(2, C)`: rows `∂L/∂β = Σ g` and `∂L/∂γ = Σ g x̂`, with `g` the gradient
/// masked where the ReLU was off.
struct BnParamGrad {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for BnParamGrad {
    fn name(&self) -> &'static str {
        "batch-norm-relu-param-grad"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sy: &CpuStorage,
        ly: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = lx.shape().dims4()?;
        let (x, g, y) =
            (f32_slice(sx, lx, "input")?, f32_slice(sg, lg, "gradient")?, f32_slice(sy, ly, "output")?);
        let hw = h * w;
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
                let (mut db, mut dg) = (0f64, 0f64);
                for ((xs, gs), ys) in
                    for_channel(x, ch, c, hw).zip(for_channel(g, ch, c, hw)).zip(for_channel(y, ch, c, hw))
                {
                    // The gradient where the ReLU was on, zero elsewhere.
                    let on = |gv: f32, yv: f32| if yv > 0.0 { gv } else { 0.0 };
                    db += lane_sum(gs, ys, on);
                    dg += lane_sum3(xs, gs, ys, |xv, gv, yv| on(gv, yv) * (xv - mean)) * inv_std as f64;
                }
                (db, dg)
            })
            .collect();
        let mut out: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        out.extend(sums.iter().map(|s| s.1 as f32));
        Ok((CpuStorage::F32(out), Shape::from((2, c))))
    }
}

/// `(x, ∂L/∂y, y)` → `∂L/∂x`.
struct BnInputGrad {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
    /// `∂L/∂β` (C values) then `∂L/∂γ` (C values).
    sums: Vec<f32>,
}

impl CustomOp3 for BnInputGrad {
    fn name(&self) -> &'static str {
        "batch-norm-relu-input-grad"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        sy: &CpuStorage,
        ly: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, h, w) = lx.shape().dims4()?;
        let (x, g, y) =
            (f32_slice(sx, lx, "input")?, f32_slice(sg, lg, "gradient")?, f32_slice(sy, ly, "output")?);
        let (hw, m) = (h * w, (n * h * w) as f32);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(hw)
            .zip(x.par_chunks(hw).zip(g.par_chunks(hw)).zip(y.par_chunks(hw)))
            .enumerate()
            .for_each(|(plane, (out, ((xs, gs), ys)))| {
                let ch = plane % c;
                let (mean, inv_std) = (self.mean[ch], self.inv_std[ch]);
                let (db, dg) = (self.sums[ch], self.sums[c + ch]);
                let k = self.gamma[ch] * inv_std / m;
                for (((o, &xv), &gv), &yv) in out.iter_mut().zip(xs).zip(gs).zip(ys) {
                    let gm = if yv > 0.0 { gv } else { 0.0 };
                    *o = k * (m * gm - db - (xv - mean) * inv_std * dg);
                }
            });
        Ok((CpuStorage::F32(dx), lx.shape().clone()))
    }
}
