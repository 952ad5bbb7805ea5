//! Chapter 9, neuron interaction: `objective::channel_interpolate`, against Lucent's loss.
use candle_core::{Device, Tensor};
use vision_interp::models::Activations;
use vision_interp::optvis::objective;

mod common;
use common::{fixture, fixture_layer, values};

fn loss(obj: &objective::Objective, acts: &Activations, batch: usize) -> f64 {
    let img = Tensor::zeros((batch, 3, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    obj.loss(acts, &img).unwrap().to_scalar::<f32>().unwrap() as f64
}

#[test]
fn interpolation_matches_lucent() {
    let fx = fixture("lucent-objectives.json");
    let acts = Activations::from_tensors([
        ("a".to_string(), fixture_layer(&[4, 6, 5, 5], 0.0)),
        ("b".to_string(), fixture_layer(&[4, 8, 5, 5], 1.0)),
    ]);
    let want = fx["losses"]["channel_interpolate a:2 b:5"].as_f64().unwrap();
    let got = loss(&objective::channel_interpolate("a", 2, "b", 5), &acts, 4);
    assert!((got - want).abs() < 1e-5 * want.abs(), "{got}, Lucent {want}");
}

#[test]
fn the_first_image_is_the_first_channel_and_the_last_the_second() {
    let a = fixture_layer(&[3, 4, 2, 2], 0.5);
    let acts = Activations::from_tensors([("a".to_string(), a.clone())]);
    let got = loss(&objective::channel_interpolate("a", 1, "a", 3), &acts, 3);
    let v = values(&a);
    let mean = |n: usize, c: usize| (0..4).map(|p| v[n * 16 + c * 4 + p] as f64).sum::<f64>() / 4.0;
    // Weights 0, ½, 1 for the second channel; 1, ½, 0 for the first.
    let want = -(mean(0, 1) + 0.5 * mean(1, 1) + 0.5 * mean(1, 3) + mean(2, 3));
    assert!((got - want).abs() < 1e-5, "{got}, want {want}");
}
