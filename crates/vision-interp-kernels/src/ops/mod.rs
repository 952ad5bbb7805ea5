//! Differentiable operations that Candle lacks, or whose backward pass is missing or wrong.
//!
//! Each has a portable form built from Candle operations whose gradients are right (`narrow`,
//! `reshape`, `pad_with_zeros`, `broadcast_mul`, `matmul`), which runs on every device. Where a
//! benchmark showed the need, the CPU runs a hand-written kernel instead (a custom operation
//! with its own backward pass, in [`cpu`], [`cpu_conv`] and [`batch_norm`]), tested against the
//! portable form; every operation on a gradient path has a finite-difference test in the
//! engine's `crates/vision-interp/tests/ops_gradcheck.rs`, and the tools crate's `tests/generic_path.rs` runs whole models through the
//! portable forms.
use candle_core::{DType, Device, Result, Tensor, D};

pub mod batch_norm;
pub mod cpu;
pub mod cpu_conv;
pub mod select;

pub use batch_norm::{
    batch_norm_relu_pool_train, batch_norm_relu_reference, batch_norm_relu_train, BatchStats,
};

/// Output size of a convolution along one axis: `floor((i + 2p − k) / s) + 1`.
pub fn conv_output_size(input: usize, kernel: usize, stride: usize, padding: usize) -> usize {
    // ANCHOR: solution-output-size Return floor((i + 2p − k) / s) + 1
    (input + 2 * padding - kernel) / stride + 1
    // ANCHOR_END: solution-output-size
}

// ANCHOR: naive_conv
/// Convolution as the formula writes it, one output pixel at a time (no padding, stride 1):
/// `S(i, j) = Σ_m Σ_n I(i + m, j + n) · K(m, n)`. Deep-learning "convolution" is this
/// cross-correlation: the kernel is not flipped. `image` is `h × w`, `kernel` is `k × k`,
/// both row-major; the result is `(h − k + 1) × (w − k + 1)`.
pub fn naive_conv2d(image: &[f32], h: usize, w: usize, kernel: &[f32], k: usize) -> Vec<f32> {
    let (oh, ow) = (h - k + 1, w - k + 1);
    let mut out = vec![0.0; oh * ow];
    for i in 0..oh {
        for j in 0..ow {
            let mut sum = 0.0;
            // ANCHOR: solution-naive-conv Add image[(i + m)·w + (j + n)] · kernel[m·k + n] over the k × k window into `sum`
            for m in 0..k {
                for n in 0..k {
                    sum += image[(i + m) * w + (j + n)] * kernel[m * k + n];
                }
            }
            // ANCHOR_END: solution-naive-conv
            out[i * ow + j] = sum;
        }
    }
    out
}
// ANCHOR_END: naive_conv

/// TensorFlow "SAME" padding along one axis: `(before, after)` so that the output has
/// `ceil(size / stride)` elements. Asymmetric (one more after) when the total is odd.
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// Zero-pads the two spatial axes of `(N, C, H, W)` for a TF "SAME" convolution.
pub fn pad_same(x: &Tensor, kernel: usize, stride: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (top, bottom) = same_padding(h, kernel, stride);
    let (left, right) = same_padding(w, kernel, stride);
    x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)
}

/// Every `stride`-th element along `dim`, starting at `start`, `count` of them, built from
/// `narrow` and `reshape` so the backward pass works. The axis must be long enough:
/// `start + stride * count <= size`.
pub fn strided_pick(x: &Tensor, dim: usize, start: usize, stride: usize, count: usize) -> Result<Tensor> {
    let t = x.narrow(dim, start, stride * count)?;
    if stride == 1 {
        return Ok(t);
    }
    let mut dims = t.dims().to_vec();
    dims[dim] = count;
    dims.insert(dim + 1, stride);
    t.reshape(dims)?.narrow(dim + 1, 0, 1)?.squeeze(dim + 1)
}

