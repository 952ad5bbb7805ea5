//! Chapter 1's training: it learns, and resumes from a checkpoint to the same result.
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use chapter_01_cnn_basics::train::{train, TrainConfig};
use vision_interp::data::{self, Split};
use vision_interp::models::simple_cnn::{init_varmap, SimpleCnn};

fn fresh(seed: u64) -> (SimpleCnn, VarMap) {
    let varmap = VarMap::new();
    let mut rng = vision_interp::rng::seeded(seed);
    init_varmap(&varmap, 10, &mut rng, &Device::Cpu).unwrap();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let names = data::FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect();
    (SimpleCnn::new(vb, names, 32, rng).unwrap(), varmap)
}

fn weights(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
    let mut w: Vec<_> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(n, v)| (n.clone(), v.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn training_learns_and_a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let train_set = data::fashion_mnist(Split::Train, 32).unwrap().take(384).unwrap();
    let val = data::fashion_mnist(Split::Eval, 32).unwrap().take(256).unwrap();
    let cfg = TrainConfig { epochs: 2, batch: 32, lr: 1e-3, seed: 3 };
    let dir = tempfile::tempdir().unwrap();

    // Uninterrupted: two epochs.
    let (net, mut varmap) = fresh(3);
    let full = train(&net, &mut varmap, &train_set, &val, cfg, &Device::Cpu, None).unwrap();
    assert!(full[1].train_loss < full[0].train_loss, "{full:?}");
    assert!(full[1].val_acc > 30.0, "10 classes, chance is 10 %: {full:?}");

    // Interrupted after epoch 1 (a new process would start from scratch and find the
    // checkpoint), then resumed to epoch 2.
    let ckpt = dir.path().join("simple-cnn.safetensors");
    let (net1, mut vm1) = fresh(3);
    train(&net1, &mut vm1, &train_set, &val, TrainConfig { epochs: 1, ..cfg }, &Device::Cpu, Some(&ckpt))
        .unwrap();
    let (net2, mut vm2) = fresh(3);
    let resumed = train(&net2, &mut vm2, &train_set, &val, cfg, &Device::Cpu, Some(&ckpt)).unwrap();
    assert_eq!(resumed, full, "history differs after resuming");
    assert!(weights(&vm2) == weights(&varmap), "weights differ after resuming");

    // A corrupt or foreign checkpoint is reported and ignored: training starts from the
    // beginning and ends where the uninterrupted run did.
    let json = ckpt.with_extension("json");
    let (good_w, good_j) = (std::fs::read(&ckpt).unwrap(), std::fs::read(&json).unwrap());
    let broken: [(&str, Vec<u8>, Vec<u8>); 4] = [
        ("truncated weights", good_w[..good_w.len() / 2].to_vec(), good_j.clone()),
        ("truncated progress", good_w.clone(), good_j[..good_j.len() / 2].to_vec()),
        ("history too long", good_w.clone(), {
            let mut p: serde_json::Value = serde_json::from_slice(&good_j).unwrap();
            let h = p["history"].as_array().unwrap().clone();
            p["history"] = serde_json::Value::Array([h.clone(), h.clone(), h].concat());
            serde_json::to_vec(&p).unwrap()
        }),
        (
            "another model's weights",
            std::fs::read(vision_interp::asset("models/efficientnet-lite0.safetensors")).unwrap(),
            good_j,
        ),
    ];
    for (what, w, j) in broken {
        std::fs::write(&ckpt, w).unwrap();
        std::fs::write(&json, j).unwrap();
        let (net3, mut vm3) = fresh(3);
        let again = train(
            &net3,
            &mut vm3,
            &train_set,
            &val,
            TrainConfig { epochs: 1, ..cfg },
            &Device::Cpu,
            Some(&ckpt),
        )
        .unwrap_or_else(|e| panic!("{what}: {e:#}"));
        assert_eq!(again[..], full[..1], "{what}: not a fresh start");
    }
}
