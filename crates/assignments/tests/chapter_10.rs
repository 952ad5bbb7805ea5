//! Chapter 10, feature inversion: `objective::dot_compare` and its cosine exponent.
use candle_core::{Device, Tensor};
use vision_interp::models::Activations;
use vision_interp::optvis::objective::dot_compare;

mod common;
use common::{randn, values};

fn loss(a: &Tensor, pow: f64) -> f64 {
    let acts = Activations::from_tensors([("l".to_string(), a.clone())]);
    let img = Tensor::zeros((a.dim(0).unwrap(), 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    dot_compare("l", 2, pow).loss(&acts, &img).unwrap().to_scalar::<f32>().unwrap() as f64
}

#[test]
fn the_loss_is_the_dot_product_times_a_power_of_the_cosine() {
    let a = randn(7, &[3, 5, 3, 3]);
    let v = values(&a);
    let (x, t) = (&v[..45], &v[90..]);
    let dot: f64 = x.iter().zip(t).map(|(p, q)| (p * q) as f64).sum();
    let norm = |u: &[f32]| u.iter().map(|p| (p * p) as f64).sum::<f64>().sqrt();
    let cos = (dot / (norm(x) * norm(t) + 1e-6)).max(0.1);
    for pow in [0.0, 0.5, 1.0, 2.0] {
        let want = -dot * cos.powf(pow);
        let got = loss(&a, pow);
        assert!((got - want).abs() < 1e-4 * want.abs().max(1.0), "cossim_pow {pow}: {got}, want {want}");
    }
}

#[test]
fn an_opposite_image_keeps_a_tenth_of_its_cosine() {
    let t = randn(8, &[1, 4, 2, 2]);
    let a = Tensor::cat(&[&t.neg().unwrap(), &randn(9, &[1, 4, 2, 2]), &t], 0).unwrap();
    let sq: f64 = values(&t).iter().map(|p| (p * p) as f64).sum();
    let got = loss(&a, 2.0);
    // dot = −‖t‖², cosine −1 held at 0.1: the loss is ‖t‖² · 0.1².
    assert!((got - sq * 0.01).abs() < 1e-4 * sq, "{got}, want {}", sq * 0.01);
}