thread_local! {
    static CPU_KERNELS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Switches the book's CPU kernels off (or back on) for the calling thread: the operations
/// then take the paths every other device takes, from Candle operations only. For tests
/// that check the GPU path on a machine without a GPU.
pub fn set_cpu_kernels(on: bool) {
    CPU_KERNELS.with(|c| c.set(on));
}

/// Whether `x` goes through the book's CPU kernels: an f32 tensor on the CPU, kernels on.
pub fn cpu_kernels(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && CPU_KERNELS.with(|c| c.get())
}

/// Depthwise convolution (one `k × k` filter per channel, no padding): `weight` is `(C, 1, k, k)`.
pub fn depthwise_conv2d(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    depthwise_conv2d_padded(x, weight, stride, [0; 4])
}

/// Depthwise convolution of `x` padded with `pad` = `[top, bottom, left, right]` zeros.
///
/// On the CPU (f32) it runs the custom operation in [`cpu`], with hand-written forward
/// and backward loops that pad plane by plane; elsewhere it pads the tensor and falls back to
/// [`depthwise_conv2d_taps`].
pub fn depthwise_conv2d_padded(
    x: &Tensor,
    weight: &Tensor,
    stride: usize,
    pad: [usize; 4],
) -> Result<Tensor> {
    if cpu_kernels(x) && weight.dtype() == DType::F32 {
        x.contiguous()?.apply_op2(&weight.contiguous()?, cpu::DepthwiseConv2d { stride, pad })
    } else {
        let x = x.pad_with_zeros(2, pad[0], pad[1])?.pad_with_zeros(3, pad[2], pad[3])?;
        depthwise_conv2d_taps(&x, weight, stride)
    }
}

/// Depthwise convolution from Candle operations only, for every device: the sum over the
/// `k²` filter taps of a shifted (and strided) view of the input times that tap's weight.
/// (Candle's own `conv2d` with `groups = C` runs C separate convolutions joined by `cat`.)
pub fn depthwise_conv2d_taps(x: &Tensor, weight: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, c, h, w) = x.dims4()?;
    let (_, _, kh, kw) = weight.dims4()?;
    let oh = (h - kh) / stride + 1;
    let ow = (w - kw) / stride + 1;
    // Extra zeros at the end so that every strided pick stays inside the tensor.
    let x = x.pad_with_zeros(2, 0, (kh - 1 + stride * oh).saturating_sub(h))?.pad_with_zeros(
        3,
        0,
        (kw - 1 + stride * ow).saturating_sub(w),
    )?;
    let weight = weight.reshape((c, kh * kw))?.t()?.contiguous()?; // (k², C)
    let mut out: Option<Tensor> = None;
    for i in 0..kh {
        let rows = strided_pick(&x, 2, i, stride, oh)?;
        for j in 0..kw {
            let tap = strided_pick(&rows, 3, j, stride, ow)?;
            let wij = weight.get(i * kw + j)?.reshape((1, c, 1, 1))?;
            let term = tap.broadcast_mul(&wij)?;
            out = Some(match out {
                None => term,
                Some(acc) => (acc + term)?,
            });
        }
    }
    Ok(out.expect("kernel has at least one tap"))
}

/// Pads `dim` with `before` and `after` copies of the constant `value`.
pub fn pad_const(x: &Tensor, dim: usize, before: usize, after: usize, value: f64) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(3);
    let mut dims = x.dims().to_vec();
    if before > 0 {
        dims[dim] = before;
        parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(x.dtype())?);
    }
    parts.push(x.clone());
    if after > 0 {
        dims[dim] = after;
        parts.push(Tensor::full(value, dims.as_slice(), x.device())?.to_dtype(x.dtype())?);
    }
    Tensor::cat(&parts, dim)
}

/// Output size of a pooling window (PyTorch's rule, including `ceil_mode`: the last window
/// must start inside the input or its left padding).
pub fn pool_output_size(size: usize, kernel: usize, stride: usize, pad: usize, ceil: bool) -> usize {
    let span = size + 2 * pad - kernel;
    let mut out = if ceil { span.div_ceil(stride) + 1 } else { span / stride + 1 };
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    out
}

/// Max pooling with any kernel, stride, padding (with −∞) and `ceil_mode`, differentiable.
///
/// Candle's `max_pool2d` backward pass is wrong when kernel = stride (it scales the gradient
/// by 1/k²) and refused otherwise. On the CPU (f32) this runs [`cpu::MaxPool`], whose backward
/// pass sends each gradient to its window's maximum; elsewhere [`max_pool2d_views`].
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    if cpu_kernels(x) {
        let (_, _, h, w) = x.dims4()?;
        let oh = pool_output_size(h, kernel, stride, pad, ceil);
        let ow = pool_output_size(w, kernel, stride, pad, ceil);
        x.contiguous()?.apply_op1(cpu::MaxPool::new(kernel, stride, pad, oh, ow))
    } else {
        max_pool2d_views(x, kernel, stride, pad, ceil)
    }
}

