//! Helpers of the graded tests.
#![allow(dead_code)]
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

/// A fixture file of the Python peers: `fixtures/` beside the tests' crate in a student
/// workspace, the library's test fixtures in the book's repository.
pub fn fixture(name: &str) -> Value {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let path = [here.join("fixtures").join(name), here.join("../vision-interp/tests/fixtures").join(name)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("fixture {name} not found"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Seeded N(0, 1) samples.
pub fn randn(seed: u64, shape: &[usize]) -> Tensor {
    vision_interp::rng::randn(&mut vision_interp::rng::seeded(seed), shape, 0.0, 1.0, &Device::Cpu).unwrap()
}

/// The values of a tensor, flattened.
pub fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap()
}

/// The largest absolute difference between two tensors of the same shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    values(&(a - b).unwrap()).iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// The activations of the objective fixtures: element k (row-major) is
/// sin(0.37 k + phase) + 0.25 cos(1.3 k) + 0.5 sin(0.011 k²), rounded to f32.
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

/// A tensor against a fixture's summary `{shape, sum, sum_sq, samples}`: the largest relative
/// difference (sums relative to √(N·Σx²), samples to the RMS).
pub fn summary_difference(t: &Tensor, want: &Value) -> f64 {
    let shape: Vec<usize> =
        want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(t.dims(), shape.as_slice(), "shape");
    let v: Vec<f64> = values(t).into_iter().map(f64::from).collect();
    let (sum, sum_sq) = (v.iter().sum::<f64>(), v.iter().map(|x| x * x).sum::<f64>());
    let (want_sum, want_sq) = (want["sum"].as_f64().unwrap(), want["sum_sq"].as_f64().unwrap());
    let rms = (want_sq / v.len() as f64).sqrt().max(1e-30);
    let mut worst = ((sum - want_sum).abs() / (v.len() as f64 * want_sq).sqrt().max(1e-30))
        .max((sum_sq - want_sq).abs() / want_sq.max(1e-30));
    for (idx, value) in want["samples"].as_object().unwrap() {
        worst = worst.max((v[idx.parse::<usize>().unwrap()] - value.as_f64().unwrap()).abs() / rms);
    }
    worst
}
