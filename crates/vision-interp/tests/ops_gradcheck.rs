//! Finite-difference checks of every operation on a gradient path (float64, central
//! differences), and forward checks against Candle's own operations.
use candle_core::{DType, Device, Tensor, Var};
use vision_interp::ops;

mod common;
use common::{max_abs, max_abs_diff};

fn rand64(seed: u64, shape: &[usize]) -> Tensor {
    common::randn64(seed, shape)
}

/// Relative L2 error between autograd and central differences of `loss = Σ f(x) ⊙ r`.
fn gradcheck(f: impl Fn(&Tensor) -> candle_core::Result<Tensor>, x: &Tensor) -> f64 {
    let r = rand64(99, f(x).unwrap().dims());
    let loss = |t: &Tensor| (f(t).unwrap() * &r).unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap();
    let var = Var::from_tensor(x).unwrap();
    let l = (f(var.as_tensor()).unwrap() * &r).unwrap().sum_all().unwrap();
    let g =
        l.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let flat = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let eps = 1e-6;
    let (mut num, mut den) = (0.0, 0.0);
    for i in 0..flat.len() {
        let mut p = flat.clone();
        p[i] += eps;
        let mut m = flat.clone();
        m[i] -= eps;
        let tp = Tensor::from_vec(p, x.dims(), &Device::Cpu).unwrap();
        let tm = Tensor::from_vec(m, x.dims(), &Device::Cpu).unwrap();
        let fd = (loss(&tp) - loss(&tm)) / (2.0 * eps);
        num += (fd - g[i]).powi(2);
        den += fd.powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

#[test]
fn same_padding_matches_tensorflow() {
    // TF: out = ceil(n / s), total pad = max((out − 1)·s + k − n, 0), before = total / 2.
    assert_eq!(ops::same_padding(224, 3, 2), (0, 1));
    assert_eq!(ops::same_padding(112, 3, 1), (1, 1));
    assert_eq!(ops::same_padding(28, 5, 2), (1, 2));
    assert_eq!(ops::same_padding(14, 5, 1), (2, 2));
    assert_eq!(ops::same_padding(7, 1, 1), (0, 0));
}

#[test]
fn depthwise_conv_equals_grouped_conv2d() {
    for (k, s, h) in [(3, 1, 9), (3, 2, 10), (5, 2, 11), (5, 1, 7)] {
        let x = rand64(1, &[2, 4, h, h]);
        let w = rand64(2, &[4, 1, k, k]);
        let ours = ops::depthwise_conv2d_taps(&x, &w, s).unwrap();
        let candle = x.conv2d(&w, 0, s, 1, 4).unwrap();
        assert_eq!(ours.dims(), candle.dims());
        let d = max_abs_diff(&ours, &candle);
        assert!(d < 1e-12, "k{k} s{s}: max difference {d}");
    }
}

#[test]
fn depthwise_conv_gradient() {
    for (k, s) in [(3, 1), (3, 2), (5, 2)] {
        let w = rand64(3, &[3, 1, k, k]);
        let x = rand64(4, &[1, 3, 8, 8]);
        let e = gradcheck(|t| ops::depthwise_conv2d_taps(&ops::pad_same(t, k, s)?, &w, s), &x);
        assert!(e < 1e-6, "k{k} s{s}: relative error {e}");
    }
}

#[test]
fn same_padded_conv_gradient() {
    let w = rand64(5, &[4, 3, 3, 3]);
    let x = rand64(6, &[1, 3, 8, 8]);
    let e = gradcheck(|t| ops::pad_same(t, 3, 2)?.conv2d(&w, 0, 2, 1, 1), &x);
    assert!(e < 1e-6, "relative error {e}");
}

#[test]
fn relu6_and_pool_gradients() {
    // Values spread over both kinks (0 and 6); none lies within eps of a kink for this seed.
    let x = (rand64(7, &[1, 2, 5, 5]) * 4.0).unwrap();
    let e = gradcheck(|t| ops::global_avg_pool(&ops::relu6(&(t * 2.0)?)?), &x);
    assert!(e < 1e-6, "relative error {e}");
}

#[test]
fn bilinear_resize_gradient_and_forward() {
    let x = rand64(8, &[1, 2, 5, 4]);
    for (h, w) in [(9, 7), (3, 2), (5, 4)] {
        let e = gradcheck(|t| ops::resize_bilinear(t, h, w), &x);
        assert!(e < 1e-6, "{h}×{w}: relative error {e}");
    }
    // Forward equals Candle's (PyTorch-compatible) bilinear upsampling.
    let ours = ops::resize_bilinear(&x, 10, 8).unwrap();
    let candle = x.upsample_bilinear2d(10, 8, false).unwrap();
    let d = max_abs_diff(&ours, &candle);
    assert!(d < 1e-6, "max difference {d}");
}

/// Forward and input/weight gradients of two f32 implementations of the same function:
/// the largest relative difference.
fn same_f32(
    a: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    b: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    x: &Tensor,
    w: &Tensor,
) -> f32 {
    let run = |f: &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>| {
        let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
        let y = f(xv.as_tensor(), wv.as_tensor()).unwrap();
        let r = rand64(11, y.dims()).to_dtype(DType::F32).unwrap();
        let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        [
            y.flatten_all().unwrap(),
            g.get(xv.as_tensor()).unwrap().flatten_all().unwrap(),
            g.get(wv.as_tensor()).unwrap().flatten_all().unwrap(),
        ]
    };
    let (ra, rb) = (run(&a), run(&b));
    ra.iter().zip(&rb).map(|(p, q)| max_abs_diff(p, q) / max_abs(q).max(1e-6)).fold(0.0, f32::max)
}

#[test]
fn cpu_depthwise_kernel_matches_the_checked_reference() {
    for (k, s) in [(3, 1), (3, 2), (5, 1), (5, 2)] {
        let x = rand64(12, &[2, 5, 11, 10]).to_dtype(DType::F32).unwrap();
        let w = rand64(13, &[5, 1, k, k]).to_dtype(DType::F32).unwrap();
        let e = same_f32(
            |x, w| ops::depthwise_conv2d(x, w, s),
            |x, w| ops::depthwise_conv2d_taps(x, w, s),
            &x,
            &w,
        );
        assert!(e < 1e-5, "k{k} s{s}: relative difference {e}");
    }
}

#[test]
fn cpu_depthwise_kernel_pads_as_the_reference_does() {
    // TensorFlow's "same" padding is uneven: one more row and column after than before.
    for (k, s, pad) in
        [(3, 1, [1, 1, 1, 1]), (3, 2, [0, 1, 0, 1]), (5, 2, [1, 2, 2, 1]), (5, 1, [2, 2, 2, 2])]
    {
        let x = rand64(18, &[2, 4, 9, 10]).to_dtype(DType::F32).unwrap();
        let w = rand64(19, &[4, 1, k, k]).to_dtype(DType::F32).unwrap();
        let e = same_f32(
            |x, w| ops::depthwise_conv2d_padded(x, w, s, pad),
            |x, w| {
                let x = x.pad_with_zeros(2, pad[0], pad[1])?.pad_with_zeros(3, pad[2], pad[3])?;
                ops::depthwise_conv2d_taps(&x, w, s)
            },
            &x,
            &w,
        );
        assert!(e < 1e-5, "k{k} s{s} pad {pad:?}: relative difference {e}");
    }
}

#[test]
fn cpu_relu6_kernel_matches_clamp() {
    let x = (rand64(14, &[2, 3, 6, 6]) * 4.0).unwrap().to_dtype(DType::F32).unwrap();
    let w = rand64(15, &[1]).to_dtype(DType::F32).unwrap();
    let e = same_f32(
        |x, w| ops::relu6(&x.broadcast_mul(w)?),
        |x, w| x.broadcast_mul(w)?.clamp(0f32, 6f32),
        &x,
        &w,
    );
    assert!(e < 1e-6, "relative difference {e}");
}

#[test]
fn pointwise_conv_equals_conv2d_and_its_gradient() {
    let x = rand64(16, &[2, 4, 5, 3]);
    let w = rand64(17, &[6, 4, 1, 1]);
    let d = max_abs_diff(&ops::pointwise_conv2d(&x, &w).unwrap(), &x.conv2d(&w, 0, 1, 1, 1).unwrap());
    assert!(d < 1e-12, "max difference {d}");
    let e = gradcheck(|t| ops::pointwise_conv2d(t, &w), &x);
    assert!(e < 1e-6, "relative error {e}");
}

#[test]
fn pool_output_size_follows_pytorch() {
    // (size, kernel, stride, pad, ceil) → PyTorch's nn.MaxPool2d output size
    for (args, want) in [
        ((224, 2, 2, 0, false), 112),
        ((7, 2, 2, 0, false), 3),
        ((7, 2, 2, 0, true), 4),
        ((112, 3, 2, 0, true), 56),
        ((56, 3, 1, 1, false), 56),
        ((5, 3, 2, 1, true), 3),
    ] {
        let (size, k, s, p, ceil) = args;
        assert_eq!(ops::pool_output_size(size, k, s, p, ceil), want, "{args:?}");
    }
}

#[test]
fn max_pool_forward_matches_candle_and_gradient_is_exact() {
    let x = rand64(20, &[2, 3, 8, 8]);
    let d = max_abs_diff(&ops::max_pool2d_views(&x, 2, 2, 0, false).unwrap(), &x.max_pool2d(2).unwrap());
    assert_eq!(d, 0.0);
    // Candle's own backward for kernel = stride is off by 1/k²; ours must match differences.
    for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 0, true), (3, 1, 1, false), (3, 2, 1, true)] {
        let x = rand64(21, &[1, 2, 7, 7]);
        let e = gradcheck(|t| ops::max_pool2d_views(t, k, s, p, ceil), &x);
        assert!(e < 1e-6, "k{k} s{s} p{p} ceil {ceil}: relative error {e}");
    }
}

