//! Weights and inputs rebuilt from an integer hash, so that any language reproduces them
//! exactly: the recipe of the parity fixtures in `crates/vision-interp/tests/fixtures/` (written by the Python peers,
//! Lucent and timm, with the same recipe).
//!
//! - `seed(name) = FNV-1a-32(name) XOR phase`, `u(seed, j) = mix32(j·2654435761 + seed) / 2³²`;
//! - weights of rank ≥ 2: `√(6/fan_in)·(2u − 1)`; rank-1 `.weight` (BatchNorm): `1 + 0.1·(2u − 1)`;
//! - `.bias`: `0.01·(2u − 1)`; `.running_mean`: `0.1·(2u − 1)`; `.running_var`: `1 + u`;
//! - the input, named `input`: `u`, in [0, 1).
use std::collections::HashMap;

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};

fn mix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x45d9f3b);
    h ^= h >> 16;
    h = h.wrapping_mul(0x45d9f3b);
    h ^ (h >> 16)
}

/// FNV-1a (32 bit) of `name`, XOR `phase`.
pub fn seed(name: &str, phase: u32) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h ^ phase
}

/// `n` values in [0, 1).
pub fn uniform(name: &str, phase: u32, n: usize) -> Vec<f32> {
    let s = seed(name, phase);
    (0..n)
        .map(|j| {
            (mix32((j as u32).wrapping_mul(2_654_435_761).wrapping_add(s)) as f64 / 4_294_967_296.0) as f32
        })
        .collect()
}

/// The tensor `name` of shape `shape`, by the rule its name calls for.
pub fn tensor(name: &str, shape: &[usize], phase: u32, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let u = uniform(name, phase, n);
    let f: Box<dyn Fn(f32) -> f32> = if name.ends_with(".weight") && shape.len() >= 2 {
        let scale = (6.0 / (n / shape[0]) as f64).sqrt() as f32;
        Box::new(move |v| scale * (2.0 * v - 1.0))
    } else if name.ends_with(".weight") {
        Box::new(|v| 1.0 + 0.1 * (2.0 * v - 1.0))
    } else if name.ends_with(".bias") {
        Box::new(|v| 0.01 * (2.0 * v - 1.0))
    } else if name.ends_with(".running_mean") {
        Box::new(|v| 0.1 * (2.0 * v - 1.0))
    } else if name.ends_with(".running_var") {
        Box::new(|v| 1.0 + v)
    } else {
        bail!("no hash rule for tensor `{name}`");
    };
    Ok(Tensor::from_vec(u.into_iter().map(f).collect::<Vec<f32>>(), shape, device)?)
}

/// Every tensor of `shapes`.
pub fn tensors(
    shapes: &[(String, Vec<usize>)],
    phase: u32,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    shapes.iter().map(|(name, shape)| Ok((name.clone(), tensor(name, shape, phase, device)?))).collect()
}

/// The input `(1, 3, size, size)` in [0, 1].
pub fn input(phase: u32, size: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_vec(uniform("input", phase, 3 * size * size), (1, 3, size, size), device)?)
}
