//! Chapter 8, diversity: the pairwise similarity behind `objective::diversity` and
//! `objective::similarity`, against Lucent's own loss on the same activations.
use candle_core::Tensor;
use vision_interp::models::Activations;
use vision_interp::optvis::objective::{self, Features};

mod common;
use common::{fixture, fixture_layer};

#[test]
fn diversity_matches_lucent() {
    let fx = fixture("lucent-objectives.json");
    let acts = Activations::from_tensors([
        ("a".to_string(), fixture_layer(&[4, 6, 5, 5], 0.0)),
        ("b".to_string(), fixture_layer(&[4, 8, 5, 5], 1.0)),
    ]);
    let img = Tensor::zeros((4, 3, 4, 4), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    for (name, obj) in [
        ("diversity a", objective::diversity("a")),
        ("diversity b", objective::diversity("b")),
        ("channel a:1 - 100 diversity a", objective::channel("a", 1, None) - 1e2 * objective::diversity("a")),
    ] {
        let want = fx["losses"][name].as_f64().unwrap();
        let got = obj.loss(&acts, &img).unwrap().to_scalar::<f32>().unwrap() as f64;
        assert!((got - want).abs() < 1e-5 * want.abs().max(1e-3), "{name}: {got}, Lucent {want}");
    }
}

#[test]
fn copies_are_alike_and_disjoint_channels_are_not() {
    let one = fixture_layer(&[1, 6, 5, 5], 0.0).abs().unwrap();
    let copies = Tensor::cat(&[&one, &one, &one], 0).unwrap();
    let zeros = one.zeros_like().unwrap();
    let left = Tensor::cat(&[&one.narrow(1, 0, 3).unwrap(), &zeros.narrow(1, 3, 3).unwrap()], 1).unwrap();
    let right = Tensor::cat(&[&zeros.narrow(1, 0, 3).unwrap(), &one.narrow(1, 3, 3).unwrap()], 1).unwrap();
    let apart = Tensor::cat(&[&left, &right], 0).unwrap();
    for f in [Features::Gram, Features::Pooled] {
        let same = objective::similarity(&copies, f).unwrap();
        assert!((same - 1.0).abs() < 1e-5, "{f:?}: copies have similarity {same}");
        let none = objective::similarity(&apart, f).unwrap();
        assert!(none.abs() < 1e-6, "{f:?}: images on disjoint channels have similarity {none}");
    }
}
