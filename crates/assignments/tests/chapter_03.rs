//! Chapter 3, the Fourier parametrisation's 1/f spectrum (`optvis::param::spectrum_scale`) and
//! transformation robustness's rotation (`optvis::transform::rotate`): its direction, its centre
//! and its bilinear weights.
use candle_core::{Device, Tensor};
use vision_interp::optvis::param::spectrum_scale;
use vision_interp::optvis::transform::rotate;

mod common;
use common::{max_abs_diff, values};

/// numpy's `fftfreq(n)[k]`: k/n below n/2, (k − n)/n from there.
fn freq(k: usize, n: usize) -> f64 {
    if k < n.div_ceil(2) {
        k as f64 / n as f64
    } else {
        (k as f64 - n as f64) / n as f64
    }
}

#[test]
fn the_spectrum_scale_is_one_over_the_frequency() {
    for (h, w) in [(8, 6), (5, 7), (16, 16), (3, 10)] {
        let s = spectrum_scale(h, w, &Device::Cpu).unwrap();
        let wf = w / 2 + 1;
        assert_eq!(
            s.dims(),
            &[h, wf],
            "{h}×{w}: one entry per row frequency and non-negative column frequency"
        );
        let v = values(&s);
        for y in 0..h {
            for x in 0..wf {
                let f = (freq(y, h).powi(2) + freq(x, w).powi(2)).sqrt();
                let want = 1.0 / f.max(1.0 / h.max(w) as f64);
                let got = v[y * wf + x] as f64;
                assert!(
                    (got - want).abs() < 1e-4 * want,
                    "{h}×{w}, frequency ({y}, {x}): {got}, want {want}"
                );
            }
        }
    }
}

#[test]
fn the_constant_term_is_floored_and_weighs_most() {
    let v = values(&spectrum_scale(12, 9, &Device::Cpu).unwrap());
    assert_eq!(v[0], 12.0, "f = 0 is held at 1 / max(h, w)");
    assert!(v.iter().all(|&s| s <= v[0] && s > 0.0), "every other frequency weighs less, and more than 0");
}

/// A 1 × 1 × `n` × `n` image, zero but for 1 at `(x, y)`.
fn dot(n: usize, x: usize, y: usize) -> Tensor {
    let mut v = vec![0f32; n * n];
    v[y * n + x] = 1.0;
    Tensor::from_vec(v, (1, 1, n, n), &Device::Cpu).unwrap()
}

/// Where the largest value of a 1 × 1 × n × n image is, as `(x, y)`.
fn brightest(t: &Tensor) -> (usize, usize) {
    let v = values(t);
    let n = t.dim(3).unwrap();
    let k = (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap();
    (k % n, k / n)
}

#[test]
fn a_quarter_turn_is_counter_clockwise_about_the_centre() {
    // y points down: counter-clockwise takes the right of the image to its top, the top to its
    // left (a clockwise turn, the sign error, would take the right to the bottom).
    let r = rotate(&dot(5, 4, 2), 90.0).unwrap();
    assert_eq!(r.dims(), &[1, 1, 5, 5]);
    assert_eq!(brightest(&r), (2, 0), "the right-middle pixel after +90°");
    assert_eq!(brightest(&rotate(&dot(5, 2, 0), 90.0).unwrap()), (0, 2), "the top-middle pixel after +90°");
    let centre = rotate(&dot(5, 2, 2), 37.0).unwrap();
    assert!((values(&centre)[12] - 1.0).abs() < 1e-6, "the centre stays where it is");
    let back = rotate(&rotate(&dot(7, 5, 1), 90.0).unwrap(), -90.0).unwrap();
    assert!(max_abs_diff(&back, &dot(7, 5, 1)) < 1e-5, "+90° then −90° is the identity");
}

#[test]
fn between_pixels_the_four_bilinear_weights_sum_to_one() {
    let ones = Tensor::ones((1, 1, 9, 9), candle_core::DType::F32, &Device::Cpu).unwrap();
    let r = values(&rotate(&ones, 10.0).unwrap());
    // Inside, every output reads four neighbours whose weights sum to one; the corners fall
    // outside the source and read zeros.
    for (x, y) in [(4, 4), (3, 5), (5, 2), (2, 6)] {
        assert!((r[y * 9 + x] - 1.0).abs() < 1e-5, "({x}, {y}): {}", r[y * 9 + x]);
    }
    assert!(r[0] < 1.0 && r[80] < 1.0, "the corners come partly from outside the image");
    // A dot two pixels right of the centre, turned 45°, lands at (4 + √2, 4 − √2), between
    // pixels: the nearest output, (5, 3), reads the source at (4 + √2, 4), 0.41 of the way from
    // (5, 4) to the dot at (6, 4).
    let r = rotate(&dot(9, 6, 4), 45.0).unwrap();
    assert_eq!(brightest(&r), (5, 3));
    let v = values(&r)[3 * 9 + 5];
    assert!((v - (2f32.sqrt() - 1.0)).abs() < 1e-4, "(5, 3) reads {v}, not √2 − 1");
}
