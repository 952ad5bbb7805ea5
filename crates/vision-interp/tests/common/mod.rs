//! Helpers shared by the integration tests.
#![allow(dead_code)]
use candle_core::{DType, Device, Tensor};
use serde_json::Value;

/// The largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    max_abs(&(a - b).unwrap())
}

/// The largest absolute value of a tensor.
pub fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Seeded N(0, 1) samples in float64.
pub fn randn64(seed: u64, shape: &[usize]) -> Tensor {
    vision_interp::rng::randn(&mut vision_interp::rng::seeded(seed), shape, 0.0, 1.0, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

/// Checks a tensor against a summary `{shape, sum, sum_sq, samples}` with relative tolerance
/// `tol`; sums are compared relative to √(N·Σx²), the size of Σ|x| for values of mixed signs.
pub fn check(what: &str, t: &Tensor, want: &Value, tol: f64) -> f64 {
    let shape: Vec<usize> =
        want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(t.dims(), shape.as_slice(), "{what}: shape");
    let v = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
    let sum: f64 = v.iter().sum();
    let sum_sq: f64 = v.iter().map(|x| x * x).sum();
    let (want_sum, want_sq) = (want["sum"].as_f64().unwrap(), want["sum_sq"].as_f64().unwrap());
    let scale = (v.len() as f64 * want_sq).sqrt().max(1e-30);
    let rms = (want_sq / v.len() as f64).sqrt().max(1e-30);
    let mut worst = ((sum - want_sum).abs() / scale).max((sum_sq - want_sq).abs() / want_sq.max(1e-30));
    for (idx, value) in want["samples"].as_object().unwrap() {
        let i: usize = idx.parse().unwrap();
        worst = worst.max((v[i] - value.as_f64().unwrap()).abs() / rms);
    }
    assert!(
        worst < tol,
        "{what}: relative difference {worst:.2e} (sum {sum} vs {want_sum}, Σx² {sum_sq} vs {want_sq})"
    );
    worst
}

/// The objective fixtures' activations (`crates/bench/peers/make_objective_fixtures.py`):
/// element k (row-major) is sin(0.37 k + phase) + 0.25 cos(1.3 k) + 0.5 sin(0.011 k²),
/// computed in f64 and rounded to f32 as PyTorch does.
pub fn fixture_layer(shape: &[usize], phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|k| {
            let k = k as f64;
            ((0.37 * k + phase).sin() + 0.25 * (1.3 * k).cos() + 0.5 * (0.011 * k * k).sin()) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// An objective's loss on recorded activations (with a blank image for penalties on it).
pub fn objective_loss(
    obj: &vision_interp::optvis::Objective,
    acts: &vision_interp::models::Activations,
) -> f32 {
    let x = Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
    obj.loss(acts, &x).unwrap().to_scalar::<f32>().unwrap()
}

/// The error an objective gives on recorded activations (a panic if it gives none).
pub fn objective_error(
    obj: &vision_interp::optvis::Objective,
    acts: &vision_interp::models::Activations,
) -> String {
    let x = Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
    format!("{:#}", obj.loss(acts, &x).err().unwrap_or_else(|| panic!("{} was accepted", obj.name)))
}
