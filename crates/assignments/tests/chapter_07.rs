//! Chapter 7, logit against probability: `optvis::objective::class_probability`.
use candle_core::{Device, Tensor, Var};
use vision_interp::models::{self, Activations, Model};
use vision_interp::optvis::objective::class_probability;

mod common;
use common::{randn, values};

fn lite0() -> Box<dyn Model> {
    models::load("efficientnet-lite0", None, &Device::Cpu).unwrap()
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::MIN, |m, &v| m.max(v)) as f64;
    let e: Vec<f64> = row.iter().map(|&v| (v as f64 - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

#[test]
fn the_loss_is_minus_the_softmax_probability() {
    let m = lite0();
    let logits = (randn(5, &[3, 1000]) * 4.0).unwrap();
    let acts = Activations::from_tensors([("logits".to_string(), logits.clone())]);
    let obj = class_probability(m.as_ref(), "tiger cat", None).unwrap();
    let img = Tensor::zeros((3, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let got = obj.loss(&acts, &img).unwrap().to_scalar::<f32>().unwrap() as f64;
    let class = m.class_index("tiger cat").unwrap();
    let v = values(&logits);
    let want: f64 = -(0..3).map(|b| softmax(&v[b * 1000..(b + 1) * 1000])[class]).sum::<f64>();
    assert!((got - want).abs() < 1e-5, "{got}, want {want}");
    // Logits in the thousands must not overflow.
    let big = Activations::from_tensors([("logits".to_string(), (logits * 1000.0).unwrap())]);
    assert!(obj.loss(&big, &img).unwrap().to_scalar::<f32>().unwrap().is_finite(), "exp overflowed");
}

#[test]
fn the_gradient_is_p_c_times_e_c_minus_p() {
    let m = lite0();
    let class = m.class_index("goldfish").unwrap();
    let logits = Var::from_tensor(&randn(6, &[1, 1000])).unwrap();
    let acts = Activations::from_tensors([("logits".to_string(), logits.as_tensor().clone())]);
    let obj = class_probability(m.as_ref(), "goldfish", None).unwrap();
    let img = Tensor::zeros((1, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    let g = obj.loss(&acts, &img).unwrap().backward().unwrap().get(logits.as_tensor()).unwrap().clone();
    let p = softmax(&values(logits.as_tensor()));
    for (i, got) in values(&g).into_iter().enumerate() {
        // d(−p_c)/dz_i = −p_c (δ_ic − p_i)
        let want = -p[class] * (if i == class { 1.0 } else { 0.0 } - p[i]);
        assert!((got as f64 - want).abs() < 1e-6, "logit {i}: {got}, want {want}");
    }
}
