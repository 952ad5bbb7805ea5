//! Chapter 12, non-negative matrix factorisation: the multiplicative updates of `nmf::nmf`.
use candle_core::{Device, Tensor};
use chapter_12_activation_grids::nmf::nmf;
use vision_interp::rng::seeded;

mod common;
use common::{randn, values};

#[test]
fn the_error_never_rises_and_the_factors_stay_non_negative() {
    let x = randn(1, &[30, 20]).abs().unwrap();
    let f = nmf(&x, 4, 200, &mut seeded(2)).unwrap();
    assert_eq!(f.errors.len(), 200, "one error per update");
    for pair in f.errors.windows(2) {
        assert!(pair[1] <= pair[0] * (1.0 + 1e-6), "the error rose: {pair:?}");
    }
    assert!(f.errors[199] < f.errors[0], "200 updates changed nothing");
    assert!(values(&f.w).iter().chain(&values(&f.h)).all(|&v| v >= 0.0), "a factor went negative");
    // The reported error is the real one.
    let real = ((&x - f.w.matmul(&f.h).unwrap()).unwrap().sqr().unwrap().sum_all().unwrap().sqrt().unwrap()
        / x.sqr().unwrap().sum_all().unwrap().sqrt().unwrap())
    .unwrap()
    .to_scalar::<f32>()
    .unwrap();
    assert!((real - f.errors[199]).abs() < 1e-4, "reported {}, real {real}", f.errors[199]);
}

#[test]
fn a_planted_factorisation_is_found_again() {
    // Three parts on disjoint channels, mixed with random non-negative weights.
    let w = randn(3, &[40, 3]).abs().unwrap();
    let h: Vec<f32> =
        (0..3 * 18).map(|i| if (i % 18) / 6 == i / 18 { 1.0 + (i % 6) as f32 / 3.0 } else { 0.0 }).collect();
    let h = Tensor::from_vec(h, (3, 18), &Device::Cpu).unwrap();
    let f = nmf(&w.matmul(&h).unwrap(), 3, 2000, &mut seeded(4)).unwrap();
    assert!(
        *f.errors.last().unwrap() < 5e-3,
        "relative error {} on an exact rank-3 matrix",
        f.errors.last().unwrap()
    );
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    for i in 0..3 {
        let found = values(&f.h.get(i).unwrap());
        let best = (0..3).map(|j| cos(&found, &values(&h.get(j).unwrap()))).fold(0f32, f32::max);
        assert!(best > 0.999, "part {i} matches no planted part (best cosine {best})");
    }
}
