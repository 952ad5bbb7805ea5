//! Seeded randomness. Every random number in the book comes from one seeded generator, on the
//! host, so a seed gives the same numbers on every device.
use anyhow::Result;
use candle_core::{Device, Shape, Tensor};
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal, Uniform};

/// The generator every chapter uses, made from `--seed`.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// FNV-1a hash of a string (64 bit): a stable way to derive a seed from a name.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// A tensor of independent N(mean, std²) samples.
pub fn randn<S: Into<Shape>>(
    rng: &mut StdRng,
    shape: S,
    mean: f32,
    std: f32,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let normal = Normal::new(mean, std.max(f32::MIN_POSITIVE))?;
    let data: Vec<f32> = (0..shape.elem_count()).map(|_| normal.sample(rng)).collect();
    Ok(Tensor::from_vec(data, shape, device)?)
}

/// A tensor of independent U[lo, hi) samples.
pub fn rand_uniform<S: Into<Shape>>(
    rng: &mut StdRng,
    shape: S,
    lo: f32,
    hi: f32,
    device: &Device,
) -> Result<Tensor> {
    let shape = shape.into();
    let u = Uniform::new(lo, hi)?;
    let data: Vec<f32> = (0..shape.elem_count()).map(|_| u.sample(rng)).collect();
    Ok(Tensor::from_vec(data, shape, device)?)
}
