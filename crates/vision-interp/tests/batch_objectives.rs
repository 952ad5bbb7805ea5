//! Objectives over a batch (chapters 8 and 9): Lucent's own losses on the same activations
//! (`fixtures/lucent-objectives.json`, made by `crates/bench/peers/make_objective_fixtures.py`),
//! the similarity measure, a gradient against finite differences, and the errors for input
//! that cannot mean anything.
use candle_core::{Device, Tensor, Var};
use vision_interp::models::Activations;
use vision_interp::optvis::objective::{self, Features};

mod common;
use common::{fixture_layer as layer, objective_error as error, objective_loss as loss};

fn fixture_acts() -> Activations {
    Activations::from_tensors([
        ("a".to_string(), layer(&[4, 6, 5, 5], 0.0)),
        ("b".to_string(), layer(&[4, 8, 5, 5], 1.0)),
    ])
}

#[test]
fn batch_objectives_match_lucent_on_the_same_activations() {
    let text = include_str!("fixtures/lucent-objectives.json");
    let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
    let cases = [
        ("diversity a", objective::diversity("a")),
        ("diversity b", objective::diversity("b")),
        ("channel_interpolate a:2 b:5", objective::channel_interpolate("a", 2, "b", 5)),
        ("alignment a 2", objective::alignment("a", 2.0)),
        ("alignment b 5", objective::alignment("b", 5.0)),
        (
            "channel a:3 batch 1 - batch 0",
            objective::channel("a", 3, Some(1)) - objective::channel("a", 3, Some(0)),
        ),
        ("channel a:1 - 100 diversity a", objective::channel("a", 1, None) - 1e2 * objective::diversity("a")),
    ];
    let acts = fixture_acts();
    for (name, obj) in cases {
        let expected = fixture["losses"][name].as_f64().unwrap_or_else(|| panic!("{name} is in the fixture"));
        let got = loss(&obj, &acts) as f64;
        let rel = (got - expected).abs() / expected.abs().max(1e-3);
        assert!(rel < 1e-5, "{name}: {got} against Lucent's {expected}");
    }
}

#[test]
fn similarity_is_one_for_copies_and_falls_as_images_differ() {
    let one = layer(&[1, 6, 5, 5], 0.0);
    let copies = Tensor::cat(&[&one, &one, &one], 0).unwrap();
    for f in [Features::Gram, Features::Pooled] {
        let s = objective::similarity(&copies, f).unwrap();
        assert!((s - 1.0).abs() < 1e-5, "{f:?}: copies have similarity {s}");
    }
    // Two images that use disjoint channels share no Gram entry and no pooled channel.
    let zeros = one.zeros_like().unwrap();
    let first = Tensor::cat(&[&one.narrow(1, 0, 3).unwrap(), &zeros.narrow(1, 3, 3).unwrap()], 1).unwrap();
    let second =
        Tensor::cat(&[&zeros.narrow(1, 0, 3).unwrap(), &one.narrow(1, 3, 3).unwrap().abs().unwrap()], 1)
            .unwrap();
    let apart = Tensor::cat(&[&first.abs().unwrap(), &second], 0).unwrap();
    for f in [Features::Gram, Features::Pooled] {
        let s = objective::similarity(&apart, f).unwrap();
        assert!(s.abs() < 1e-6, "{f:?}: disjoint channels have similarity {s}");
    }
    // The diversity loss is the similarity summed over ordered pairs, over the batch size.
    let acts = fixture_acts();
    let a = acts.get("a").unwrap();
    let s = objective::similarity(a, Features::Gram).unwrap();
    let l = loss(&objective::diversity("a"), &acts);
    assert!((l + s * 4.0 * 3.0 / 4.0).abs() < 1e-5, "loss {l}, similarity {s}");
}

#[test]
fn pooled_diversity_gradient_matches_finite_differences() {
    let a = layer(&[3, 4, 2, 3], 0.5);
    let var = Var::from_tensor(&a).unwrap();
    let obj = objective::diversity_of("a", Features::Pooled);
    let at = |t: &Tensor| loss(&obj, &Activations::from_tensors([("a".to_string(), t.clone())]));
    let l = obj.loss(&Activations::from_tensors([("a".to_string(), var.as_tensor().clone())]), &a).unwrap();
    let grad =
        l.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let base = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let h = 1e-2f32;
    for k in [0, 5, 17, 40, 71] {
        let mut plus = base.clone();
        let mut minus = base.clone();
        plus[k] += h;
        minus[k] -= h;
        let (p, m) = (
            Tensor::from_vec(plus, a.shape(), &Device::Cpu).unwrap(),
            Tensor::from_vec(minus, a.shape(), &Device::Cpu).unwrap(),
        );
        let fd = (at(&p) - at(&m)) / (2.0 * h);
        assert!(
            (fd - grad[k]).abs() < 2e-3 + 0.02 * fd.abs(),
            "element {k}: finite difference {fd}, gradient {}",
            grad[k]
        );
    }
}

#[test]
fn batch_objectives_refuse_what_cannot_mean_anything() {
    let acts = fixture_acts();
    let e = error(&objective::channel("a", 2, Some(4)), &acts);
    assert!(e.contains("batch index 4 is out of range for a batch of 4"), "{e}");
    let e = error(&objective::channel("b", 8, None), &acts);
    assert!(e.contains("b has units 0..=7 (8 channels); unit 8 is out of range"), "{e}");
    let one = Activations::from_tensors([("one".to_string(), layer(&[4, 1, 5, 5], 0.0))]);
    let e = error(&objective::diversity("one"), &one);
    assert!(e.contains("one channel"), "{e}");
    let single = Activations::from_tensors([("a".to_string(), layer(&[1, 6, 5, 5], 0.0))]);
    let e = error(&objective::diversity("a"), &single);
    assert!(e.contains("at least two images"), "{e}");
    let sizes = Activations::from_tensors([
        ("a".to_string(), layer(&[4, 6, 5, 5], 0.0)),
        ("c".to_string(), layer(&[4, 6, 3, 3], 0.0)),
    ]);
    let e = error(&objective::channel_interpolate("a", 1, "c", 2), &sizes);
    assert!(e.contains("layers of different sizes: a is [5, 5] and c is [3, 3]"), "{e}");
}