#[test]
fn candle_max_pool_gradient_is_off_by_one_over_k_squared() {
    // Documents the Candle defect the book works around: d/dx maxpool([[1,2],[3,4]]) should be
    // [[0,0],[0,1]]; Candle 0.11.1 gives 0.25 at the maximum.
    let x = Var::from_tensor(&Tensor::new(&[[[[1f64, 2.], [3., 4.]]]], &Device::Cpu).unwrap()).unwrap();
    let candle = x.as_tensor().max_pool2d(2).unwrap().sum_all().unwrap().backward().unwrap();
    let ours = ops::max_pool2d(x.as_tensor(), 2, 2, 0, false).unwrap().sum_all().unwrap().backward().unwrap();
    let at_max = |g: &candle_core::backprop::GradStore| {
        g.get(x.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()[3]
    };
    assert_eq!(at_max(&ours), 1.0);
    assert_eq!(at_max(&candle), 0.25, "Candle's max-pool gradient changed; revisit ops::max_pool2d's note");
}

#[test]
fn convolution_by_hand_equals_candle_conv2d() {
    let (h, w, k) = (9, 7, 3);
    let img = rand64(30, &[1, 1, h, w]).to_dtype(DType::F32).unwrap();
    let ker = rand64(31, &[1, 1, k, k]).to_dtype(DType::F32).unwrap();
    let ours = ops::naive_conv2d(
        &img.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        h,
        w,
        &ker.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        k,
    );
    let candle = img.conv2d(&ker, 0, 1, 1, 1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(ours.len(), (h - k + 1) * (w - k + 1));
    let d = ours.iter().zip(&candle).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(d < 1e-5, "max difference {d}");
}

#[test]
fn output_size_formula_matches_candle() {
    for (i, k, s, p) in
        [(224, 7, 2, 3), (32, 3, 1, 1), (10, 3, 2, 0), (9, 3, 2, 1), (5, 5, 1, 0), (28, 5, 3, 2)]
    {
        let x = Tensor::zeros((1, 1, i, i), DType::F32, &Device::Cpu).unwrap();
        let ker = Tensor::zeros((1, 1, k, k), DType::F32, &Device::Cpu).unwrap();
        let o = x.conv2d(&ker, p, s, 1, 1).unwrap().dim(2).unwrap();
        assert_eq!(ops::conv_output_size(i, k, s, p), o, "i={i} k={k} s={s} p={p}");
    }
}

#[test]
fn im2col_convolution_matches_candle_with_gradients() {
    for (n, k, pad) in [(2, 3, 1), (2, 3, 0), (2, 5, 2), (2, 1, 0), (1, 3, 1), (5, 3, 1)] {
        let x = rand64(40, &[n, 3, 7, 6]).to_dtype(DType::F32).unwrap();
        let w = rand64(41, &[4, 3, k, k]).to_dtype(DType::F32).unwrap();
        let e =
            same_f32(|x, w| ops::conv2d_same_stride1(x, w, pad), |x, w| x.conv2d(w, pad, 1, 1, 1), &x, &w);
        assert!(e < 1e-5, "n{n} k{k} pad{pad}: relative difference {e}");
    }
}

#[test]
fn cpu_max_pool_kernel_matches_the_checked_reference() {
    for (k, s, p, ceil) in [(2, 2, 0, false), (3, 2, 0, true), (3, 1, 1, false), (3, 2, 1, true)] {
        let x = rand64(50, &[2, 3, 9, 8]).to_dtype(DType::F32).unwrap();
        let w = rand64(51, &[1]).to_dtype(DType::F32).unwrap();
        let e = same_f32(
            |x, w| ops::max_pool2d(&x.broadcast_mul(w)?, k, s, p, ceil),
            |x, w| ops::max_pool2d_views(&x.broadcast_mul(w)?, k, s, p, ceil),
            &x,
            &w,
        );
        assert!(e < 1e-6, "k{k} s{s} p{p} ceil {ceil}: relative difference {e}");
    }
}

#[test]
fn im2col_convolution_with_bias_matches_candle() {
    let x = rand64(42, &[2, 3, 7, 6]).to_dtype(DType::F32).unwrap();
    let w = rand64(43, &[4, 3, 3, 3]).to_dtype(DType::F32).unwrap();
    let b = rand64(44, &[4]).to_dtype(DType::F32).unwrap();
    // Gradients with respect to input and bias (the weight's is covered above).
    let e = same_f32(
        |x, b| ops::conv2d_same_stride1_bias(x, &w, Some(b), 1),
        |x, b| x.conv2d(&w, 1, 1, 1, 1)?.broadcast_add(&b.reshape((1, 4, 1, 1))?),
        &x,
        &b,
    );
    assert!(e < 1e-5, "relative difference {e}");
}

#[test]
fn batch_norm_relu_reference_gradient() {
    let gamma = rand64(60, &[3]);
    let beta = rand64(61, &[3]);
    let x = rand64(62, &[2, 3, 4, 5]);
    let e = gradcheck(|t| Ok(ops::batch_norm_relu_reference(t, &gamma, &beta, 1e-5)?.0), &x);
    assert!(e < 1e-6, "input: relative error {e}");
    let e = gradcheck(|g| Ok(ops::batch_norm_relu_reference(&x, g, &beta, 1e-5)?.0), &gamma);
    assert!(e < 1e-6, "gamma: relative error {e}");
    let e = gradcheck(|b| Ok(ops::batch_norm_relu_reference(&x, &gamma, b, 1e-5)?.0), &beta);
    assert!(e < 1e-6, "beta: relative error {e}");
}

#[test]
fn fused_batch_norm_relu_matches_the_checked_reference() {
    let f32 = |t: Tensor| t.to_dtype(DType::F32).unwrap();
    let x = f32(rand64(63, &[4, 5, 6, 7]).affine(3.0, 1.0).unwrap());
    let gamma = f32(rand64(64, &[5]));
    let beta = f32(rand64(65, &[5]));
    let fused = |x: &Tensor, g: &Tensor| Ok(ops::batch_norm_relu_train(x, g, &beta, 1e-5)?.0);
    let reference = |x: &Tensor, g: &Tensor| Ok(ops::batch_norm_relu_reference(x, g, &beta, 1e-5)?.0);
    let e = same_f32(fused, reference, &x, &gamma);
    assert!(e < 1e-4, "output, input and gamma gradients: relative difference {e}");
    let e = same_f32(
        |x: &Tensor, b: &Tensor| Ok(ops::batch_norm_relu_train(x, &gamma, b, 1e-5)?.0),
        |x: &Tensor, b: &Tensor| Ok(ops::batch_norm_relu_reference(x, &gamma, b, 1e-5)?.0),
        &x,
        &beta,
    );
    assert!(e < 1e-4, "beta gradient: relative difference {e}");
    let (_, s1) = ops::batch_norm_relu_train(&x, &gamma, &beta, 1e-5).unwrap();
    let (_, s2) = ops::batch_norm_relu_reference(&x, &gamma, &beta, 1e-5).unwrap();
    assert_eq!(s1.count, 4 * 6 * 7);
    for (a, b) in s1.mean.iter().chain(&s1.var).zip(s2.mean.iter().chain(&s2.var)) {
        assert!((a - b).abs() < 1e-4 * b.abs().max(1.0), "statistics {a} vs {b}");
    }
}

#[test]
fn fused_batch_norm_relu_pool_matches_its_parts() {
    // The training kernel with the 2×2 pool inside it against the checked reference followed
    // by the (separately checked) pooling: values, input, γ and β gradients.
    let f32 = |t: Tensor| t.to_dtype(DType::F32).unwrap();
    let x = f32(rand64(66, &[3, 4, 6, 8]).affine(2.0, 0.5).unwrap());
    let (gamma, beta) = (f32(rand64(67, &[4])), f32(rand64(68, &[4])));
    let fused = |x: &Tensor, g: &Tensor, b: &Tensor| Ok(ops::batch_norm_relu_pool_train(x, g, b, 1e-5, 2)?.0);
    let parts = |x: &Tensor, g: &Tensor, b: &Tensor| {
        ops::max_pool2d(&ops::batch_norm_relu_reference(x, g, b, 1e-5)?.0, 2, 2, 0, false)
    };
    let e = same_f32(|x, g| fused(x, g, &beta), |x, g| parts(x, g, &beta), &x, &gamma);
    assert!(e < 1e-4, "output, input and gamma gradients: relative difference {e}");
    let e = same_f32(|x, b| fused(x, &gamma, b), |x, b| parts(x, &gamma, b), &x, &beta);
    assert!(e < 1e-4, "beta gradient: relative difference {e}");
}

#[test]
fn strided_asymmetric_im2col_convolution_matches_candle() {
    // InceptionV1's stem (7×7, stride 2, padding 2/3) and TF-style stride-2 3×3 convolutions.
    // Sizes where the stride divides the padded extent: Candle's own conv2d backward returns a
    // gradient of the wrong shape otherwise (it drops the transposed convolution's output
    // padding), so it cannot serve as the reference there.
    let cases = [
        (7, 2, [2, 3, 2, 3], (12, 10)),
        (3, 2, [0, 1, 0, 1], (12, 10)),
        (3, 2, [1, 1, 1, 1], (11, 9)),
        (5, 3, [0, 0, 2, 1], (11, 11)),
    ];
    for (k, stride, pads, (h, w)) in cases {
        let x = rand64(45, &[2, 3, h, w]).to_dtype(DType::F32).unwrap();
        let w = rand64(46, &[4, 3, k, k]).to_dtype(DType::F32).unwrap();
        let [t, b, l, r] = pads;
        let e = same_f32(
            |x, w| ops::conv2d_padded(x, w, None, stride, pads),
            |x, w| x.pad_with_zeros(2, t, b)?.pad_with_zeros(3, l, r)?.conv2d(w, 0, stride, 1, 1),
            &x,
            &w,
        );
        assert!(e < 1e-5, "k{k} s{stride} pads {pads:?}: relative difference {e}");
    }
}

#[test]
fn redirected_relu_passes_a_tenth_of_the_gradient_where_off() {
    // The Candle-only formula (other devices) splits the gradient at exactly 0; the CPU kernel
    // passes it all (x >= 0), as Lucent does. Both agree everywhere else.
    let x = Tensor::new(&[-2f32, -0.5, 0.5, 3.0], &Device::Cpu).unwrap();
    let g = Tensor::new(&[1f32, 2.0, 4.0, 5.0], &Device::Cpu).unwrap();
    let reference = |t: &Tensor| {
        let m = t.minimum(0f64)?;
        t.relu()? + ((&m - m.detach())? * 0.1)?
    };
    for f in [&ops::redirected_relu as &dyn Fn(&Tensor) -> candle_core::Result<Tensor>, &reference] {
        let v = Var::from_tensor(&x).unwrap();
        let y = f(v.as_tensor()).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), [0.0, 0.0, 0.5, 3.0]);
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(dx, [0.1, 0.2, 4.0, 5.0]);
    }
    let zero = Var::from_tensor(&Tensor::new(&[0f32], &Device::Cpu).unwrap()).unwrap();
    let grads = ops::redirected_relu(zero.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(grads.get(zero.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), [1.0]);
}

#[test]
fn redirected_relu6_is_relu6_forward_and_passes_a_tenth_of_the_gradient_outside() {
    let x = Tensor::new(&[-2f32, 0.0, 0.5, 3.0, 6.0, 7.5], &Device::Cpu).unwrap();
    let g = Tensor::new(&[1f32, 2.0, 4.0, 5.0, 3.0, -2.0], &Device::Cpu).unwrap();
    let v = Var::from_tensor(&x).unwrap();
    let y = ops::redirected_relu6(v.as_tensor()).unwrap();
    assert_eq!(y.to_vec1::<f32>().unwrap(), ops::relu6(&x).unwrap().to_vec1::<f32>().unwrap());
    let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let dx = grads.get(v.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(dx, [0.1, 2.0, 4.0, 5.0, 3.0, -0.2]);
    // Finite differences agree inside the linear part, where the function is differentiable.
    let f = |t: f32| {
        ops::redirected_relu6(&Tensor::new(&[t], &Device::Cpu).unwrap()).unwrap().to_vec1::<f32>().unwrap()[0]
    };
    assert!(((f(2.001) - f(1.999)) / 0.002 - 1.0).abs() < 1e-2);
}

#[test]
fn local_response_norm_matches_the_formula_and_its_gradient() {
    let x = rand64(70, &[1, 11, 3, 2]);
    let y = ops::local_response_norm(&x, 9, 1e-1, 0.5, 1.0).unwrap();
    let a = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let got = y.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let hw = 6;
    for c in 0..11usize {
        for p in 0..hw {
            let lo = c.saturating_sub(4);
            let hi = (c + 4).min(10);
            let s: f64 = (lo..=hi).map(|j| a[j * hw + p].powi(2)).sum();
            let want = a[c * hw + p] * (1.0 + 0.1 / 9.0 * s).powf(-0.5);
            assert!((got[c * hw + p] - want).abs() < 1e-12, "c{c} p{p}: {} vs {want}", got[c * hw + p]);
        }
    }
    let e = gradcheck(|t| ops::local_response_norm(t, 9, 1e-1, 0.5, 1.0), &rand64(71, &[1, 5, 2, 2]));
    assert!(e < 1e-6, "relative error {e}");
}

#[test]
fn cpu_local_response_norm_kernel_matches_the_checked_band_product() {
    // The CPU kernel against the band product (which the test above checks against the formula
    // and finite differences). Odd and even window sizes, more and fewer channels than the
    // window, several runs of pixels per plane (17×19 > 256), Lucid's β = 1/2 and another β;
    // large values so that the normalisation matters.
    for (size, beta, (n, c, h, w)) in
        [(9, 0.5, (2, 11, 17, 19)), (4, 0.75, (1, 3, 5, 4)), (5, 0.5, (3, 7, 2, 3))]
    {
        let x = rand64(72, &[n, c, h, w]).to_dtype(DType::F32).unwrap().affine(20.0, 0.0).unwrap();
        let s = rand64(73, &[1]).to_dtype(DType::F32).unwrap();
        let e = same_f32(
            |x, s| ops::local_response_norm(&x.broadcast_mul(s)?, size, 1e-3, beta, 1.0),
            |x, s| ops::local_response_norm_band(&x.broadcast_mul(s)?, size, 1e-3, beta, 1.0),
            &x,
            &s,
        );
        assert!(e < 1e-5, "size {size} beta {beta}: relative difference {e}");
    }
}

#[test]
fn channel_bias_matches_broadcast_add() {
    let x = rand64(80, &[2, 3, 4, 5]).to_dtype(DType::F32).unwrap();
    let b = rand64(81, &[3]).to_dtype(DType::F32).unwrap();
    let e = same_f32(ops::add_channel_bias, |x, b| x.broadcast_add(&b.reshape((1, 3, 1, 1))?), &x, &b);
    assert!(e < 1e-6, "relative difference {e}");
}

#[test]
fn one_by_one_convolution_matches_candle() {
    // One image (the matrix product alone), and five (images spread over the workers in
    // uneven chunks, the weight gradient summed over them).
    for n in [1, 5] {
        let x = rand64(47, &[n, 5, 4, 3]).to_dtype(DType::F32).unwrap();
        let w = rand64(48, &[6, 5, 1, 1]).to_dtype(DType::F32).unwrap();
        let b = rand64(49, &[6]).to_dtype(DType::F32).unwrap();
        let e = same_f32(
            |x, w| ops::conv2d_padded(x, w, Some(&b), 1, [0; 4]),
            |x, w| x.conv2d(w, 0, 1, 1, 1)?.broadcast_add(&b.reshape((1, 6, 1, 1))?),
            &x,
            &w,
        );
        assert!(e < 1e-5, "n{n}: relative difference {e}");
    }
}

#[test]
fn fused_bias_and_relu6_match_their_parts() {
    let x = rand64(82, &[2, 3, 4, 5]).to_dtype(DType::F32).unwrap().affine(4.0, 2.0).unwrap();
    let b = rand64(83, &[3]).to_dtype(DType::F32).unwrap();
    let e = same_f32(
        ops::add_channel_bias_relu6,
        |x, b| x.broadcast_add(&b.reshape((1, 3, 1, 1))?)?.clamp(0f32, 6f32),
        &x,
        &b,
    );
    assert!(e < 1e-6, "relative difference {e}");
}

#[test]
fn unfolded_convolution_for_other_devices_matches_im2col_and_finite_differences() {
    // The path GPUs take (`conv2d_unfold`: stacked views and one matrix product) against the
    // CPU's im2col operation, with and without bias, batch 1 and 2, including sizes where the
    // stride does not divide the padded extent; then against finite differences.
    let cases = [
        (7, 2, [2, 3, 2, 3], (13, 10)),
        (3, 2, [0, 1, 0, 1], (12, 11)),
        (3, 1, [1, 1, 1, 1], (9, 7)),
        (5, 3, [0, 0, 2, 1], (11, 12)),
        (1, 1, [0, 0, 0, 0], (5, 6)),
        (1, 2, [0, 0, 0, 0], (7, 7)),
    ];
    for n in [1, 2] {
        for (k, stride, pads, (h, w)) in cases {
            let x = rand64(47, &[n, 3, h, w]).to_dtype(DType::F32).unwrap();
            let wt = rand64(48, &[4, 3, k, k]).to_dtype(DType::F32).unwrap();
            let b = rand64(49, &[4]).to_dtype(DType::F32).unwrap();
            for bias in [None, Some(&b)] {
                let e = same_f32(
                    |x, w| ops::conv2d_unfold(x, w, bias, stride, pads),
                    |x, w| ops::conv2d_padded(x, w, bias, stride, pads),
                    &x,
                    &wt,
                );
                assert!(e < 1e-5, "n{n} k{k} s{stride} pads {pads:?} bias {}: {e}", bias.is_some());
            }
        }
    }
    let w = rand64(50, &[2, 3, 3, 3]);
    let e = gradcheck(|x| ops::conv2d_unfold(x, &w, None, 2, [1, 0, 0, 1]), &rand64(51, &[2, 3, 6, 5]));
    assert!(e < 1e-6, "finite differences: {e}");
}

#[test]
fn max_pool_views_send_the_gradient_of_ties_to_the_first_maximum() {
    // After a ReLU whole windows are zero: every element ties. Like PyTorch and the CPU kernel,
    // the view-based pooling (the GPU path) gives the gradient to the first one, row by row.
    let x =
        rand64(52, &[1, 2, 9, 9]).to_dtype(DType::F32).unwrap().affine(1.0, -1.0).unwrap().relu().unwrap();
    for (k, s, pad, ceil) in [(3, 2, 0, true), (3, 1, 1, false), (2, 2, 0, false)] {
        let grad = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| {
            let v = Var::from_tensor(&x).unwrap();
            let y = f(v.as_tensor()).unwrap();
            let r = rand64(53, y.dims()).to_dtype(DType::F32).unwrap();
            let g = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
            (y, g.get(v.as_tensor()).unwrap().clone())
        };
        let (y0, g0) = grad(&|t| ops::max_pool2d(t, k, s, pad, ceil));
        let (y1, g1) = grad(&|t| ops::max_pool2d_views(t, k, s, pad, ceil));
        assert_eq!(max_abs_diff(&y0, &y1), 0.0);
        // Overlapping windows add their gradients in another order: rounding only.
        assert!(max_abs_diff(&g0, &g1) < 1e-6, "k{k} s{s} pad{pad}: {}", max_abs_diff(&g0, &g1));
    }
}

#[test]
fn select_with_inverse_matches_index_select_and_finite_differences() {
    // Repeated, missing (zero) and unused sources, along the last and a middle dimension.
    let ids = [Some(3), None, Some(0), Some(3), Some(5), Some(3), None, Some(1)];
    let plain: Vec<u32> = ids.iter().map(|i| i.unwrap_or(0)).collect();
    let mask: Vec<f64> = ids.iter().map(|i| if i.is_some() { 1.0 } else { 0.0 }).collect();
    for dim in [1, 2] {
        let x = rand64(54, &[2, 6, 6]);
        let mut shape = [1usize, 1, 1];
        shape[dim] = ids.len();
        let m = Tensor::from_vec(mask.clone(), &shape, &Device::Cpu).unwrap();
        let i = Tensor::from_vec(plain.clone(), ids.len(), &Device::Cpu).unwrap();
        let e = same_f32(
            |x, w| ops::select::select(x, &ids, dim)?.broadcast_mul(w),
            |x, w| x.index_select(&i, dim)?.broadcast_mul(&m.to_dtype(DType::F32)?)?.broadcast_mul(w),
            &x.to_dtype(DType::F32).unwrap(),
            &Tensor::ones(&shape, DType::F32, &Device::Cpu).unwrap(),
        );
        assert!(e < 1e-6, "dim {dim}: {e}");
        let g = gradcheck(|t| ops::select::select(t, &ids, dim), &x);
        assert!(g < 1e-6, "dim {dim}: finite differences {g}");
    }
    assert!(ops::select::select(&rand64(1, &[2, 3]), &[Some(3)], 1).is_err());
}

#[test]
fn transposed_convolution_matches_candle_with_gradients() {
    // The GAN generators' layers (k4 s2 p1, k3 s1 p1), others the phases cover, and shapes
    // that fall back to Candle's own (k5 s2 p2: the stride does not divide the output; k1 s2:
    // a phase without a tap).
    let cases =
        [(4, 2, 1, (5, 4)), (3, 1, 1, (6, 5)), (3, 1, 0, (4, 4)), (4, 2, 0, (3, 5)), (6, 3, 1, (4, 3))];
    let fallbacks = [(5, 2, 2, (5, 4)), (1, 2, 0, (4, 4))];
    // The CPU kernel (col2im), then the phases that other devices run.
    for kernels in [true, false] {
        ops::set_cpu_kernels(kernels);
        for (k, s, p, (h, w)) in cases.into_iter().chain(fallbacks) {
            let x = rand64(70, &[2, 3, h, w]).to_dtype(DType::F32).unwrap();
            let wt = rand64(71, &[3, 4, k, k]).to_dtype(DType::F32).unwrap();
            let e = same_f32(
                |x, w| ops::conv_transpose2d(x, w, None, s, p),
                |x, w| x.conv_transpose2d(w, p, 0, s, 1),
                &x,
                &wt,
            );
            assert!(e < 1e-5, "CPU kernel {kernels}, k{k} s{s} p{p} {h}×{w}: relative difference {e}");
        }
    }
    ops::set_cpu_kernels(true);
    let x = rand64(72, &[1, 2, 3, 3]);
    let b = rand64(73, &[5]);
    let y = ops::conv_transpose2d(&x, &rand64(74, &[2, 5, 4, 4]), Some(&b), 2, 1).unwrap();
    assert_eq!(y.dims(), &[1, 5, 6, 6], "(3 − 1)·2 − 2 + 4 = 6");
    let e = ops::conv_transpose2d(&x, &rand64(74, &[3, 5, 4, 4]), None, 2, 1).unwrap_err().to_string();
    assert!(e.contains("input of 2 channels") && e.contains("[3, 5, 4, 4]"), "{e}");
}

#[test]
fn transposed_convolution_gradients_match_finite_differences() {
    for (k, s, p) in [(4, 2, 1), (3, 1, 1)] {
        let w = rand64(75, &[2, 3, k, k]);
        let b = rand64(76, &[3]);
        let e = gradcheck(|x| ops::conv_transpose2d(x, &w, Some(&b), s, p), &rand64(77, &[1, 2, 3, 4]));
        assert!(e < 1e-6, "k{k} s{s} p{p}: input gradient off by {e}");
        let x = rand64(78, &[2, 2, 3, 3]);
        let e = gradcheck(|w| ops::conv_transpose2d(&x, w, None, s, p), &w);
        assert!(e < 1e-6, "k{k} s{s} p{p}: weight gradient off by {e}");
    }
}

#[test]
fn leaky_relu_kernel_matches_the_portable_form_and_finite_differences() {
    let x = rand64(80, &[2, 3, 5, 4]);
    let e = gradcheck(|x| ops::leaky_relu(x, 0.3), &x);
    assert!(e < 1e-6, "portable form's gradient off by {e}");
    let xf = x.to_dtype(DType::F32).unwrap();
    let run = |kernels: bool| {
        ops::set_cpu_kernels(kernels);
        let v = Var::from_tensor(&xf).unwrap();
        let y = ops::leaky_relu(v.as_tensor(), 0.3).unwrap();
        let r = rand64(81, y.dims()).to_dtype(DType::F32).unwrap();
        let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
        ops::set_cpu_kernels(true);
        (y, g)
    };
    let ((y1, g1), (y2, g2)) = (run(true), run(false));
    assert_eq!(max_abs_diff(&y1, &y2), 0.0);
    assert!(max_abs_diff(&g1, &g2) < 1e-6, "kernel and portable gradients differ");
    // A negative input keeps 0.3 of itself and of its gradient.
    let y = ops::leaky_relu(&Tensor::new(&[-2f32, 0.0, 3.0], &Device::Cpu).unwrap(), 0.3).unwrap();
    assert_eq!(y.to_vec1::<f32>().unwrap(), [-0.6, 0.0, 3.0]);
}

#[test]
fn folded_batch_norm_layers_give_the_numbers_of_their_parts() {
    // A mobile network's layer (convolution, its folded BatchNorm's bias, ReLU6) as one CPU
    // operation against the three operations one after the other: the same values and the
    // same gradients of input, weight and bias, bit for bit.
    let run = |f: &dyn Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>,
               x: &Tensor,
               w: &Tensor,
               b: &Tensor| {
        let (xv, wv, bv) =
            (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap(), Var::from_tensor(b).unwrap());
        let y = f(xv.as_tensor(), wv.as_tensor(), bv.as_tensor()).unwrap();
        let r = rand64(91, y.dims()).to_dtype(DType::F32).unwrap();
        let g = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        let grads = [&xv, &wv, &bv].map(|v| g.get(v.as_tensor()).unwrap().flatten_all().unwrap());
        (y.flatten_all().unwrap(), grads)
    };
    for relu6 in [false, true] {
        for (depthwise, k, s, pad) in [
            (false, 1, 1, [0; 4]),
            (false, 3, 2, [0, 1, 0, 1]),
            (true, 3, 1, [1, 1, 1, 1]),
            (true, 5, 2, [1, 2, 1, 2]),
        ] {
            let x = rand64(92, &[2, 4, 9, 8]).to_dtype(DType::F32).unwrap().affine(3.0, 1.0).unwrap();
            let w = rand64(93, &[4, if depthwise { 1 } else { 4 }, k, k]).to_dtype(DType::F32).unwrap();
            let b = rand64(94, &[4]).to_dtype(DType::F32).unwrap();
            let fused = |x: &Tensor, w: &Tensor, b: &Tensor| match depthwise {
                true => ops::depthwise_conv2d_bn(x, w, b, s, pad, relu6),
                false => ops::conv2d_bn(x, w, b, s, pad, relu6),
            };
            let parts = |x: &Tensor, w: &Tensor, b: &Tensor| {
                let y = match depthwise {
                    true => ops::depthwise_conv2d_padded(x, w, s, pad)?,
                    false => ops::conv2d_padded(x, w, None, s, pad)?,
                };
                if relu6 {
                    ops::add_channel_bias_relu6(&y, b)
                } else {
                    ops::add_channel_bias(&y, b)
                }
            };
            let ((y1, g1), (y2, g2)) = (run(&fused, &x, &w, &b), run(&parts, &x, &w, &b));
            let case = format!("depthwise {depthwise}, k{k} s{s} pad {pad:?}, relu6 {relu6}");
            assert_eq!(max_abs_diff(&y1, &y2), 0.0, "{case}: values");
            if relu6 {
                let inside = y1.to_vec1::<f32>().unwrap().iter().filter(|v| **v > 0.0 && **v < 6.0).count();
                assert!(inside > 0 && inside < y1.elem_count(), "{case}: ReLU6 both on and off ({inside})");
            }
            for (what, (p, q)) in ["input", "weight", "bias"].iter().zip(g1.iter().zip(&g2)) {
                assert_eq!(max_abs_diff(p, q), 0.0, "{case}: {what} gradient");
            }
        }
    }
}
