//! What training is made of in the library: the offline Fashion-MNIST subset, and Adam against
//! the textbook update. (Chapter 1's training loop is tested in chapter 1's `tests/train.rs`.)
use vision_interp::data::{self, Split};

#[test]
fn fashion_mnist_subset_loads_with_balanced_labels() {
    let eval = data::fashion_mnist(Split::Eval, 32).unwrap();
    assert_eq!(eval.len(), 2000);
    assert_eq!(eval.images.dims(), &[2000, 3, 32, 32]);
    let mut counts = [0usize; 10];
    for &l in &eval.labels {
        counts[l as usize] += 1;
    }
    assert!(counts.iter().all(|&c| c > 150), "labels per class: {counts:?}");
    let max = eval.images.max_all().unwrap().to_scalar::<f32>().unwrap();
    let min = eval.images.min_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(min >= 0.0 && max <= 1.0 && max > 0.9, "range {min}..{max}");
}

#[test]
fn adam_matches_the_textbook_update() {
    use candle_core::{DType, Device, Tensor};
    // Minimise Σ (w − t)²; two steps by hand with β1 0.9, β2 0.999, ε 1e-8, lr 0.1.
    let varmap = candle_nn::VarMap::new();
    let w = varmap.get(3, "w", candle_nn::Init::Const(0.0), DType::F32, &Device::Cpu).unwrap();
    let target = Tensor::new(&[1f32, -2.0, 0.5], &Device::Cpu).unwrap();
    let mut opt = vision_interp::optim::Adam::new(&varmap, 0.1).unwrap();
    let (mut wv, mut m, mut v) = ([0f64; 3], [0f64; 3], [0f64; 3]);
    let t = [1.0, -2.0, 0.5];
    for step in 1..=2 {
        let loss = (&w - &target).unwrap().sqr().unwrap().sum_all().unwrap();
        opt.backward_step(&loss).unwrap();
        for i in 0..3 {
            let g = 2.0 * (wv[i] - t[i]);
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            let (mh, vh) = (m[i] / (1.0 - 0.9f64.powi(step)), v[i] / (1.0 - 0.999f64.powi(step)));
            wv[i] -= 0.1 * mh / (vh.sqrt() + 1e-8);
        }
    }
    let got = w.to_vec1::<f32>().unwrap();
    for i in 0..3 {
        assert!((got[i] as f64 - wv[i]).abs() < 1e-5, "w[{i}] = {} instead of {}", got[i], wv[i]);
    }
}
