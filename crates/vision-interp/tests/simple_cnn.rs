//! SimpleCNN: the course's architecture, and that it learns.
use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use vision_interp::models::simple_cnn::{init_varmap, SimpleCnn};
use vision_interp::models::{Model, Taps};

fn build(classes: usize, size: usize, seed: u64) -> (SimpleCnn, VarMap) {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let mut rng = vision_interp::rng::seeded(seed);
    init_varmap(&varmap, classes, &mut rng, &dev).unwrap();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let names = (0..classes).map(|c| format!("class {c}")).collect();
    (SimpleCnn::new(vb, names, size, rng).unwrap(), varmap)
}

#[test]
fn has_the_course_parameter_count_and_layer_shapes() {
    let (net, varmap) = build(10, 128, 0);
    let trainable: usize = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter(|(name, _)| !name.contains("running_"))
        .map(|(_, v)| v.elem_count())
        .sum();
    assert_eq!(trainable, 1_147_914);
    let x = Tensor::zeros((2, 3, 128, 128), DType::F32, &Device::Cpu).unwrap();
    let names: Vec<&str> = net.layers().iter().map(|l| l.name.as_str()).collect();
    let acts = net.forward_taps(&x, &Taps::layers(&names)).unwrap();
    for l in net.layers() {
        let a = acts.get(&l.name).unwrap();
        if l.height == 1 {
            assert_eq!(a.dims(), &[2, l.channels], "{}", l.name);
        } else {
            assert_eq!(a.dims(), &[2, l.channels, l.height, l.width], "{}", l.name);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_network() {
    let x =
        vision_interp::rng::randn(&mut vision_interp::rng::seeded(5), (1, 3, 32, 32), 0.0, 1.0, &Device::Cpu)
            .unwrap();
    let a = build(3, 32, 7).0.forward_t(&x, false).unwrap();
    let b = build(3, 32, 7).0.forward_t(&x, false).unwrap();
    let c = build(3, 32, 8).0.forward_t(&x, false).unwrap();
    let diff = |p: &Tensor, q: &Tensor| {
        (p - q).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap()
    };
    assert_eq!(diff(&a, &b), 0.0);
    assert!(diff(&a, &c) > 0.0);
}

#[test]
fn training_with_adam_fits_a_small_labelled_set() {
    // Two classes a CNN must look at to tell apart: a bright square in the top-left or in the
    // bottom-right corner, on noise.
    let dev = Device::Cpu;
    let mut rng = vision_interp::rng::seeded(1);
    let n = 32;
    let mut images = vision_interp::rng::rand_uniform(&mut rng, (n, 3, 32, 32), 0.0, 0.5, &dev).unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 2).collect();
    let mask_tl = Tensor::zeros((32, 32), DType::F32, &dev)
        .unwrap()
        .slice_assign(&[0..12, 0..12], &Tensor::ones((12, 12), DType::F32, &dev).unwrap())
        .unwrap();
    let mask_br = Tensor::zeros((32, 32), DType::F32, &dev)
        .unwrap()
        .slice_assign(&[20..32, 20..32], &Tensor::ones((12, 12), DType::F32, &dev).unwrap())
        .unwrap();
    let masks: Vec<Tensor> =
        labels.iter().map(|&l| if l == 0 { mask_tl.clone() } else { mask_br.clone() }).collect();
    images = (images
        + (Tensor::stack(&masks, 0).unwrap().unsqueeze(1).unwrap() * 0.5)
            .unwrap()
            .broadcast_as((n, 3, 32, 32))
            .unwrap())
    .unwrap();
    let y = Tensor::new(labels.as_slice(), &dev).unwrap();
    let (net, varmap) = build(2, 32, 2);
    let x = net.preprocess(&images).unwrap();
    let params = candle_nn::ParamsAdamW { lr: 1e-3, weight_decay: 0.0, ..Default::default() };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), params).unwrap();
    let loss_at = |net: &SimpleCnn| {
        candle_nn::loss::cross_entropy(&net.forward_t(&x, false).unwrap(), &y)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    };
    let before = loss_at(&net);
    for _ in 0..30 {
        let loss = candle_nn::loss::cross_entropy(&net.forward_t(&x, true).unwrap(), &y).unwrap();
        opt.backward_step(&loss).unwrap();
    }
    let after = loss_at(&net);
    let pred = net.forward_t(&x, false).unwrap().argmax(D::Minus1).unwrap();
    let correct =
        pred.eq(&y).unwrap().to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
    println!("loss {before:.3} → {after:.3}, {correct}/{n} correct");
    assert!(after < 0.5 * before, "loss {before} → {after}");
    assert_eq!(correct as usize, n);
}
