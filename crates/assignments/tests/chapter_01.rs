//! Chapter 1, convolution by hand: `ops::naive_conv2d` and `ops::conv_output_size`.
use candle_core::{Device, Tensor};
use vision_interp::ops;

mod common;
use common::{randn, values};

#[test]
fn naive_convolution_matches_candle_conv2d() {
    for (k, (h, w)) in [(3, (9, 7)), (5, (8, 11)), (1, (4, 4))] {
        let image = values(&randn(1, &[h * w]));
        let kernel = values(&randn(2, &[k * k]));
        let ours = ops::naive_conv2d(&image, h, w, &kernel, k);
        let x = Tensor::from_vec(image, (1, 1, h, w), &Device::Cpu).unwrap();
        let kt = Tensor::from_vec(kernel, (1, 1, k, k), &Device::Cpu).unwrap();
        let want = values(&x.conv2d(&kt, 0, 1, 1, 1).unwrap());
        assert_eq!(ours.len(), (h - k + 1) * (w - k + 1), "{k}×{k} on {h}×{w}: the output size");
        for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
            assert!((a - b).abs() < 1e-4, "{k}×{k} on {h}×{w}: output {i} is {a}, Candle says {b}");
        }
    }
}

#[test]
fn an_edge_filter_finds_a_vertical_edge() {
    // Black on the left four columns, white on the right four; Sobel's x filter.
    let image: Vec<f32> = (0..6 * 8).map(|i| if i % 8 >= 4 { 1.0 } else { 0.0 }).collect();
    let sobel = [-1.0, 0.0, 1.0, -2.0, 0.0, 2.0, -1.0, 0.0, 1.0];
    let out = ops::naive_conv2d(&image, 6, 8, &sobel, 3);
    assert_eq!(out.len(), 4 * 6);
    for row in out.chunks(6) {
        assert_eq!(row, [0.0, 0.0, 4.0, 4.0, 0.0, 0.0], "only the windows across the edge respond");
    }
}

#[test]
fn output_size_formula_matches_candle() {
    for i in 4..12 {
        for k in [1, 3, 5] {
            for s in 1..=3 {
                for p in 0..=2 {
                    if i + 2 * p < k {
                        continue;
                    }
                    let x = Tensor::zeros((1, 1, i, i), candle_core::DType::F32, &Device::Cpu).unwrap();
                    let kt = Tensor::zeros((1, 1, k, k), candle_core::DType::F32, &Device::Cpu).unwrap();
                    let want = x.conv2d(&kt, p, s, 1, 1).unwrap().dim(2).unwrap();
                    assert_eq!(
                        ops::conv_output_size(i, k, s, p),
                        want,
                        "input {i}, kernel {k}, stride {s}, padding {p}"
                    );
                }
            }
        }
    }
}
