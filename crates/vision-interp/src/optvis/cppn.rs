//! Compositional pattern-producing network (CPPN) parametrisation, as Lucent's `cppn`: the
//! image is a function of the pixel coordinates, computed by a stack of 1×1 convolutions, and
//! the optimiser changes the network's weights instead of pixels (Mordvintsev et al.,
//! "Differentiable Image Parameterizations", 2018).
//!
//! - input: `x = linspace(−√3, √3, H)` down the rows and `y` likewise across the columns,
//!   channels `[x, y]`;
//! - `layers − 1` hidden 1×1 convolutions with bias, each followed by the composite activation
//!   `a = atan(z)`, `[a / 0.67, a² / 0.6]` (so `hidden` channels become `2·hidden`);
//! - a last 1×1 convolution to three channels; the caller applies the sigmoid.
//!
//! Weights start from `N(0, 1/fan_in)`, biases at 0, and the last weight at 0, so the first
//! image is a uniform grey.
use anyhow::{bail, Result};
use candle_core::{Device, Tensor, Var};
use rand::rngs::StdRng;

/// The network and its fixed input.
pub struct Cppn {
    coords: Tensor,
    vars: Vec<Var>,
    height: usize,
    width: usize,
}

impl Cppn {
    pub fn new(
        height: usize,
        width: usize,
        hidden: usize,
        layers: usize,
        rng: &mut StdRng,
        device: &Device,
    ) -> Result<Self> {
        if layers < 2 || hidden == 0 {
            bail!("a CPPN needs at least 2 layers and 1 hidden channel (got {layers} and {hidden})");
        }
        let r = 3f64.sqrt();
        let lin = |n: usize, i: usize| if n > 1 { -r + 2.0 * r * i as f64 / (n - 1) as f64 } else { -r };
        let mut xy = Vec::with_capacity(2 * height * width);
        xy.extend((0..height * width).map(|p| lin(height, p / width) as f32));
        xy.extend((0..height * width).map(|p| lin(width, p % width) as f32));
        let coords = Tensor::from_vec(xy, (2, height * width), device)?;
        let mut vars = Vec::with_capacity(2 * layers);
        for l in 0..layers {
            let fan_in = if l == 0 { 2 } else { 2 * hidden };
            let out = if l + 1 == layers { 3 } else { hidden };
            let w = if l + 1 == layers {
                Tensor::zeros((out, fan_in), candle_core::DType::F32, device)?
            } else {
                crate::rng::randn(rng, (out, fan_in), 0.0, (1.0 / fan_in as f32).sqrt(), device)?
            };
            vars.push(Var::from_tensor(&w)?);
            vars.push(Var::zeros((out, 1), candle_core::DType::F32, device)?);
        }
        Ok(Self { coords, vars, height, width })
    }

    /// Weights and biases, alternating.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The network's output before the sigmoid: `(1, 3, H, W)`.
    pub fn forward(&self) -> Result<Tensor> {
        let mut h = self.coords.clone();
        let last = self.vars.len() / 2 - 1;
        for (l, wb) in self.vars.chunks(2).enumerate() {
            h = wb[0].as_tensor().matmul(&h)?.broadcast_add(wb[1].as_tensor())?;
            if l < last {
                let a = atan(&h)?;
                h = Tensor::cat(&[(&a / 0.67)?, (a.sqr()? / 0.6)?], 0)?;
            }
        }
        Ok(h.reshape((1, 3, self.height, self.width))?)
    }
}

/// `atan(x)` from operations Candle differentiates on every device (it has no `atan`): three
/// half-angle reductions `t ← t / (1 + √(1 + t²))` (each halves the angle) bring `|t|` below
/// `tan(π/16) ≈ 0.2`, where the odd Taylor series to `t¹⁷` is exact to below `1e-14`; then
/// `atan(x) = 8·atan(t)`.
pub fn atan(x: &Tensor) -> candle_core::Result<Tensor> {
    let mut t = x.clone();
    for _ in 0..3 {
        t = (&t / (t.sqr()?.affine(1.0, 1.0)?.sqrt()? + 1.0)?)?;
    }
    let t2 = t.sqr()?;
    // Horner's scheme for t · Σ_k (−1)^k t^{2k} / (2k + 1), k = 0..=8.
    let mut p = t2.ones_like()?.affine(1.0 / 17.0, 0.0)?;
    for k in (0..8).rev() {
        let c = if k % 2 == 0 { 1.0 } else { -1.0 } / (2 * k + 1) as f64;
        p = ((p * &t2)? + c)?;
    }
    (t * p)? * 8.0
}
