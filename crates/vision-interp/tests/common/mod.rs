//! Helpers shared by the integration tests.
#![allow(dead_code)]
use candle_core::{DType, Device, Tensor};

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