/// Max pooling from Candle operations only, for every device: the maximum of the `k²` strided
/// views of the (−∞-padded) input.
pub fn max_pool2d_views(x: &Tensor, kernel: usize, stride: usize, pad: usize, ceil: bool) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let oh = pool_output_size(h, kernel, stride, pad, ceil);
    let ow = pool_output_size(w, kernel, stride, pad, ceil);
    // Enough rows and columns for every strided view (extra ones are −∞ and never win).
    let (ph, pw) = (kernel - 1 + stride * oh, kernel - 1 + stride * ow);
    let xp = pad_const(x, 2, pad, ph.saturating_sub(h + pad), f64::NEG_INFINITY)?;
    let xp = pad_const(&xp, 3, pad, pw.saturating_sub(w + pad), f64::NEG_INFINITY)?;
    let mut taps = Vec::with_capacity(kernel * kernel);
    for i in 0..kernel {
        let rows = strided_pick(&xp, 2, i, stride, oh)?;
        for j in 0..kernel {
            taps.push(strided_pick(&rows, 3, j, stride, ow)?);
        }
    }
    let mut best = taps[0].detach();
    for t in &taps[1..] {
        best = best.maximum(&t.detach())?;
    }
    // The value is the maximum; the gradient goes to the first tap (in row-major order) that
    // reaches it, as in PyTorch and the CPU kernel. (Candle's `maximum` would split it between
    // equal values, which ReLU zeros make common.)
    let zeros = best.zeros_like()?;
    let (mut taken, mut out) = (zeros.clone(), zeros.clone());
    for t in &taps {
        let first = (t.detach().eq(&best)?.to_dtype(best.dtype())? * (1.0 - &taken)?)?;
        taken = (taken + &first)?;
        out = (out + first.ne(0.0)?.where_cond(t, &zeros)?)?;
    }
    Ok(out)
}

/// Stride-1 convolution with `pad` zeros on each side, `weight` `(O, C, k, k)`.
///
/// See [`conv2d_padded`]. (Candle's own `conv2d` backward on the CPU goes through a much slower
/// transposed convolution.)
pub fn conv2d_same_stride1(x: &Tensor, weight: &Tensor, pad: usize) -> Result<Tensor> {
    conv2d_padded(x, weight, None, 1, [pad; 4])
}

/// [`conv2d_same_stride1`] plus a bias `(O)` per output channel.
pub fn conv2d_same_stride1_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    pad: usize,
) -> Result<Tensor> {
    conv2d_padded(x, weight, bias, 1, [pad; 4])
}

/// Convolution with `stride`, zero padding `[top, bottom, left, right]` (asymmetric paddings,
/// as TensorFlow-trained models need), `weight` `(O, C, k, k)` and an optional bias `(O)`.
///
/// On the CPU (f32) it is one custom operation, [`cpu_conv::Conv2d`]: per image im2col and a
/// matrix product, with a backward pass of matrix products and col2im that computes only the
/// gradients that are needed. Elsewhere it is Candle's `conv2d` (stride 1) or
/// [`conv2d_unfold`] (see `candle_conv_on_gpu`).
pub fn conv2d_padded(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    [top, bottom, left, right]: [usize; 4],
) -> Result<Tensor> {
    let (o, _, k, _) = weight.dims4()?;
    let (_, _, h, w) = x.dims4()?;
    if h + top + bottom < k || w + left + right < k {
        candle_core::bail!("convolution: {h}×{w} input (padded by {top}/{bottom}/{left}/{right}) smaller than the {k}×{k} filter");
    }
    if !cpu_kernels(x) {
        if stride == 1 && candle_conv_on_gpu() {
            let xp = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
            return plus_bias(xp.conv2d(weight, 0, 1, 1, 1)?, bias);
        }
        return conv2d_unfold(x, weight, bias, stride, [top, bottom, left, right]);
    }
    let bias = match bias {
        Some(b) => b.contiguous()?,
        None => Tensor::zeros(o, DType::F32, x.device())?,
    };
    conv2d_cpu(x, weight, &bias, stride, [top, bottom, left, right], cpu_conv::Bias::First)
}

/// [`cpu_conv::Conv2d`] on `x` (at least `k × k` once padded).
fn conv2d_cpu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    [top, bottom, left, right]: [usize; 4],
    at: cpu_conv::Bias,
) -> Result<Tensor> {
    let k = weight.dim(2)?;
    let (_, _, h, w) = x.dims4()?;
    let oh = (h + top + bottom - k) / stride + 1;
    let ow = (w + left + right - k) / stride + 1;
    let geom = cpu_conv::ConvGeom { k, stride, pad_top: top, pad_left: left, oh, ow };
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, cpu_conv::Conv2d { geom, bias: at })
}

