//! ResNet-18, ResNet-50, VGG16, MobileNetV2 and EfficientNet-Lite1/2 against timm, GoogLeNet
//! against torchvision: every tensor name and shape of the real state dicts, weights and input
//! rebuilt from the hash recipe, written as safetensors and loaded through
//! `models::load(name, --weights)`, then layer summaries and logits compared with what the
//! peer computed (`crates/bench/peers/make_torchvision_fixtures.py`).
use candle_core::Device;
use serde_json::Value;
use vision_interp::models::{self, hash_init, parse_unit, Taps};

mod common;
use common::check;

fn parity(arch: &str, params: usize) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torchvision-parity.json");
    let fx: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let fx = &fx["models"][arch];
    let shapes: Vec<(String, Vec<usize>)> = fx["tensors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (k.clone(), v.as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect())
        })
        .collect();
    let count: usize = shapes
        .iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(_, s)| s.iter().product::<usize>())
        .sum();
    assert_eq!(count, params, "{arch}: parameters of the real state dict");
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join(format!("{arch}.safetensors"));
    candle_core::safetensors::save(&hash_init::tensors(&shapes, 0, &Device::Cpu).unwrap(), &weights).unwrap();
    let m = models::load(arch, Some(&weights), &Device::Cpu).unwrap();
    let size = fx["input_size"].as_u64().unwrap() as usize;
    assert_eq!(size, m.input_size(), "{arch}: input size");
    let x = hash_init::input(0, size, &Device::Cpu).unwrap();
    let layers: Vec<&str> = fx["layers"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut wanted = layers.clone();
    wanted.push("logits");
    let acts = m.forward_taps(&m.preprocess(&x).unwrap(), &Taps::layers(&wanted)).unwrap();
    for layer in &layers {
        let e = check(&format!("{arch} {layer}"), acts.get(layer).unwrap(), &fx["layers"][layer], 1e-4);
        println!("{arch} {layer:>12}: relative difference {e:.1e}");
    }
    let e = check(&format!("{arch} logits"), acts.get("logits").unwrap(), &fx["logits"], 1e-4);
    println!("{arch} {:>12}: relative difference {e:.1e}", "logits");
    for l in m.layers() {
        assert!(l.channels > 0, "{arch} {}", l.name);
    }
    let err = format!("{:#}", parse_unit(m.as_ref(), "layer9_0:1").unwrap_err());
    assert!(err.contains("layers are") || err.contains("its layers are"), "{err}");
}

#[test]
fn resnet18_matches_timm() {
    parity("resnet18", 11_689_512);
}

#[test]
fn resnet50_matches_timm() {
    parity("resnet50", 25_557_032);
}

#[test]
fn vgg16_matches_timm() {
    parity("vgg16", 138_357_544);
}

#[test]
fn mobilenet_v2_matches_timm() {
    parity("mobilenet-v2", 3_504_872);
}

#[test]
fn efficientnet_lite1_matches_timm() {
    parity("efficientnet-lite1", 5_416_680);
}

#[test]
fn efficientnet_lite2_matches_timm() {
    parity("efficientnet-lite2", 6_092_072);
}

#[test]
fn googlenet_matches_torchvision() {
    parity("googlenet", 6_624_904);
}
