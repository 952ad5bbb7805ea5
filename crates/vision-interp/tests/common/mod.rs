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