/// A convolution with a BatchNorm folded into it, as the mobile networks' layers are:
/// `relu6(conv(x, w) + b)`, or `conv(x, w) + b` without `relu6`, with `b` one value per output
/// channel added to the finished convolution. The numbers of [`conv2d_padded`] followed by
/// [`add_channel_bias_relu6`] (or [`add_channel_bias`]), which is what runs off the CPU; on
/// the CPU (f32) one custom operation, so one pass over the output and one graph node (one
/// zeroed gradient buffer in the backward pass) instead of two.
pub fn conv2d_bn(
    x: &Tensor,
    weight: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: [usize; 4],
    relu6: bool,
) -> Result<Tensor> {
    let k = weight.dim(2)?;
    let (_, _, h, w) = x.dims4()?;
    if cpu_kernels(x) && b.dtype() == DType::F32 && h + pad[0] + pad[1] >= k && w + pad[2] + pad[3] >= k {
        return conv2d_cpu(x, weight, b, stride, pad, cpu_conv::Bias::After { relu6 });
    }
    channel_bias(&conv2d_padded(x, weight, None, stride, pad)?, b, relu6)
}

/// [`conv2d_bn`] for a depthwise convolution ([`depthwise_conv2d_padded`]):
/// `relu6(depthwise(pad(x), w) + b)`, or without the ReLU6; on the CPU (f32) one custom
/// operation, [`cpu::DepthwiseConvBias`], with the same numbers.
pub fn depthwise_conv2d_bn(
    x: &Tensor,
    weight: &Tensor,
    b: &Tensor,
    stride: usize,
    pad: [usize; 4],
    relu6: bool,
) -> Result<Tensor> {
    if cpu_kernels(x) && weight.dtype() == DType::F32 && b.dtype() == DType::F32 {
        let op = cpu::DepthwiseConvBias { conv: cpu::DepthwiseConv2d { stride, pad }, relu6 };
        return x.contiguous()?.apply_op3(&weight.contiguous()?, &b.contiguous()?, op);
    }
    channel_bias(&depthwise_conv2d_padded(x, weight, stride, pad)?, b, relu6)
}

/// [`add_channel_bias_relu6`] where `relu6`, else [`add_channel_bias`].
fn channel_bias(y: &Tensor, b: &Tensor, relu6: bool) -> Result<Tensor> {
    if relu6 {
        add_channel_bias_relu6(y, b)
    } else {
        add_channel_bias(y, b)
    }
}

/// Whether stride-1 convolutions off the CPU use Candle's `conv2d` (im2col and one matrix
/// product forward; a transposed convolution and a weight gradient backward): the default, as
/// it measured faster than [`conv2d_unfold`] for single renders on an H200 (41 against 50 ms
/// per InceptionV1 step) and the same for batches. `VISION_INTERP_GPU_CONV=unfold` picks
/// [`conv2d_unfold`] instead. (Strided convolutions always take [`conv2d_unfold`]: Candle's
/// `conv2d` backward returns a gradient of the wrong shape when the stride does not divide
/// the padded size.)
fn candle_conv_on_gpu() -> bool {
    static CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| std::env::var("VISION_INTERP_GPU_CONV").map_or(true, |v| v != "unfold"))
}

/// [`conv2d_padded`] from Candle operations only, for every device: the `k²` shifted (and
/// strided) views of the padded input are stacked into columns `(C·k², N·oh·ow)` and
/// multiplied by the weight matrix, so forward and backward run through matrix products
/// (cuBLAS on a GPU). Candle's own `conv2d` backward computes the input gradient with a
/// transposed convolution (a direct kernel on CUDA) and always the weight gradient too; this
/// path avoids both, at the price of more, smaller operations.
pub fn conv2d_unfold(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    [top, bottom, left, right]: [usize; 4],
) -> Result<Tensor> {
    let (o, c, k, _) = weight.dims4()?;
    let (n, _, h, w) = x.dims4()?;
    let y = if k == 1 && stride == 1 && top + bottom + left + right == 0 {
        weight.reshape((o, c))?.broadcast_matmul(&x.reshape((n, c, h * w))?)?.reshape((n, o, h, w))?
    } else {
        let (oh, ow) = ((h + top + bottom - k) / stride + 1, (w + left + right - k) / stride + 1);
        // Extra zeros at the end so that every strided view stays inside the tensor.
        let (ph, pw) =
            ((k - 1 + stride * oh).max(h + top + bottom), (k - 1 + stride * ow).max(w + left + right));
        let xp = x.pad_with_zeros(2, top, ph - h - top)?.pad_with_zeros(3, left, pw - w - left)?;
        // Channels first, so that the columns come out as (C, k², N, oh, ow) without a copy.
        let xt = if n == 1 { xp.squeeze(0)?.unsqueeze(1)? } else { xp.transpose(0, 1)?.contiguous()? };
        let mut taps = Vec::with_capacity(k * k);
        for i in 0..k {
            let rows = strided_pick(&xt, 2, i, stride, oh)?;
            for j in 0..k {
                taps.push(strided_pick(&rows, 3, j, stride, ow)?);
            }
        }
        let cols = Tensor::stack(&taps, 1)?.reshape((c * k * k, n * oh * ow))?;
        let y = weight.reshape((o, c * k * k))?.matmul(&cols)?.reshape((o, n, oh, ow))?;
        if n == 1 {
            y.reshape((1, o, oh, ow))?
        } else {
            y.transpose(0, 1)?
        }
    };
    plus_bias(y, bias)
}

