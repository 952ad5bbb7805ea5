//! Non-negative matrix factorisation, `X ≈ W H` with `W, H ≥ 0`: how chapter 12 finds the few
//! groups of channels that a photo's positions are made of (Lucid's `ChannelReducer(k, "NMF")`,
//! which calls scikit-learn).
//!
//! Written here rather than taken from a crate: the Rust NMF crates (`nmf` 0.1, `nymph` 0.1,
//! both last released in 2020 on old `rulinalg` and `ndarray` versions; `nnmf_nalgebra` 0.1, a
//! single release) are unmaintained or pull a second linear-algebra stack beside Candle, and
//! Lee and Seung's multiplicative updates are a dozen lines of matrix products on the tensors
//! the chapter already holds. The benchmark's Python peer (`ci/bench nmf`) factorises the same
//! matrix with scikit-learn and compares the reconstruction errors.
use anyhow::{ensure, Result};
use candle_core::{DType, Tensor};
use rand::rngs::StdRng;

/// A factorisation `X ≈ W H` of an `(n, m)` matrix into `k` parts.
#[derive(Debug)]
pub struct Nmf {
    /// `(n, k)`: how much of each part every row holds (for chapter 12: every position).
    pub w: Tensor,
    /// `(k, m)`: the parts (for chapter 12: directions in channel space).
    pub h: Tensor,
    /// The Frobenius error `‖X − W H‖ / ‖X‖` after each iteration: it never rises.
    pub errors: Vec<f32>,
}

// ANCHOR: nmf
/// Factorises the non-negative `(n, m)` matrix `x` into `k` parts with `iterations` of Lee
/// and Seung's multiplicative updates for the Frobenius norm (2001), from scikit-learn's
/// random start (`|N(0, 1)| · √(mean(X)/k)`, drawn from `rng`). Each update multiplies a
/// factor by a ratio of non-negative matrices, so the factors stay non-negative and the error
/// never rises. The work is in `f64`, which keeps that monotone to the last iteration.
pub fn nmf(x: &Tensor, k: usize, iterations: usize, rng: &mut StdRng) -> Result<Nmf> {
    let (n, m) = x.dims2()?;
    ensure!(k >= 1, "NMF needs at least one group");
    ensure!(iterations >= 1, "NMF needs at least one iteration");
    ensure!(
        k <= n.min(m),
        "NMF of a {n} × {m} matrix into {k} groups: there can be at most {} groups (min of rows and columns: {n} positions, {m} channels)",
        n.min(m)
    );
    let x = x.to_dtype(DType::F64)?;
    let min = x.min_all()?.to_scalar::<f64>()?;
    ensure!(min.is_finite() && min >= 0.0, "NMF needs a non-negative matrix; its smallest entry is {min}");
    let scale = (x.mean_all()?.to_scalar::<f64>()? / k as f64).sqrt();
    let draw = |shape: (usize, usize), rng: &mut StdRng| -> Result<Tensor> {
        let t = vision_interp::rng::randn(rng, shape, 0.0, 1.0, x.device())?.to_dtype(DType::F64)?;
        Ok((t.abs()? * scale)?)
    };
    let (mut w, mut h) = (draw((n, k), rng)?, draw((k, m), rng)?);
    let norm2 = x.sqr()?.sum_all()?.to_scalar::<f64>()?.max(f64::MIN_POSITIVE);
    let eps = 1e-12;
    let mut errors = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        // H ← H ⊙ WᵀX / (WᵀW H), then W ← W ⊙ X Hᵀ / (W H Hᵀ).
        let wt = w.t()?;
        // ANCHOR: solution-nmf-updates Update H ← H ⊙ WᵀX / (WᵀWH + eps), then W ← W ⊙ XHᵀ / (WHHᵀ + eps) with the new H, and push ‖X − WH‖ / ‖X‖ onto `errors` (norm2 = ‖X‖²)
        h = (&h * wt.matmul(&x)?)?.div(&(wt.matmul(&w)?.matmul(&h)? + eps)?)?;
        let (xht, hht) = (x.matmul(&h.t()?)?, h.matmul(&h.t()?)?);
        w = (&w * &xht)?.div(&(w.matmul(&hht)? + eps)?)?;
        // ‖X − WH‖² = ‖X‖² − 2 Σ W ⊙ XHᵀ + Σ WᵀW ⊙ HHᵀ, from the products just made (no
        // n × m reconstruction per iteration).
        let cross = (&w * &xht)?.sum_all()?.to_scalar::<f64>()?;
        let square = (w.t()?.matmul(&w)? * &hht)?.sum_all()?.to_scalar::<f64>()?;
        errors.push(((norm2 - 2.0 * cross + square).max(0.0) / norm2).sqrt() as f32);
        // ANCHOR_END: solution-nmf-updates
    }
    Ok(Nmf { w: w.to_dtype(DType::F32)?, h: h.to_dtype(DType::F32)?, errors })
}
// ANCHOR_END: nmf
