//! Non-negative matrix factorisation: the error never rises, and a planted factorisation is
//! found again.
use candle_core::Device;
use chapter_12_activation_grids::nmf::nmf;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vision_interp::{DType, Tensor};

fn planted(rng: &mut StdRng) -> (Tensor, Tensor, Tensor) {
    let d = Device::Cpu;
    let w = vision_interp::rng::randn(rng, (60, 3), 0.0, 1.0, &d).unwrap().abs().unwrap();
    // Three parts on disjoint channels, so the factorisation is unique up to order and scale.
    let mut h = vec![0f32; 3 * 24];
    for (i, v) in h.iter_mut().enumerate() {
        let (part, ch) = (i / 24, i % 24);
        if ch / 8 == part {
            *v = 1.0 + (ch % 8) as f32 / 4.0;
        }
    }
    let h = Tensor::from_vec(h, (3, 24), &d).unwrap();
    (w.matmul(&h).unwrap(), w, h)
}

#[test]
fn the_error_never_rises_and_a_planted_factorisation_is_recovered() {
    let mut rng = StdRng::seed_from_u64(3);
    let (x, _, h) = planted(&mut rng);
    let f = nmf(&x, 3, 2000, &mut rng).unwrap();
    for pair in f.errors.windows(2) {
        assert!(pair[1] <= pair[0] * (1.0 + 1e-6), "the error rose: {pair:?}");
    }
    let last = *f.errors.last().unwrap();
    assert!(last < 5e-3, "relative error {last} after 2000 iterations on an exact rank-3 matrix");
    // Every found part points along one planted part (cosine > 0.999).
    let cos = |a: &Tensor, b: &Tensor| -> f32 {
        let dot = (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let na = a.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
        let nb = b.sqr().unwrap().sum_all().unwrap().sqrt().unwrap().to_scalar::<f32>().unwrap();
        dot / (na * nb)
    };
    for i in 0..3 {
        let found = f.h.get(i).unwrap();
        let best = (0..3).map(|j| cos(&found, &h.get(j).unwrap())).fold(0f32, f32::max);
        assert!(best > 0.999, "part {i} matches no planted part (best cosine {best})");
    }
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let mut rng = StdRng::seed_from_u64(0);
    let x = Tensor::ones((10, 4), DType::F32, &Device::Cpu).unwrap();
    let e = nmf(&x, 5, 10, &mut rng).err().unwrap().to_string();
    assert!(e.contains("at most 4 groups") && e.contains("4 channels"), "{e}");
    let neg = (x.clone() - 2.0).unwrap();
    let e = nmf(&neg, 2, 10, &mut rng).err().unwrap().to_string();
    assert!(e.contains("non-negative") && e.contains("-1"), "{e}");
}