// ANCHOR: conv_transpose2d
/// Transposed convolution, PyTorch's `ConvTranspose2d`: `weight` `(C_in, C_out, k, k)`, an
/// optional bias `(C_out)`; the output is `(H − 1)·s − 2p + k` pixels high (and wide). Input
/// pixel `(h, w)` adds `x[h, w] · weight[:, :, i, j]` to output pixel `(h·s − p + i, w·s − p + j)`.
///
/// It is the input gradient of an ordinary convolution (from the output's shape to the
/// input's, same weight, stride and padding). On the CPU it is one custom operation
/// ([`cpu_conv::ConvTranspose2d`]) made of that convolution's kernels: a matrix product and
/// col2im forward, the convolution itself for the input gradient.
///
/// Elsewhere: an output row `y` is reached only through the kernel rows `i ≡ y + p (mod s)`,
/// so the output's `s × s` phases (row mod s, column mod s) are each an ordinary convolution
/// of the input with a sub-kernel of those rows and columns, flipped ("sub-pixel
/// convolution"), and the result is the phases interleaved; nothing is spent on the zeros that
/// the textbook form (spread the input out with zeros, then convolve) multiplies. A shape
/// whose phases differ in size (the stride does not divide the output) or whose kernel misses
/// a phase (`k < s`) goes through Candle's `conv_transpose2d`, the reference of the tests.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (c_in, c_out, k, k2) = weight.dims4()?;
    let (n, c, h, w) = x.dims4()?;
    if c != c_in || k != k2 || stride == 0 {
        candle_core::bail!(
            "transposed convolution: input of {c} channels, weight {:?}, stride {stride}",
            weight.dims()
        );
    }
    if (h.min(w) - 1) * stride + k <= 2 * padding {
        candle_core::bail!("transposed convolution: padding {padding} leaves no output of a {h}×{w} input");
    }
    let (oh, ow) = ((h - 1) * stride + k - 2 * padding, (w - 1) * stride + k - 2 * padding);
    if cpu_kernels(x) && weight.dtype() == DType::F32 {
        let geom = cpu_conv::ConvGeom { k, stride, pad_top: padding, pad_left: padding, oh: h, ow: w };
        let op = cpu_conv::ConvTranspose2d { geom, out: (oh, ow) };
        return plus_bias(x.contiguous()?.apply_op2(&weight.contiguous()?, op)?, bias);
    }
    let (rows, cols) = match (phases(h, oh, stride, padding, k), phases(w, ow, stride, padding, k)) {
        (Some(r), Some(c)) => (r, c),
        _ => return plus_bias(x.conv_transpose2d(weight, padding, 0, stride, 1)?, bias),
    };
    let (ph, pw) = (oh / stride, ow / stride);
    let flipped = weight.transpose(0, 1)?.contiguous()?; // (C_out, C_in, k, k)
    let device = x.device();
    let mut out_rows = Vec::with_capacity(stride);
    for r in &rows {
        let w_rows = flipped.index_select(&Tensor::new(r.taps.as_slice(), device)?, 2)?;
        let x_rows = x.narrow(2, r.crop.0, r.crop.1)?;
        let mut phase_row = Vec::with_capacity(stride);
        for col in &cols {
            let sub = w_rows.index_select(&Tensor::new(col.taps.as_slice(), device)?, 3)?;
            let xs = x_rows.narrow(3, col.crop.0, col.crop.1)?;
            phase_row.push(conv2d_padded(&xs, &sub, None, 1, [r.pad.0, r.pad.1, col.pad.0, col.pad.1])?);
        }
        // (N, C_out, ph, pw, s) → (N, C_out, ph, pw·s): column phase c lands at columns ≡ c.
        out_rows.push(Tensor::stack(&phase_row, 4)?.reshape((n, c_out, ph, pw * stride))?);
    }
    let y = Tensor::stack(&out_rows, 3)?.reshape((n, c_out, oh, ow))?;
    plus_bias(y, bias)
}

