//! Images started at a photo, as feature accentuation (chapter 5) starts them: the real FFT and
//! its inverse, parametrisations that start exactly at the seed, the phase-only image that keeps
//! its magnitude, the antialiased resize, and seed photos squared or refused.
use candle_core::{Device, Tensor};
use vision_interp::imageio::{load_square, photo};
use vision_interp::ops;
use vision_interp::optvis::param::{irfft2_ortho, rfft2_ortho};
use vision_interp::optvis::{ImageParam, Space};
use vision_interp::rng::seeded;

mod common;
use common::max_abs_diff;

fn seed(size: usize) -> Tensor {
    photo("chelsea.png", size, &Device::Cpu).unwrap().unsqueeze(0).unwrap()
}

/// The squared L2 distance between two images, per pixel (mean over values).
fn mean_sq(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().sqr().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn the_real_fft_inverts_the_inverse_fft() {
    for (h, w) in [(16, 20), (15, 9), (8, 8)] {
        let x = vision_interp::rng::randn(&mut seeded(1), (2, 3, h, w), 0.0, 1.0, &Device::Cpu).unwrap();
        let (re, im) = rfft2_ortho(&x).unwrap();
        assert_eq!(re.dims(), &[2, 3, h, w / 2 + 1]);
        let back = irfft2_ortho(&re, &im, h, w).unwrap();
        assert!(max_abs_diff(&back, &x) < 1e-4, "{h}×{w}: {}", max_abs_diff(&back, &x));
    }
}

#[test]
fn every_parametrisation_starts_exactly_at_the_seed() {
    for size in [64, 45] {
        let s = seed(size);
        for (space, desaturation) in [(Space::Fft, 5.0), (Space::Pixel, 5.0), (Space::Phase, 1.0)] {
            let p = ImageParam::from_image(&s, space, desaturation).unwrap();
            let d = max_abs_diff(&p.image().unwrap(), &s);
            assert!(d < 2e-4, "{space:?} at {size} px: the image is {d} from the seed");
        }
    }
    let p = ImageParam::from_image(&seed(32), Space::Fft, 5.0).unwrap();
    let other = seed(32).affine(0.5, 0.25).unwrap();
    p.set_image(&other).unwrap();
    assert!(max_abs_diff(&p.image().unwrap(), &other) < 2e-4, "set_image moves the image there");
    assert!(ImageParam::from_image(&seed(32), Space::Fft, 0.0).is_err(), "desaturation 0");
}

#[test]
fn the_phase_only_image_keeps_its_magnitude_spectrum() {
    let s = seed(32);
    let p = ImageParam::from_image(&s, Space::Phase, 1.0).unwrap();
    let magnitude = |p: &ImageParam| {
        let (re, im) = rfft2_ortho(&p.raw().unwrap()).unwrap();
        // The zero and Nyquist columns are those of a real image; the rest is free.
        (re.sqr().unwrap() + im.sqr().unwrap()).unwrap().sqrt().unwrap().narrow(3, 1, 15).unwrap()
    };
    let before = magnitude(&p);
    let (_, phase) = p.vars().into_iter().next().unwrap();
    let shaken = (phase.as_tensor()
        + vision_interp::rng::randn(&mut seeded(3), phase.shape(), 0.0, 1.0, &Device::Cpu).unwrap())
    .unwrap();
    phase.set(&shaken).unwrap();
    let (img, after) = (p.image().unwrap(), magnitude(&p));
    assert!(mean_sq(&img, &s) > 1e-3, "new phases make a different image");
    let scale = common::max_abs(&before);
    assert!(
        max_abs_diff(&before, &after) / scale < 1e-4,
        "magnitude changed by {}",
        max_abs_diff(&before, &after)
    );
}

#[test]
fn the_antialiased_resize_averages_with_a_triangle() {
    let a = ops::antialias_matrix(4, 8, &Device::Cpu).unwrap().to_vec2::<f32>().unwrap();
    for row in &a {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
    // Halving: weights 1/8, 3/8, 3/8, 1/8 around each output (PIL's and PyTorch's).
    let want = [0.125, 0.375, 0.375, 0.125];
    for (j, w) in want.iter().enumerate() {
        assert!((a[1][1 + j] - w).abs() < 1e-6, "{:?}", a[1]);
    }
    let up = ops::antialias_matrix(9, 4, &Device::Cpu).unwrap();
    let plain = ops::bilinear_matrix(9, 4, &Device::Cpu).unwrap();
    assert!(max_abs_diff(&up, &plain) < 1e-6, "upsampling is plain bilinear");
}

#[test]
fn seed_photos_are_squared_and_bad_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (cmyk, note) = load_square(&fixtures.join("cmyk-48x40.jpg"), 64, &Device::Cpu).unwrap();
    assert_eq!(cmyk.dims(), &[1, 3, 64, 64]);
    assert!(note.contains("48×40") && note.contains("enlarged to 64"), "{note}");
    // A CMYK JPEG of the cat is a colour photo, not an inverted one: brighter than black.
    let mean = cmyk.mean_all().unwrap().to_scalar::<f32>().unwrap();
    let want = seed(64).mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((mean - want).abs() < 0.1, "CMYK photo mean {mean}, RGB {want}");
    let grey = dir.path().join("grey.png");
    vision_interp::image::GrayImage::from_pixel(50, 70, vision_interp::image::Luma([128]))
        .save(&grey)
        .unwrap();
    let (g, note) = load_square(&grey, 32, &Device::Cpu).unwrap();
    assert_eq!(g.dims(), &[1, 3, 32, 32]);
    assert!(note.contains("shrunk to 32"), "{note}");
    let tiny = dir.path().join("tiny.png");
    vision_interp::image::RgbImage::new(20, 100).save(&tiny).unwrap();
    let e = format!("{:#}", load_square(&tiny, 64, &Device::Cpu).unwrap_err());
    assert!(e.contains("20×100") && e.contains("at least 32"), "{e}");
    let e = format!("{:#}", load_square(&dir.path().join("missing.jpg"), 64, &Device::Cpu).unwrap_err());
    assert!(e.contains("cannot open image"), "{e}");
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not an image").unwrap();
    assert!(load_square(&text, 64, &Device::Cpu).is_err());
}
