//! InceptionV1 against Lucent: weights and input rebuilt from the fixture's integer-hash recipe,
//! written as a safetensors file with `inception5h.pth`'s tensor names, loaded through the
//! normal loader; every layer summary and the input gradient of the channel objective compared
//! with what Lucent computed. `INCEPTION_PARITY_FIXTURE=path.json` checks another fixture of the
//! same format.
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use serde_json::Value;

mod common;
use common::check;
use vision_interp::models::hash_init;
use vision_interp::models::inception_v1::{tensor_shapes, InceptionV1};
use vision_interp::models::{parse_unit, Model, Taps};

fn fixture() -> Value {
    let path = std::env::var_os("INCEPTION_PARITY_FIXTURE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inceptionv1-parity.json")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn model(phase: u32) -> (tempfile::TempDir, InceptionV1) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inception5h.safetensors");
    candle_core::safetensors::save(
        &hash_init::tensors(&tensor_shapes(), phase, &Device::Cpu).unwrap(),
        &path,
    )
    .unwrap();
    let m = InceptionV1::load(Some(&path), &Device::Cpu).unwrap();
    (dir, m)
}

#[test]
fn inceptionv1_matches_lucent_layer_by_layer_and_in_the_input_gradient() {
    let fx = fixture();
    let phase = fx["phase"].as_u64().unwrap() as u32;
    let (_dir, m) = model(phase);
    let size = fx["input_grad"]["shape"][2].as_u64().unwrap() as usize;
    let x = Var::from_tensor(&hash_init::input(phase, size, &Device::Cpu).unwrap()).unwrap();
    let layers: Vec<&str> = fx["layers"].as_object().unwrap().keys().map(String::as_str).collect();
    let acts = m.forward_taps(&m.preprocess(x.as_tensor()).unwrap(), &Taps::layers(&layers)).unwrap();
    for layer in &layers {
        let e = check(layer, acts.get(layer).unwrap(), &fx["layers"][layer], 1e-4);
        println!("{layer:>10}: relative difference {e:.1e}");
    }
    // Lucent's channel objective: minus the mean of one channel over batch and space.
    let unit = parse_unit(&m, fx["objective"].as_str().unwrap()).unwrap();
    let loss =
        acts.get(&unit.layer).unwrap().narrow(1, unit.unit, 1).unwrap().mean_all().unwrap().neg().unwrap();
    let l = loss.to_scalar::<f32>().unwrap() as f64;
    let want = fx["loss"].as_f64().unwrap();
    assert!((l - want).abs() < 1e-4 * want.abs(), "loss {l} vs {want}");
    let grad = loss.backward().unwrap().get(x.as_tensor()).unwrap().clone();
    let e = check("input gradient", &grad, &fx["input_grad"], 1e-3);
    println!("loss {l} (Lucent {want}); input gradient: relative difference {e:.1e}");
}

#[test]
fn inceptionv1_lists_lucents_layers_and_rejects_unknown_units() {
    let (_dir, m) = model(0);
    let names: Vec<&str> = m.layers().iter().map(|l| l.name.as_str()).collect();
    // Lucent's 138 hookable layers, the `logits` alias, and each of the nine blocks' branches
    // before their ReLUs (`mixed4a_pre_relu`, the book's own: Lucent has no such module).
    assert_eq!(names.len(), 139 + 9, "Lucent's 138 hookable layers, `logits` and 9 `mixedXX_pre_relu`");
    for (name, channels, size) in [
        ("conv2d0", 64, 112),
        ("maxpool1", 192, 28),
        ("mixed4a", 508, 14),
        ("mixed4a_pre_relu", 508, 14),
        ("mixed4a_3x3_bottleneck", 96, 14),
        ("mixed5b", 1024, 7),
        ("softmax2", 1008, 1),
    ] {
        let l = m.layer(name).unwrap();
        assert_eq!((l.channels, l.height), (channels, size), "{name}");
    }
    assert_eq!(m.classes()[229], "strawberry");
    let err = format!("{:#}", parse_unit(&m, "mixed4z:3").unwrap_err());
    assert!(
        err.contains("no layer `mixed4z` (closest: mixed4a, mixed4b, mixed4c, mixed4d, mixed4e)"),
        "{err}"
    );
    assert!(err.contains("mixed4a_3x3_bottleneck"), "the full list follows: {err}");
    let err = format!("{:#}", parse_unit(&m, "mixed4a:9999").unwrap_err());
    assert!(err.contains("units 0..=507"), "{err}");
    // Every layer can be recorded, and a forward pass at another size works.
    let x = Tensor::zeros((1, 3, 160, 160), DType::F32, &Device::Cpu).unwrap();
    let acts = m.forward_taps(&m.preprocess(&x).unwrap(), &Taps::layers(&names)).unwrap();
    assert_eq!(acts.get("mixed5b").unwrap().dims(), &[1, 1024, 5, 5]);
}

#[test]
fn plain_and_redirected_relus_differ_only_in_the_backward_pass() {
    let (_dir, m) = model(0);
    let x0 = hash_init::input(0, 96, &Device::Cpu).unwrap();
    let run = |m: &InceptionV1| {
        let x = Var::from_tensor(&x0).unwrap();
        let a = m.forward_taps(&m.preprocess(x.as_tensor()).unwrap(), &Taps::layers(&["mixed3a"])).unwrap();
        let y = a.get("mixed3a").unwrap().clone();
        let g = y.narrow(1, 0, 1).unwrap().mean_all().unwrap().backward().unwrap();
        (y, g.get(x.as_tensor()).unwrap().clone())
    };
    let (y1, g1) = run(&m);
    m.set_redirected_relu(false).unwrap();
    let (y2, g2) = run(&m);
    let diff = |a: &Tensor, b: &Tensor| {
        (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
    };
    assert_eq!(diff(&y1, &y2), 0.0);
    assert!(diff(&g1, &g2) > 0.0);
}

#[test]
fn a_blocks_values_before_its_relus_are_the_block_before_its_relus() {
    let (_dir, m) = model(0);
    let x = vision_interp::models::hash_init::input(1, 64, &candle_core::Device::Cpu).unwrap();
    let taps = vision_interp::models::Taps::layers(&["mixed3b_pre_relu", "mixed3b"]);
    let acts = m.forward_taps(&m.preprocess(&x).unwrap(), &taps).unwrap();
    let (pre, post) = (acts.get("mixed3b_pre_relu").unwrap(), acts.get("mixed3b").unwrap());
    let diff =
        (pre.relu().unwrap() - post).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(diff, 0.0);
    let negative = pre.lt(0f32).unwrap().to_dtype(candle_core::DType::F32).unwrap().mean_all().unwrap();
    assert!(negative.to_scalar::<f32>().unwrap() > 0.05, "values before the ReLUs have both signs");
}