/// One output phase of a transposed convolution along one axis: the kernel indices of its
/// sub-kernel in the order a correlation reads them, the input range it reads
/// (`(start, len)`), and the zeros it needs before and after that range.
struct Phase {
    taps: Vec<u32>,
    crop: (usize, usize),
    pad: (usize, usize),
}

/// The `stride` phases of an axis of `input` pixels whose transposed convolution has `out`
/// pixels, or `None` when they differ in size or one has no kernel tap.
fn phases(input: usize, out: usize, stride: usize, padding: usize, k: usize) -> Option<Vec<Phase>> {
    if !out.is_multiple_of(stride) || k < stride {
        return None;
    }
    let len = (out / stride) as isize;
    (0..stride)
        .map(|r| {
            // Output s·m + r reads input m + d through kernel index i = i0 + s·t, d = q − t.
            let i0 = (r + padding) % stride;
            let q = ((r + padding - i0) / stride) as isize;
            let count = (k - i0).div_ceil(stride);
            // In increasing input order: t from count − 1 down to 0.
            let taps: Vec<u32> = (0..count).rev().map(|t| (i0 + stride * t) as u32).collect();
            let first = q - (count as isize - 1); // input offset of the first tap
            let last = len - 1 + q; // input index the last output's last tap reads
            let (lo, hi) = (first.max(0), last.min(input as isize - 1));
            (lo <= hi).then(|| Phase {
                taps,
                crop: (lo as usize, (hi - lo + 1) as usize),
                pad: ((lo - first) as usize, (last - hi) as usize),
            })
        })
        .collect()
}
// ANCHOR_END: conv_transpose2d

/// LeakyReLU: `x` where it is positive, `slope · x` elsewhere (gradient 1 or `slope`; at 0,
/// `slope`). One pass each way on the CPU ([`cpu::LeakyRelu`]); elsewhere
/// `relu(x) + slope · (x − relu(x))`.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if cpu_kernels(x) {
        return x.contiguous()?.apply_op1(cpu::LeakyRelu(slope as f32));
    }
    let positive = x.relu()?;
    &positive + ((x - &positive)? * slope)?
}

/// `y` plus an optional bias per output channel ([`add_channel_bias`]).
fn plus_bias(y: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => add_channel_bias(&y, b),
        None => Ok(y),
    }
}

/// 1×1 convolution as a matrix product: `weight` `(C_out, C_in, 1, 1)`, `x` `(N, C_in, H, W)`.
/// Its backward pass is two matrix products, where Candle's `conv2d` backward runs a
/// transposed convolution and a second convolution for the (unused) weight gradient.
pub fn pointwise_conv2d(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let c_out = weight.dim(0)?;
    let y = weight.reshape((c_out, c))?.broadcast_matmul(&x.reshape((n, c, h * w))?)?;
    y.reshape((n, c_out, h, w))
}

/// ReLU6: `min(max(x, 0), 6)` (a custom operation on the CPU, `clamp` elsewhere).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    if cpu_kernels(x) {
        x.contiguous()?.apply_op1(cpu::Relu6)
    } else {
        // The gradient is 1 strictly inside (0, 6), as in PyTorch and the CPU kernel (`clamp`
        // would give half of it at exactly 0 or 6).
        let inside = x.gt(0f64)?.mul(&x.lt(6f64)?)?;
        inside.where_cond(x, &x.clamp(0f32, 6f32)?.detach())
    }
}

/// Lucent's redirected ReLU (see [`cpu::RedirectedRelu`]): the values of `max(x, 0)`, with a
/// gradient of 1 where `x >= 0` and 0.1 where `x < 0`. On other devices the same values and
/// gradients come from `where(x >= 0, x, 0.1·(x − stop_gradient(x)))`.
pub fn redirected_relu(x: &Tensor) -> Result<Tensor> {
    if cpu_kernels(x) {
        x.contiguous()?.apply_op1(cpu::RedirectedRelu)
    } else {
        // Where x < 0: the value 0.1·(x − x) = 0, with the gradient 0.1.
        let tenth = ((x - x.detach())? * 0.1)?;
        x.ge(0f64)?.where_cond(x, &tenth)
    }
}

/// ReLU6 redirected at both ends, as [`redirected_relu`] is at 0: the values of
/// `min(max(x, 0), 6)`, with a gradient of 1 where `0 <= x <= 6` and 0.1 outside, so that a
/// unit stuck below 0 (or above 6) still receives a signal during feature visualisation.
/// Portable Candle operations on every device (it runs only in renders that ask for it).
pub fn redirected_relu6(x: &Tensor) -> Result<Tensor> {
    let inside = x.ge(0f64)?.mul(&x.le(6f64)?)?;
    // Outside: the clamped value, plus 0.1·(x − x) = 0 with the gradient 0.1.
    let outside = (((x - x.detach())? * 0.1)? + x.clamp(0f32, 6f32)?.detach())?;
    inside.where_cond(x, &outside)
}

