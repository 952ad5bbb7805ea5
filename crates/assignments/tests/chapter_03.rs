//! Chapter 3, the Fourier parametrisation's 1/f spectrum: `optvis::param::spectrum_scale`.
use candle_core::Device;
use vision_interp::optvis::param::spectrum_scale;

mod common;
use common::values;

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
