//! Chapter 5, feature accentuation's regulariser: `chapter_05_faccent::accent::l2_distance`.
use candle_core::Var;
use chapter_05_faccent::accent::l2_distance;

mod common;
use common::{randn, values};

#[test]
fn the_distance_is_the_mean_over_positions_of_the_channel_distance() {
    let (a, b) = (randn(1, &[2, 3, 4, 5]), randn(2, &[2, 3, 4, 5]));
    let got = l2_distance(&a, &b).unwrap().to_scalar::<f32>().unwrap();
    let (va, vb) = (values(&a), values(&b));
    let mut total = 0f64;
    for n in 0..2 {
        for p in 0..20 {
            let d2: f64 = (0..3)
                .map(|c| (va[n * 60 + c * 20 + p] - vb[n * 60 + c * 20 + p]) as f64)
                .map(|d| d * d)
                .sum();
            total += d2.sqrt();
        }
    }
    let want = total / 40.0;
    assert!((got as f64 - want).abs() < 1e-5 * want, "{got}, want {want}");
}

#[test]
fn equal_activations_are_at_distance_zero_with_a_finite_gradient() {
    let b = randn(3, &[1, 4, 3, 3]);
    let a = Var::from_tensor(&b).unwrap();
    let d = l2_distance(a.as_tensor(), &b).unwrap();
    assert!(d.to_scalar::<f32>().unwrap() < 1e-6);
    let g = d.backward().unwrap().get(a.as_tensor()).unwrap().clone();
    assert!(values(&g).iter().all(|v| v.is_finite()), "the gradient at zero distance must stay finite");
}