/// Local response normalisation across channels, PyTorch's semantics:
/// `b_c = a_c · (k + α/n · Σ_{c'} a_{c'}²)^(−β)`, the sum over the `n` channels centred on `c`
/// (zero outside), always divided by `n`.
///
/// On the CPU (f32) it is one custom operation ([`cpu::LocalResponseNorm`]); elsewhere it is
/// built from Candle operations ([`local_response_norm_band`]).
pub fn local_response_norm(x: &Tensor, size: usize, alpha: f64, beta: f64, k: f64) -> Result<Tensor> {
    if cpu_kernels(x) && size > 0 {
        let op = cpu::LocalResponseNorm { size, alpha: alpha as f32, beta: beta as f32, k: k as f32 };
        x.contiguous()?.apply_op1(op)
    } else {
        local_response_norm_band(x, size, alpha, beta, k)
    }
}

/// [`local_response_norm`] from Candle operations only, for every device: the sums of squares
/// over each channel's window are one matrix product with a band of ones `(C, C)` (a handful of
/// graph nodes, where `size` shifted views and their sums would be some twenty).
pub fn local_response_norm_band(x: &Tensor, size: usize, alpha: f64, beta: f64, k: f64) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let mut band = vec![0f32; c * c];
    for out in 0..c {
        // The channels `out − ⌊size/2⌋ ..= out + ⌊(size−1)/2⌋`, clipped to the tensor.
        for src in out.saturating_sub(size / 2)..(out + (size - 1) / 2 + 1).min(c) {
            band[out * c + src] = 1.0;
        }
    }
    let band = Tensor::from_vec(band, (c, c), x.device())?.to_dtype(x.dtype())?;
    let sums = band.broadcast_matmul(&x.sqr()?.reshape((n, c, h * w))?)?.reshape((n, c, h, w))?;
    x / sums.affine(alpha / size as f64, k)?.powf(beta)?
}

/// `x + b` with one bias value per channel, `x` `(N, C, H, W)`, `b` `(C)` (a custom operation
/// with a fast bias gradient on the CPU, `broadcast_add` elsewhere).
pub fn add_channel_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if cpu_kernels(x) && b.dtype() == DType::F32 {
        x.contiguous()?.apply_op2(&b.contiguous()?, cpu::ChannelBias { relu6: false })
    } else {
        x.broadcast_add(&b.reshape((1, (), 1, 1))?)
    }
}

/// `relu6(x + b)` with one bias value per channel: one fused pass on the CPU.
pub fn add_channel_bias_relu6(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if cpu_kernels(x) && b.dtype() == DType::F32 {
        x.contiguous()?.apply_op2(&b.contiguous()?, cpu::ChannelBias { relu6: true })
    } else {
        relu6(&x.broadcast_add(&b.reshape((1, (), 1, 1))?)?)
    }
}

/// PyTorch's adaptive average pool to `size × size`: output cell `i` averages input rows
/// `floor(i·h/size) .. ceil((i+1)·h/size)` (overlapping bins when `size` does not divide `h`).
pub fn adaptive_avg_pool2d(x: &Tensor, size: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    if h == size && w == size {
        return Ok(x.clone());
    }
    let bins = |len: usize| -> Vec<(usize, usize)> {
        (0..size).map(|i| (i * len / size, ((i + 1) * len).div_ceil(size))).collect()
    };
    let mut cells = Vec::with_capacity(size * size);
    for (y0, y1) in bins(h) {
        for (x0, x1) in bins(w) {
            cells.push(x.narrow(2, y0, y1 - y0)?.narrow(3, x0, x1 - x0)?.mean((2, 3))?);
        }
    }
    Tensor::stack(&cells, 2)?.reshape((n, c, size, size))
}

/// Global average pool: `(N, C, H, W)` → `(N, C)`.
pub fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    x.mean(D::Minus1)?.mean(D::Minus1)
}

