//! The zoo: every model builds from hash-built weights, every role names real layers, and each
//! chapter's core path (the calls chapters 1–3 make through the roles) runs on every model. The
//! chapters' own tables of units and layers are checked by each chapter's tests.
use candle_core::{Device, Tensor};
use vision_interp::attribution as attr;
use vision_interp::models::{self, parse_unit, Model, ModelEntry, Taps, MODELS};
use vision_interp::optvis::{objective, render, ImageParam, ImageSpec, RenderConfig};
use vision_interp::weights::WeightStore;

mod common;

fn photo(size: usize) -> Tensor {
    vision_interp::imageio::photo("chelsea.png", size, &Device::Cpu).unwrap()
}

/// What the chapters ask of a model through its roles, checked on one model.
fn check_roles(e: &ModelEntry, m: &dyn Model) {
    let r = m.card().roles;
    let name = e.name;
    let layers: Vec<&str> = r.depth.iter().chain(r.cam_ladder).chain(r.cascade).copied().collect();
    for l in layers.iter().chain([&r.last_conv]) {
        m.layer(l).unwrap_or_else(|err| panic!("{name}: role layer {l}: {err:#}"));
    }
    assert_eq!(r.cam_ladder.len(), 5, "{name}: the Grad-CAM figure has five depths");
    assert_eq!(r.cascade[0], "logits", "{name}: randomisation starts at the logits");
    parse_unit(m, r.showcase_unit).unwrap_or_else(|err| panic!("{name}: showcase unit: {err:#}"));
    if let Some((from, to, unit)) = r.circuit {
        let w = m.connection(from, to).unwrap();
        assert_eq!(w.dims(), &[m.layer(to).unwrap().channels, m.layer(from).unwrap().channels], "{name}");
        assert!(unit < w.dim(0).unwrap(), "{name}: circuit unit");
    }
    let w = m.first_conv().unwrap_or_else(|err| panic!("{name}: {err:#}"));
    assert_eq!(w.dims()[1], 3, "{name}: the first convolution reads RGB");
    for class in ["tiger cat", "espresso", "flamingo", "strawberry", "volcano"] {
        m.class_index(class).unwrap_or_else(|err| panic!("{name}: {err:#}"));
    }
    // Every layer the randomisation test names re-draws some weights, and only its own.
    let tensors = e.hash_weights(0).unwrap();
    for l in r.cascade {
        let prefixes = (e.prefixes)(l);
        assert!(
            tensors.keys().any(|t| prefixes.iter().any(|p| t.starts_with(p.as_str()))),
            "{name}: layer {l} (prefixes {prefixes:?}) matches no tensor"
        );
    }
}

#[test]
fn every_model_builds_from_hash_weights_and_its_roles_name_real_layers() {
    assert_eq!(MODELS[0].name, models::zoo::DEFAULT_MODEL, "the offline default comes first");
    for e in MODELS {
        let m = e.hashed(0, &Device::Cpu).unwrap();
        assert_eq!(m.name(), e.name);
        assert_eq!(models::entry(e.name).unwrap().name, e.name);
        for alias in e.aliases {
            assert_eq!(models::entry(alias).unwrap().name, e.name);
        }
        check_roles(e, m.as_ref());
    }
    let err = format!("{:#}", models::entry("resnet34").err().unwrap());
    assert!(err.contains("unknown model `resnet34`") && err.contains("resnet18, resnet50"), "{err}");
}

#[test]
fn simple_cnn_roles_name_real_layers() {
    let varmap = candle_nn::VarMap::new();
    let mut rng = vision_interp::rng::seeded(0);
    let classes = vision_interp::data::FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect();
    models::simple_cnn::init_varmap(&varmap, 10, &mut rng, &Device::Cpu).unwrap();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, candle_core::DType::F32, &Device::Cpu);
    let cnn = models::SimpleCnn::new(vb, classes, 32, rng).unwrap();
    let r = cnn.card().roles;
    for l in r.depth.iter().chain(r.cam_ladder).chain(r.cascade).chain([&r.last_conv]) {
        cnn.layer(l).unwrap();
    }
    parse_unit(&cnn, r.showcase_unit).unwrap();
}

