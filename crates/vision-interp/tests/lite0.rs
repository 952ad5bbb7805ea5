//! EfficientNet-Lite0 against timm (the fixture) and on real photos.
use std::path::Path;

use candle_core::{Device, Tensor};
use vision_interp::attribution::top_k;
use vision_interp::models::{EfficientNetLite0, Model, Taps};

fn model() -> EfficientNetLite0 {
    EfficientNetLite0::load(None, &Device::Cpu).expect("Lite0 weights in assets/")
}

/// ‖a − b‖ / ‖b‖
fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let num = (a - b).unwrap().sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
    let den = b.sqr().unwrap().sum_all().unwrap().sqrt().unwrap();
    (num / den).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn logits_and_stages_match_timm() {
    let fixture = candle_core::safetensors::load(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lite0-public.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let m = model();
    let mut names: Vec<String> = (0..7).map(|s| format!("stage{s}")).collect();
    names.push("logits".into());
    let acts = m.forward_taps(&fixture["input"], &Taps::layers(&names)).unwrap();
    for name in &names {
        let key = if name == "logits" { "logits".to_owned() } else { format!("act.{name}") };
        let want = &fixture[&key];
        let got = acts.get(name).unwrap();
        assert_eq!(got.dims(), want.dims(), "{name}");
        let e = rel_err(got, want);
        println!("{name:>7}: relative error {e:.2e}");
        assert!(e < 1e-4, "{name}: relative error {e}");
    }
}

fn photo(name: &str) -> Tensor {
    vision_interp::imageio::load_photo(&vision_interp::asset(&format!("photos/{name}")), 224, &Device::Cpu)
        .unwrap()
}

#[test]
fn photos_are_classified() {
    let m = model();
    let top = |name: &str| {
        let p = top_k(&m, &photo(name), 3).unwrap();
        println!("{name}: {:?}", p.iter().map(|p| (p.class, p.name.as_str(), p.prob)).collect::<Vec<_>>());
        p.iter().map(|p| p.class).collect::<Vec<_>>()
    };
    let chelsea = top("chelsea.png");
    assert!((281..=285).contains(&chelsea[0]), "chelsea top-1 {chelsea:?}");
    assert_eq!(top("coffee.png")[0], 967, "coffee → espresso");
    assert_eq!(top("camera.png")[0], 872, "camera (grey) → tripod");
    let hopper = top("grace_hopper.jpg");
    assert!(hopper.iter().any(|c| [400, 652, 667].contains(c)), "grace_hopper top-3 {hopper:?}");
}

#[test]
fn layer_listing_matches_shapes() {
    let m = model();
    let x = m.preprocess(&photo("coffee.png").unsqueeze(0).unwrap()).unwrap();
    let names: Vec<&str> = m.layers().iter().map(|l| l.name.as_str()).collect();
    let acts = m.forward_taps(&x, &Taps::layers(&names)).unwrap();
    for l in m.layers() {
        let a = acts.get(&l.name).unwrap();
        if l.name == "logits" {
            assert_eq!(a.dims(), &[1, l.channels]);
        } else {
            assert_eq!(a.dims(), &[1, l.channels, l.height, l.width], "{}", l.name);
        }
    }
}

#[test]
fn stem_and_head_are_relu6_of_their_pre_activation_layers() {
    let m = model();
    assert_eq!(m.pre_activation("stem"), Some("stem_pre_relu"));
    assert_eq!(m.pre_activation("head"), Some("head_pre_relu"));
    assert_eq!(m.pre_activation("stage3"), None, "a linear bottleneck has no activation");
    let img = vision_interp::imageio::photo("chelsea.png", 224, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let taps = Taps::layers(&["stem_pre_relu", "stem", "head_pre_relu", "head"]);
    let acts = m.forward_taps(&m.preprocess(&img).unwrap(), &taps).unwrap();
    for (pre, post) in [("stem_pre_relu", "stem"), ("head_pre_relu", "head")] {
        let (pre, post) = (acts.get(pre).unwrap(), acts.get(post).unwrap());
        let d = (pre.clamp(0f32, 6f32).unwrap() - post).unwrap().abs().unwrap().max_all().unwrap();
        let d = d.to_scalar::<f32>().unwrap();
        assert!(d == 0.0, "{post} differs from ReLU6 of its input by {d}");
        // On a real photo both ends of ReLU6 are reached, so the cap matters.
        let (lo, hi) = (
            pre.min_all().unwrap().to_scalar::<f32>().unwrap(),
            pre.max_all().unwrap().to_scalar::<f32>().unwrap(),
        );
        assert!(lo < 0.0 && hi > 6.0, "range {lo}..{hi}");
    }
}