/// Interpolation matrix `A` (`out × inp`) with `y = A x` resampling a 1-D signal bilinearly
/// (PyTorch's `align_corners = false`, no antialiasing).
pub fn bilinear_matrix(out: usize, inp: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut a = vec![0f32; out * inp];
    for o in 0..out {
        let src = ((o as f64 + 0.5) * inp as f64 / out as f64 - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l1 = src - i0 as f64;
        a[o * inp + i0] += (1.0 - l1) as f32;
        a[o * inp + i1] += l1 as f32;
    }
    Tensor::from_vec(a, (out, inp), device)
}

/// Interpolation matrix like [`bilinear_matrix`] with `align_corners = true`: the first and
/// last samples of input and output coincide (`src = o·(inp − 1)/(out − 1)`).
pub fn bilinear_matrix_aligned(out: usize, inp: usize, device: &candle_core::Device) -> Result<Tensor> {
    let mut a = vec![0f32; out * inp];
    for o in 0..out {
        let src = if out > 1 { o as f64 * (inp - 1) as f64 / (out - 1) as f64 } else { 0.0 };
        let i0 = (src.floor() as usize).min(inp - 1);
        let i1 = (i0 + 1).min(inp - 1);
        let l1 = src - i0 as f64;
        a[o * inp + i0] += (1.0 - l1) as f32;
        a[o * inp + i1] += l1 as f32;
    }
    Tensor::from_vec(a, (out, inp), device)
}

/// [`resize_bilinear`] with `align_corners = true` (Lucent's `nn.Upsample`).
pub fn resize_bilinear_aligned(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    resize_with(x, out_h, out_w, bilinear_matrix_aligned)
}

/// `A_h · x · A_wᵀ` over the last two axes, as two plain 2-D matrix products on contiguous
/// operands (whose backward passes Candle handles for any batch shape).
fn resize_separable(x: &Tensor, ah: &Tensor, aw: &Tensor) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let (oh, ow) = (ah.dim(0)?, aw.dim(0)?);
    let lead: usize = dims[..dims.len() - 2].iter().product();
    let y = x.contiguous()?.reshape((lead * h, w))?.matmul(&aw.t()?.contiguous()?)?; // (lead·h, ow)
    let y = y.reshape((lead, h, ow))?.transpose(1, 2)?.contiguous()?.reshape((lead * ow, h))?;
    let y = y.matmul(&ah.t()?.contiguous()?)?.reshape((lead, ow, oh))?.transpose(1, 2)?.contiguous()?;
    let mut out_dims = dims[..dims.len() - 2].to_vec();
    out_dims.extend([oh, ow]);
    y.reshape(out_dims)
}

/// Interpolation matrix (`out × inp`) of an antialiased bilinear resize (PyTorch's and PIL's
/// `antialias=True`, `align_corners=False`): output sample `o` averages the inputs under a
/// triangle centred on `(o + ½)·s`, `s = inp/out`, that is `max(s, 1)` samples wide on each
/// side, with weights that sum to one. Upsampling (`s < 1`) is plain bilinear.
pub fn antialias_matrix(out: usize, inp: usize, device: &candle_core::Device) -> Result<Tensor> {
    let s = inp as f64 / out as f64;
    let support = s.max(1.0);
    let mut a = vec![0f32; out * inp];
    for o in 0..out {
        let centre = (o as f64 + 0.5) * s;
        let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
        let hi = ((centre + support + 0.5).floor() as usize).min(inp);
        let w: Vec<f64> =
            (lo..hi).map(|j| (1.0 - ((j as f64 - centre + 0.5) / support).abs()).max(0.0)).collect();
        let total: f64 = w.iter().sum();
        for (j, wj) in (lo..hi).zip(w) {
            a[o * inp + j] = (wj / total) as f32;
        }
    }
    Tensor::from_vec(a, (out, inp), device)
}

/// Differentiable antialiased bilinear resize of the last two axes (see [`antialias_matrix`]):
/// a crop shrunk to the model's input keeps its detail instead of aliasing it.
pub fn resize_antialiased(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    resize_with(x, out_h, out_w, antialias_matrix)
}

/// `A_h · x · A_wᵀ` with the interpolation matrices that `matrix(out, inp, device)` makes (`x`
/// itself when the size does not change).
fn resize_with(
    x: &Tensor,
    out_h: usize,
    out_w: usize,
    matrix: fn(usize, usize, &candle_core::Device) -> Result<Tensor>,
) -> Result<Tensor> {
    let dims = x.dims();
    let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    if (h, w) == (out_h, out_w) {
        return Ok(x.clone());
    }
    let ah = matrix(out_h, h, x.device())?.to_dtype(x.dtype())?;
    let aw = matrix(out_w, w, x.device())?.to_dtype(x.dtype())?;
    resize_separable(x, &ah, &aw)
}

/// Differentiable bilinear resize of the last two axes: `y = A_h · x · A_wᵀ`.
/// (Candle's `upsample_bilinear2d` has no backward pass.)
pub fn resize_bilinear(x: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    resize_with(x, out_h, out_w, bilinear_matrix)
}
