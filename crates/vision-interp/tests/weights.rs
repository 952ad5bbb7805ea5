//! Finding weights offline, and the errors a user sees when they are missing or wrong.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use vision_interp::models::EfficientNetLite0;
use vision_interp::weights::{resolve, WeightSpec, WeightStore};

mod common;

const MISSING: WeightSpec = WeightSpec {
    model: "test-model",
    file_name: "no-such-weights.safetensors",
    hub_repo: "nobody/no-such-repo",
    hub_file: "model.safetensors",
    hub_revision: "main",
    url: None,
    make: None,
};

/// Environment variables are process-wide, so every check that sets them lives in this one test.
#[test]
fn sources_are_tried_in_order_and_the_offline_error_says_what_was_tried() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let hf_home = tmp.path().join("hf");
    std::env::set_var("VISION_INTERP_CACHE", &cache);
    std::env::set_var("HF_HOME", &hf_home);
    std::env::set_var("HF_HUB_OFFLINE", "1");

    // Nothing anywhere: one error naming every place tried and how to supply the file.
    let err = format!("{:#}", resolve(&MISSING, None).unwrap_err());
    for needle in [
        "no weights for test-model",
        "assets/models/no-such-weights.safetensors",
        cache.join("no-such-weights.safetensors").to_str().unwrap(),
        "nobody/no-such-repo@main",
        "HF_HUB_OFFLINE",
        "--weights PATH",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }

    // A file in the Hugging Face cache layout (refs/main → snapshots/<commit>/file) is found.
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = hf_home.join("hub/models--nobody--no-such-repo");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snap = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::write(snap.join("model.safetensors"), b"x").unwrap();
    assert_eq!(resolve(&MISSING, None).unwrap(), snap.join("model.safetensors"));

    // The local cache comes before the hub cache.
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("no-such-weights.safetensors"), b"x").unwrap();
    assert_eq!(resolve(&MISSING, None).unwrap(), cache.join("no-such-weights.safetensors"));

    // --weights comes first, and a wrong path is an error, not a fallback.
    let explicit = tmp.path().join("mine.safetensors");
    std::fs::write(&explicit, b"x").unwrap();
    assert_eq!(resolve(&MISSING, Some(&explicit)).unwrap(), explicit);
    let err = resolve(&MISSING, Some(Path::new("/nonexistent/w.safetensors"))).unwrap_err();
    assert!(err.to_string().contains("--weights /nonexistent/w.safetensors: no such file"), "{err}");
}

fn lite0_tensors() -> HashMap<String, Tensor> {
    candle_core::safetensors::load(
        vision_interp::asset("models/efficientnet-lite0.safetensors"),
        &Device::Cpu,
    )
    .unwrap()
}

fn build(tensors: HashMap<String, Tensor>) -> String {
    let store = WeightStore::from_tensors(Path::new("edited.safetensors"), tensors);
    match EfficientNetLite0::from_store(&vision_interp::models::mobile::LITE0, &store) {
        Ok(_) => "loaded".into(),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn wrong_weights_name_the_tensor_at_fault() {
    let mut t = lite0_tensors();
    t.remove("blocks.3.1.conv_dw.weight");
    let err = build(t);
    assert!(
        err.contains("missing tensor `blocks.3.1.conv_dw.weight`") && err.contains("[480, 1, 3, 3]"),
        "{err}"
    );

    let mut t = lite0_tensors();
    t.insert("classifier.weight".into(), Tensor::zeros((10, 1280), DType::F32, &Device::Cpu).unwrap());
    let err = build(t);
    assert!(err.contains("`classifier.weight` has shape [10, 1280], expected [1000, 1280]"), "{err}");

    let mut t = lite0_tensors();
    let nan =
        Tensor::new(&[f32::NAN], &Device::Cpu).unwrap().broadcast_as((32,)).unwrap().contiguous().unwrap();
    t.insert("bn1.running_var".into(), nan);
    let err = build(t);
    assert!(err.contains("`bn1.running_var` holds NaN"), "{err}");
}

#[test]
fn unreadable_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.safetensors");
    std::fs::write(&bad, b"this is not a weights file at all").unwrap();
    let err = format!("{:#}", WeightStore::load(&bad, &Device::Cpu).err().unwrap());
    assert!(err.contains("neither a safetensors file nor a PyTorch state dict"), "{err}");
    let short = tmp.path().join("short.safetensors");
    std::fs::write(&short, b"garbage\n").unwrap();
    let err = format!("{:#}", WeightStore::load(&short, &Device::Cpu).err().unwrap());
    assert!(err.contains("short.safetensors is not a weights file: it holds only 8 bytes"), "{err}");
    let zip = tmp.path().join("broken.pth");
    std::fs::write(&zip, b"PK\x03\x04 a truncated zip archive").unwrap();
    let err = format!("{:#}", WeightStore::load(&zip, &Device::Cpu).err().unwrap());
    assert!(err.contains("is not a readable PyTorch state dict"), "{err}");

    let img = tmp.path().join("photo.png");
    std::fs::write(&img, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let err = format!("{:#}", vision_interp::imageio::load_photo(&img, 224, &Device::Cpu).unwrap_err());
    assert!(err.contains("cannot decode image") && err.contains("photo.png"), "{err}");
    let err = format!(
        "{:#}",
        vision_interp::imageio::load_photo(&tmp.path().join("nope.jpg"), 224, &Device::Cpu).unwrap_err()
    );
    assert!(err.contains("cannot open image") && err.contains("nope.jpg"), "{err}");
}

#[test]
fn greyscale_images_become_rgb() {
    let img =
        vision_interp::imageio::load_photo(&vision_interp::asset("photos/camera.png"), 64, &Device::Cpu)
            .unwrap();
    assert_eq!(img.dims(), &[3, 64, 64]);
    let (r, g) = (img.get(0).unwrap(), img.get(1).unwrap());
    let d = common::max_abs_diff(&r, &g);
    assert_eq!(d, 0.0);
}
