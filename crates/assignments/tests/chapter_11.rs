//! Chapter 11, style transfer: `style::gram_matrix` (chapter 11's library), against PyTorch.
use candle_core::{Device, Tensor};
use chapter_11_style_transfer::style::gram_matrix;

mod common;
use common::{fixture, fixture_layer, max_abs_diff, randn, values};

#[test]
fn the_gram_matrix_matches_pytorch() {
    let g = gram_matrix(&fixture_layer(&[3, 8, 4, 7], 1.0)).unwrap();
    assert_eq!(g.dims(), &[3, 8, 8]);
    let want: Vec<f64> = fixture("style-losses.json")["gram b image 2"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (k, (got, want)) in values(&g.get(2).unwrap()).iter().zip(&want).enumerate() {
        assert!((*got as f64 - want).abs() < 1e-5 * want.abs().max(1.0), "entry {k}: {got}, PyTorch {want}");
    }
}

#[test]
fn the_gram_matrix_forgets_where_things_are() {
    let a = randn(3, &[2, 5, 3, 4]);
    // The same activations with the twelve positions in another order.
    let order: Vec<u32> = vec![7, 2, 11, 0, 5, 9, 1, 10, 3, 8, 6, 4];
    let idx = Tensor::new(order.as_slice(), &Device::Cpu).unwrap();
    let shuffled =
        a.reshape((2, 5, 12)).unwrap().index_select(&idx, 2).unwrap().reshape((2, 5, 3, 4)).unwrap();
    let (g, h) = (gram_matrix(&a).unwrap(), gram_matrix(&shuffled).unwrap());
    assert!(max_abs_diff(&g, &h) < 1e-5, "a Gram matrix depends on where channels fire");
    assert!(max_abs_diff(&g, &g.transpose(1, 2).unwrap()) < 1e-6, "a Gram matrix is symmetric");
}