/// Chapter 1's pretrained filters, chapter 2's attribution through the roles, chapter 3's
/// showcase unit and circuit, on every model of the zoo (hash weights, small sizes).
#[test]
fn each_chapters_core_path_runs_on_every_model() {
    let dev = Device::Cpu;
    for e in MODELS {
        let m = e.hashed(1, &dev).unwrap();
        let m = m.as_ref();
        let r = m.card().roles;
        // Chapter 1: the first-layer filters become tiles.
        let w = m.first_conv().unwrap();
        assert_eq!(vision_interp::figure::filter_tiles(&w).unwrap().len(), w.dim(0).unwrap());
        // Chapter 2: saliency, and Grad-CAM at every depth of the ladder, at the model's size.
        let img = photo(m.input_size());
        let class = m.class_index("tiger cat").unwrap();
        let sal = attr::saliency(m, &img, class).unwrap();
        assert_eq!(sal.dims(), &[m.input_size(), m.input_size()], "{}", e.name);
        for l in r.cam_ladder {
            let cam = attr::grad_cam(m, &img, class, l).unwrap().cam;
            let info = m.layer(l).unwrap();
            assert_eq!(cam.dims(), &[info.height, info.width], "{} {l}", e.name);
        }
        // Chapter 3: two steps of the showcase unit's render, and the circuit's weights.
        let unit = parse_unit(m, r.showcase_unit).unwrap();
        let obj = objective::channel(&unit.layer, unit.unit, None);
        let mut rng = vision_interp::rng::seeded(0);
        let param = ImageParam::new(&ImageSpec::square(32), &mut rng, &dev).unwrap();
        let cfg = RenderConfig { steps: 2, min_input: Some(64), ..Default::default() };
        let out = render(m, &obj, &param, &cfg, &mut rng).unwrap();
        assert!(out.losses.iter().all(|l| l.is_finite()), "{}: {:?}", e.name, out.losses);
        let depth = Taps::layers(r.depth);
        let acts = m.forward_taps(&m.preprocess(&photo(64).unsqueeze(0).unwrap()).unwrap(), &depth).unwrap();
        for l in r.depth {
            assert_eq!(acts.get(l).unwrap().dim(1).unwrap(), m.layer(l).unwrap().channels, "{} {l}", e.name);
        }
    }
}

/// `load_randomized` through a real weights file: the randomised layers change, BatchNorm
/// statistics and the layers below stay, and the same seed gives the same model.
#[test]
fn randomisation_redraws_the_named_layers_only() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["inceptionv1", "resnet18"] {
        let e = models::entry(name).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        candle_core::safetensors::save(&e.hash_weights(0).unwrap(), &path).unwrap();
        let r = e.hashed(0, &Device::Cpu).unwrap().card().roles;
        let x = photo(224).unsqueeze(0).unwrap();
        let (top, below) = (r.cascade[1], r.cascade[r.cascade.len() - 1]);
        let taps = Taps::layers(&[below, top, "logits"]);
        let run = |m: &dyn Model| m.forward_taps(&m.preprocess(&x).unwrap(), &taps).unwrap();
        let trained = e.load(Some(&path), &Device::Cpu).unwrap();
        let random = e.load_randomized(Some(&path), &Device::Cpu, &r.cascade[..2], 7).unwrap();
        let again = e.load_randomized(Some(&path), &Device::Cpu, &r.cascade[..2], 7).unwrap();
        let (a, b, c) = (run(trained.as_ref()), run(random.as_ref()), run(again.as_ref()));
        let diff = |l: &str, p: &models::Activations, q: &models::Activations| {
            common::max_abs_diff(p.get(l).unwrap(), q.get(l).unwrap())
        };
        assert_eq!(diff(below, &a, &b), 0.0, "{name}: {below} is below the randomised layers");
        assert!(diff(top, &a, &b) > 1e-3, "{name}: {top} was randomised");
        assert!(diff("logits", &a, &b) > 1e-3, "{name}: the logits were randomised");
        assert_eq!(diff("logits", &b, &c), 0.0, "{name}: same seed, same draw");
        let err = format!(
            "{:#}",
            e.load_randomized(Some(&path), &Device::Cpu, &["no_such_layer"], 0).err().unwrap()
        );
        assert!(err.contains("no layer `no_such_layer`"), "{err}");
    }
}

/// A hashed store lists the tensors a model reads: its real state dict's names and shapes.
#[test]
fn hash_weights_are_the_real_state_dict() {
    let e = models::entry("inceptionv1").unwrap();
    let tensors = e.hash_weights(0).unwrap();
    let expected = models::inception_v1::tensor_shapes();
    assert_eq!(tensors.len(), expected.len());
    for (name, shape) in expected {
        assert_eq!(tensors[&name].dims(), shape.as_slice(), "{name}");
    }
    // A hashed store shared by clones records what a build asked for, once per tensor.
    let store = WeightStore::hashed(0, &Device::Cpu);
    assert!(store.requested().is_empty());
    (e.build)(store.clone()).unwrap();
    assert_eq!(store.requested().len(), tensors.len());
    let t = &store.requested()[0];
    assert_eq!(common::max_abs_diff(&t.1, &tensors[&t.0]), 0.0, "same recipe, same values");
}
