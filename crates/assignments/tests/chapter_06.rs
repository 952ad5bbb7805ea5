//! Chapter 6, transformations: `optvis::transform::pad_reflect`, torch's `reflect` padding.
use candle_core::{Device, Tensor, Var};
use vision_interp::optvis::transform::pad_reflect;

mod common;
use common::values;

#[test]
fn reflect_padding_mirrors_without_repeating_the_edge() {
    // A 3 × 4 plane holding 0..12, padded by 2: rows read 2 1 0 1 2 1 0, columns 2 1 0 1 2 3 2 1.
    let x = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap().reshape((1, 1, 3, 4)).unwrap();
    let y = pad_reflect(&x, 2).unwrap();
    assert_eq!(y.dims(), &[1, 1, 7, 8]);
    let (rows, cols) = ([2, 1, 0, 1, 2, 1, 0], [2, 1, 0, 1, 2, 3, 2, 1]);
    let v = values(&y);
    for (i, r) in rows.iter().enumerate() {
        for (j, c) in cols.iter().enumerate() {
            assert_eq!(v[i * 8 + j], (r * 4 + c) as f32, "padded pixel ({i}, {j})");
        }
    }
}

#[test]
fn each_source_pixel_gets_the_gradient_of_all_its_reflections() {
    let x = Var::from_tensor(&Tensor::zeros((2, 3, 5, 6), candle_core::DType::F32, &Device::Cpu).unwrap())
        .unwrap();
    let y = pad_reflect(x.as_tensor(), 1).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap().get(x.as_tensor()).unwrap().clone();
    // Pixel (i, j) appears once, plus once per border it lies on (rows 1 and h − 2 are
    // reflected into the pad, as are columns 1 and w − 2): counts multiply along the axes.
    let count = |i: usize, n: usize| if i == 1 || i == n - 2 { 2.0 } else { 1.0 };
    let v = values(&g);
    for i in 0..5 {
        for j in 0..6 {
            assert_eq!(v[i * 6 + j], count(i, 5) * count(j, 6), "pixel ({i}, {j})");
        }
    }
}
