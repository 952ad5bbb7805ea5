//! CPU kernels with hand-written backward passes, as Candle custom operations: depthwise
//! convolution, max pooling, ReLU6, the redirected ReLU, per-channel bias and local response
//! normalisation (the convolution is in [`super::cpu_conv`], batch normalisation in
//! [`super::batch_norm`]). Each is compared with its Candle-only counterpart in the tests.
//!
//! Candle's `conv2d(groups = C)` runs C separate convolutions joined by `cat`, and the
//! shifted-view formulation in [`super::depthwise_conv2d_taps`] allocates a full-size gradient
//! per filter tap in the backward pass. Depthwise filters are tiny, so direct loops over each
//! channel plane (in parallel with rayon) are the fast way on a CPU.
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// The values of a contiguous f32 tensor's storage (`what` names it in the error).
pub fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("CPU kernel: {what} must be f32"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("CPU kernel: {what} must be contiguous"),
    }
}

/// [`f32_slice`], mutably (for operations in place).
pub fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout, what: &str) -> Result<&'a mut [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_mut_slice(),
        _ => candle_core::bail!("CPU kernel: {what} must be f32"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&mut data[a..b]),
        None => candle_core::bail!("CPU kernel: {what} must be contiguous"),
    }
}

/// Geometry of one call: input `(n, c, h, w)` (padded: width `w`), filter `k × k`, stride
/// `s`, output `oh × ow`.
#[derive(Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    w: usize,
    k: usize,
    s: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    /// The geometry of `x` once padded by `pad` (`[top, bottom, left, right]`): `h` and `w`
    /// are the padded sizes.
    fn new(x: &Shape, k: usize, s: usize, pad: [usize; 4]) -> Result<Self> {
        let (n, c, h, w) = x.dims4()?;
        let (h, w) = (h + pad[0] + pad[1], w + pad[2] + pad[3]);
        if h < k || w < k {
            candle_core::bail!("depthwise conv: input {h}×{w} smaller than the {k}×{k} filter");
        }
        Ok(Self { n, c, w, k, s, oh: (h - k) / s + 1, ow: (w - k) / s + 1 })
    }
}

/// One `h × w` channel plane `xp` with zeros around it (`pad` is `[top, bottom, left, right]`),
/// written into `buf`; the plane itself when there is no padding. Padding plane by plane, in a
/// buffer that stays in cache, replaces two `pad_with_zeros` of the whole tensor (two copies
/// forward, two more and their gradient buffers backward).
fn padded<'a>(xp: &'a [f32], h: usize, w: usize, pad: [usize; 4], buf: &'a mut Vec<f32>) -> &'a [f32] {
    if pad == [0; 4] {
        return xp;
    }
    let pw = w + pad[2] + pad[3];
    buf.clear();
    buf.resize((h + pad[0] + pad[1]) * pw, 0.0);
    for (y, row) in xp.chunks_exact(w).enumerate() {
        let start = (y + pad[0]) * pw + pad[2];
        buf[start..start + w].copy_from_slice(row);
    }
    buf
}

/// `out[t] += a · x[t]` for every `t` of `out` (a loop the compiler vectorises).
fn axpy(out: &mut [f32], a: f32, x: &[f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// The plane `xp` (rows of `w`) with each row's columns split by their remainder modulo the
/// stride `s`: phase `p` of row `r` (columns `p, p + s, p + 2s, …`) is the run of `⌈w/s⌉`
/// values from `((r·s + p)·⌈w/s⌉)`. A stride-`s` run of a row is then a contiguous run of one
/// phase, which the compiler vectorises; with `s = 1`, the plane itself.
fn phases<'a>(xp: &'a [f32], w: usize, s: usize, buf: &'a mut Vec<f32>) -> &'a [f32] {
    if s == 1 {
        return xp;
    }
    let wp = w.div_ceil(s);
    buf.clear();
    buf.resize(xp.len() / w * s * wp, 0.0);
    for (r, row) in xp.chunks_exact(w).enumerate() {
        for p in 0..s {
            let phase = &mut buf[(r * s + p) * wp..][..wp];
            phase.iter_mut().zip(row.iter().skip(p).step_by(s)).for_each(|(o, &v)| *o = v);
        }
    }
    buf
}

/// Where tap column `j` of a `k`-wide filter starts in a row split by [`phases`] (stride `s`,
/// phases `wp` long): phase `j mod s`, from column `⌊j/s⌋`.
fn phase_offsets(k: usize, s: usize, wp: usize) -> Vec<usize> {
    (0..k).map(|j| (j % s) * wp + j / s).collect()
}

/// `v + b`, then ReLU6 where `relu6`, for every `v` of `row` in place: the same expression as
/// [`ChannelBias`], for the kernels that add a folded BatchNorm's bias after their sum.
pub(super) fn add_bias(row: &mut [f32], b: f32, relu6: bool) {
    if relu6 {
        row.iter_mut().for_each(|v| *v = (*v + b).clamp(0.0, 6.0));
    } else {
        row.iter_mut().for_each(|v| *v += b);
    }
}

/// `grad · 1[0 < y < 6]` for the output `y` of a ReLU6 (which is inside (0, 6) exactly where
/// its input is).
pub(super) fn relu6_grad(y: &Tensor, grad: &Tensor) -> Result<Tensor> {
    y.apply_op2_no_bwd(grad, &Relu6Grad)
}

/// y = depthwise(pad(x), w): arguments `(x (N,C,H,W), w (C,1,k,k))`, zero padding `pad`
/// (`[top, bottom, left, right]`).
pub struct DepthwiseConv2d {
    pub stride: usize,
    pub pad: [usize; 4],
}

impl DepthwiseConv2d {
    /// The forward pass, then `post(channel, output plane)` on each plane while it is in cache.
    fn forward(
        &self,
        (s1, l1): (&CpuStorage, &Layout),
        (s2, l2): (&CpuStorage, &Layout),
        post: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Result<(CpuStorage, Shape)> {
        let k = l2.shape().dims4()?.2;
        let (_, _, h, w) = l1.shape().dims4()?;
        let g = Geom::new(l1.shape(), k, self.stride, self.pad)?;
        let (x, wt) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "weight")?);
        let mut y = vec![0f32; g.n * g.c * g.oh * g.ow];
        let (s, wp) = (g.s, g.w.div_ceil(g.s));
        let cols = phase_offsets(k, s, wp);
        let buffers = || (Vec::new(), Vec::new());
        y.par_chunks_mut(g.oh * g.ow).enumerate().for_each_init(buffers, |(buf, split), (plane, out)| {
            let c = plane % g.c;
            let xp = padded(&x[plane * h * w..(plane + 1) * h * w], h, w, self.pad, buf);
            let xs = phases(xp, g.w, s, split);
            let wc = &wt[c * k * k..(c + 1) * k * k];
            // Row by row, and within a row tap by tap: the output row stays in L1 while the
            // k² taps add into it, each a contiguous multiply-add (tap (i, j) reads phase
            // j mod s of row oy·s + i from column ⌊j/s⌋). Each output sums its taps in the
            // same order as tap-major loops would.
            for (oy, orow) in out.chunks_exact_mut(g.ow).enumerate() {
                for (i, wi) in wc.chunks_exact(k).enumerate() {
                    let row = &xs[(oy * s + i) * s * wp..];
                    for (&wv, &at) in wi.iter().zip(&cols) {
                        axpy(orow, wv, &row[at..]);
                    }
                }
            }
            post(c, out);
        });
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.c, g.oh, g.ow))))
    }

    /// The gradients of `x` and `w` that are needed, from the output's gradient.
    fn gradients(&self, x: &Tensor, w: &Tensor, grad: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, wd) = x.dims4()?;
        // Only what is needed: attribution differentiates through fixed weights.
        let (stride, pad) = (self.stride, self.pad);
        let gx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(w, &InputGrad { stride, pad, h, w: wd })?),
            false => None,
        };
        let gw = match w.track_op() {
            true => Some(x.apply_op2_no_bwd(grad, &WeightGrad { stride, pad, k: w.dim(2)? })?),
            false => None,
        };
        Ok((gx, gw))
    }
}

impl CustomOp2 for DepthwiseConv2d {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward((s1, l1), (s2, l2), |_, _| {})
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        self.gradients(x, w, &grad.contiguous()?)
    }
}

/// `relu6(depthwise(pad(x), w) + b)` (without the ReLU6 where `!relu6`): arguments `(x, w, b
/// (C))`. The numbers of [`DepthwiseConv2d`], [`ChannelBias`] and ReLU6 one after the other
/// (a BatchNorm folded into the convolution), in one pass and one graph node instead of two.
pub struct DepthwiseConvBias {
    pub conv: DepthwiseConv2d,
    pub relu6: bool,
}

impl CustomOp3 for DepthwiseConvBias {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let b = f32_slice(s3, l3, "bias")?;
        let c = l1.shape().dims4()?.1;
        if b.len() != c {
            candle_core::bail!("depthwise conv: {} bias values for {c} channels", b.len());
        }
        self.conv.forward((s1, l1), (s2, l2), |ch, out| add_bias(out, b[ch], self.relu6))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let grad = if self.relu6 { relu6_grad(res, &grad)? } else { grad };
        let (gx, gw) = self.conv.gradients(x, w, &grad)?;
        let gb = bias_grad(b, &grad)?;
        Ok((gx, gw, gb))
    }
}

/// ∂L/∂x from `(∂L/∂y, w)`; `h × w` is the input's size before padding.
struct InputGrad {
    stride: usize,
    pad: [usize; 4],
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (n, c, oh, ow) = l1.shape().dims4()?;
        let k = l2.shape().dims4()?.2;
        let (s, pad) = (self.stride, self.pad);
        let (h, w) = (self.h + pad[0] + pad[1], self.w + pad[2] + pad[3]);
        let (gy, wt) = (f32_slice(s1, l1, "gradient")?, f32_slice(s2, l2, "weight")?);
        let mut gx = vec![0f32; n * c * self.h * self.w];
        let wp = w.div_ceil(s);
        let cols = phase_offsets(k, s, wp);
        let buffers = || (Vec::new(), Vec::new());
        gx.par_chunks_mut(self.h * self.w).enumerate().for_each_init(
            buffers,
            |(buf, split), (plane, gx_plane)| {
                // The gradient of the padded plane, of which the input's is the inside.
                let out: &mut [f32] = if pad == [0; 4] {
                    gx_plane
                } else {
                    buf.clear();
                    buf.resize(h * w, 0.0);
                    buf
                };
                let ch = plane % c;
                let g = &gy[plane * oh * ow..(plane + 1) * oh * ow];
                let wc = &wt[ch * k * k..(ch + 1) * k * k];
                // Row by row of the padded plane, and within a row tap by tap, so that the row
                // stays in L1; each input pixel sums its taps in the same order as tap-major loops
                // would. Tap (i, j) brings output row `oy` to padded row `oy·s + i`.
                // With a stride, each row gathers into its phases (see `phases`), which are then
                // put back in column order.
                for (r, row) in out.chunks_exact_mut(w).enumerate() {
                    let acc: &mut [f32] = if s == 1 {
                        row
                    } else {
                        split.clear();
                        split.resize(s * wp, 0.0);
                        split
                    };
                    for (i, wi) in wc.chunks_exact(k).enumerate() {
                        if r < i || (r - i) % s != 0 || (r - i) / s >= oh {
                            continue;
                        }
                        let grow = &g[(r - i) / s * ow..][..ow];
                        for (&wv, &at) in wi.iter().zip(&cols) {
                            axpy(&mut acc[at..][..ow], wv, grow);
                        }
                    }
                    if s > 1 {
                        for p in 0..s {
                            let phase = &split[p * wp..][..wp];
                            row.iter_mut().skip(p).step_by(s).zip(phase).for_each(|(v, &a)| *v = a);
                        }
                    }
                }
                if pad != [0; 4] {
                    for (y, row) in gx_plane.chunks_exact_mut(self.w).enumerate() {
                        let start = (y + pad[0]) * w + pad[2];
                        row.copy_from_slice(&buf[start..start + self.w]);
                    }
                }
            },
        );
        Ok((CpuStorage::F32(gx), Shape::from((n, c, self.h, self.w))))
    }
}

/// ∂L/∂w from `(x, ∂L/∂y)`.
struct WeightGrad {
    stride: usize,
    pad: [usize; 4],
    k: usize,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, _, h, w) = l1.shape().dims4()?;
        let g = Geom::new(l1.shape(), self.k, self.stride, self.pad)?;
        let (x, gy) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let k = g.k;
        let mut gw = vec![0f32; g.c * k * k];
        gw.par_chunks_mut(k * k).enumerate().for_each_init(Vec::new, |buf, (ch, out)| {
            for b in 0..g.n {
                let plane = b * g.c + ch;
                let xp = padded(&x[plane * h * w..(plane + 1) * h * w], h, w, self.pad, buf);
                let gp = &gy[plane * g.oh * g.ow..(plane + 1) * g.oh * g.ow];
                for (tap, o) in out.iter_mut().enumerate() {
                    let (i, j) = (tap / k, tap % k);
                    let mut acc = 0f32;
                    for oy in 0..g.oh {
                        let grow = &gp[oy * g.ow..(oy + 1) * g.ow];
                        let xrow = &xp[(oy * g.s + i) * g.w + j..];
                        acc += if g.s == 1 {
                            grow.iter().zip(xrow).map(|(a, b)| a * b).sum::<f32>()
                        } else {
                            grow.iter().enumerate().map(|(ox, a)| a * xrow[ox * g.s]).sum::<f32>()
                        };
                    }
                    *o += acc;
                }
            }
        });
        Ok((CpuStorage::F32(gw), Shape::from((g.c, 1, k, k))))
    }
}

/// ReLU6 on the CPU: `min(max(x, 0), 6)`, gradient 1 inside (0, 6) and 0 outside.
/// (Candle's `clamp` backward builds several full-size masks.)
pub struct Relu6;

impl candle_core::CustomOp1 for Relu6 {
    fn name(&self) -> &'static str {
        "relu6"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "input")?;
        let y: Vec<f32> = x.par_iter().map(|v| v.clamp(0.0, 6.0)).collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &Relu6Grad)?))
    }
}

/// `grad · 1[0 < x < 6]` from `(x, grad)`.
struct Relu6Grad;

impl CustomOp2 for Relu6Grad {
    fn name(&self) -> &'static str {
        "relu6-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let out: Vec<f32> = x
            .par_iter()
            .zip(g.par_iter())
            .map(|(&v, &gv)| if v > 0.0 && v < 6.0 { gv } else { 0.0 })
            .collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// LeakyReLU on the CPU: `x` where it is positive, `slope · x` elsewhere, in one pass each way
/// (the portable form is four full-size operations forward and more backward).
pub struct LeakyRelu(pub f32);

impl candle_core::CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, k) = (f32_slice(s, l, "input")?, self.0);
        let y: Vec<f32> = x.par_iter().map(|&v| if v > 0.0 { v } else { k * v }).collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &LeakyReluGrad(self.0))?))
    }
}

/// `grad` where `x > 0`, `slope · grad` elsewhere, from `(x, grad)`.
struct LeakyReluGrad(f32);

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "leaky-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g, k) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?, self.0);
        let out: Vec<f32> =
            x.par_iter().zip(g.par_iter()).map(|(&v, &gv)| if v > 0.0 { gv } else { k * gv }).collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Max pooling on the CPU: window `k`, stride `s`, `pad` (−∞) on the top and left; the output
/// size `oh × ow` is given (see [`super::pool_output_size`]). The forward pass records where
/// each output's maximum came from (the first one in its window, as in PyTorch), and the
/// backward pass sends each output's gradient there.
pub struct MaxPool {
    pub k: usize,
    pub s: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
    /// Per output, the index of its maximum within the input plane (`u32::MAX`: an empty
    /// window); written by the forward pass.
    argmax: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

impl MaxPool {
    pub fn new(k: usize, s: usize, pad: usize, oh: usize, ow: usize) -> Self {
        Self { k, s, pad, oh, ow, argmax: Default::default() }
    }

    /// The forward pass over one plane `h × w`: each output's maximum and where it came from
    /// (the first one in row-major order: only a strictly greater value replaces it).
    fn pool_plane(&self, xp: &[f32], (h, w): (usize, usize), out: &mut [f32], arg: &mut [u32]) {
        for oy in 0..self.oh {
            let (y0, y1) = self.span(oy, h);
            for ox in 0..self.ow {
                let (x0, x1) = self.span(ox, w);
                let o = oy * self.ow + ox;
                if y0 >= y1 || x0 >= x1 {
                    (out[o], arg[o]) = (f32::NEG_INFINITY, u32::MAX);
                    continue;
                }
                let (mut best, mut at) = (xp[y0 * w + x0], y0 * w + x0);
                for yy in y0..y1 {
                    let row = yy * w;
                    for (xx, &v) in xp[row + x0..row + x1].iter().enumerate() {
                        let take = v > best;
                        best = if take { v } else { best };
                        at = if take { row + x0 + xx } else { at };
                    }
                }
                (out[o], arg[o]) = (best, at as u32);
            }
        }
    }

    /// Rows (or columns) `lo..hi` of the input inside the window of output row (column) `o`.
    fn span(&self, o: usize, len: usize) -> (usize, usize) {
        let start = o * self.s;
        (start.max(self.pad) - self.pad, (start + self.k).saturating_sub(self.pad).min(len))
    }
}

impl candle_core::CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(st, l, "input")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let y = self.forward_slice(x, (n, c, h, w));
        Ok((CpuStorage::F32(y), Shape::from((n, c, self.oh, self.ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(self.backward(grad, x.shape())?))
    }
}

impl MaxPool {
    /// The forward pass over `x` `(N, C, H, W)`: the pooled values, with the positions of the
    /// maxima kept for [`MaxPool::backward`].
    pub(super) fn forward_slice(&self, x: &[f32], (n, c, h, w): (usize, usize, usize, usize)) -> Vec<f32> {
        let per_plane = self.oh * self.ow;
        let mut y = vec![0f32; n * c * per_plane];
        let mut idx = vec![0u32; n * c * per_plane];
        y.par_chunks_mut(per_plane)
            .zip(idx.par_chunks_mut(per_plane))
            .enumerate()
            .for_each(|(plane, (out, arg))| self.pool_plane(&x[plane * h * w..][..h * w], (h, w), out, arg));
        *self.argmax.lock().expect("argmax lock") = idx;
        y
    }

    /// `∂L/∂x` (of shape `input`) from `∂L/∂y`: each gradient goes to its window's maximum.
    pub(super) fn backward(&self, grad: &Tensor, input: &Shape) -> Result<Tensor> {
        let (_, _, h, w) = input.dims4()?;
        let op = MaxPoolGrad { plane: h * w, argmax: self.argmax.clone() };
        grad.contiguous()?.apply_op1_no_bwd(&op)?.reshape(input)
    }
}

/// `∂L/∂x` of [`MaxPool`] from `∂L/∂y`, through the recorded positions of the maxima.
struct MaxPoolGrad {
    plane: usize,
    argmax: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

impl candle_core::CustomOp1 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max-pool2d-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32_slice(s, l, "gradient")?;
        let (n, c, oh, ow) = l.shape().dims4()?;
        let argmax = self.argmax.lock().expect("argmax lock");
        if argmax.len() != g.len() {
            candle_core::bail!(
                "max pool backward: {} recorded maxima for {} gradients",
                argmax.len(),
                g.len()
            );
        }
        let mut gx = vec![0f32; n * c * self.plane];
        gx.par_chunks_mut(self.plane).zip(g.par_chunks(oh * ow).zip(argmax.par_chunks(oh * ow))).for_each(
            |(out, (gp, ap))| {
                for (&gv, &i) in gp.iter().zip(ap) {
                    if i != u32::MAX {
                        out[i as usize] += gv;
                    }
                }
            },
        );
        Ok((CpuStorage::F32(gx), Shape::from((n * c * self.plane,))))
    }
}

/// Lucent's redirected ReLU: forward `max(x, 0)`; backward passes the gradient where `x >= 0`
/// and 0.1 times it where `x < 0`, so that units that are off still receive a signal during
/// feature visualisation.
pub struct RedirectedRelu;

impl candle_core::CustomOp1 for RedirectedRelu {
    fn name(&self) -> &'static str {
        "redirected-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "input")?;
        Ok((CpuStorage::F32(x.par_iter().map(|&v| v.max(0.0)).collect()), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &RedirectedReluGrad)?))
    }
}

struct RedirectedReluGrad;

impl CustomOp2 for RedirectedReluGrad {
    fn name(&self) -> &'static str {
        "redirected-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let out =
            x.par_iter().zip(g.par_iter()).map(|(&v, &gv)| if v >= 0.0 { gv } else { 0.1 * gv }).collect();
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// `y = x + b[c]` for `x` `(N, C, H, W)` and `b` `(C)`, followed by ReLU6 when `relu6` is set
/// (one pass instead of two). Candle's `broadcast_add` would compute the bias gradient by a
/// strided reduction over three axes; here it is one sum per plane.
pub struct ChannelBias {
    pub relu6: bool,
}

impl CustomOp2 for ChannelBias {
    fn name(&self) -> &'static str {
        "channel-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "bias")?);
        let (_, c, h, w) = l1.shape().dims4()?;
        if b.len() != c {
            candle_core::bail!("channel bias: {} values for {c} channels", b.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).enumerate().for_each(|(plane, (out, inp))| {
            let bv = b[plane % c];
            if self.relu6 {
                for (o, &v) in out.iter_mut().zip(inp) {
                    *o = (v + bv).clamp(0.0, 6.0);
                }
            } else {
                for (o, &v) in out.iter_mut().zip(inp) {
                    *o = v + bv;
                }
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        // ReLU6's gradient is 1 strictly inside (0, 6): read it off the output.
        let grad = if self.relu6 { relu6_grad(res, &grad)? } else { grad };
        let db = bias_grad(b, &grad)?;
        Ok((Some(grad), db))
    }
}

/// The gradient of a per-channel bias `b` from the output's gradient (each channel's sum), or
/// `None` where `b` needs none.
pub(super) fn bias_grad(b: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
    match b.track_op() {
        true => Ok(Some(grad.apply_op1_no_bwd(&ChannelSum)?.reshape(b.shape())?)),
        false => Ok(None),
    }
}

/// `(N, C, H, W)` → `(C)`: the sum of each channel over batch and space.
struct ChannelSum;

impl candle_core::CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32_slice(s, l, "gradient")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let sums: Vec<f32> = (0..c)
            .into_par_iter()
            .map(|ch| (0..n).map(|b| g[(b * c + ch) * h * w..][..h * w].iter().sum::<f32>()).sum())
            .collect();
        Ok((CpuStorage::F32(sums), Shape::from(c)))
    }
}

/// Local response normalisation across channels (see [`super::local_response_norm`]) in one
/// pass: `b_c = a_c · d_c^(−β)` with `d_c = k + α/n · Σ_{c'} a_{c'}²` over the `n` channels
/// centred on `c`. Built from Candle operations it is some twenty nodes (squares, nine shifted
/// views, their sums, a power, a division), each with a full-size gradient; at InceptionV1's
/// 56×56 layers that cost more than all its convolutions together. The backward pass:
/// `∂L/∂a_j = g_j d_j^(−β) − (2αβ/n) · a_j · Σ_{c ∋ j} g_c a_c d_c^(−β−1)`.
#[derive(Debug, Clone, Copy)]
pub struct LocalResponseNorm {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

/// Pixels per work item of [`LocalResponseNorm`]: all channels of a run of this many pixels.
const LRN_CHUNK: usize = 256;

impl LocalResponseNorm {
    /// The channels `c'` whose squares enter `d_c`: `c − ⌊n/2⌋ ..= c + ⌊(n−1)/2⌋`, clipped.
    fn window(&self, c: usize, channels: usize) -> std::ops::Range<usize> {
        c.saturating_sub(self.size / 2)..(c + (self.size - 1) / 2 + 1).min(channels)
    }

    /// `d_c^(−β)` (a reciprocal square root for Lucid's β = 1/2).
    fn inv_pow(&self, d: f32) -> f32 {
        if self.beta == 0.5 {
            1.0 / d.sqrt()
        } else {
            d.powf(-self.beta)
        }
    }

    /// `d` for one run of `len` pixels of all `c` channels: `x` and `d` hold channel `ch`'s
    /// run at `ch·stride`.
    fn denominators(&self, x: &[f32], stride: usize, c: usize, len: usize, d: &mut [f32]) {
        let scale = self.alpha / self.size as f32;
        for ch in 0..c {
            let out = &mut d[ch * len..][..len];
            out.fill(0.0);
            for src in self.window(ch, c) {
                for (o, &v) in out.iter_mut().zip(&x[src * stride..][..len]) {
                    *o += v * v;
                }
            }
            for o in out.iter_mut() {
                *o = self.k + scale * *o;
            }
        }
    }

    /// Splits `(N, C, H, W)` into work items (image, first pixel, run length) and runs
    /// `f(item offset, run length, output runs)` for each in parallel; `out` has `x`'s layout.
    fn for_runs(
        &self,
        shape: (usize, usize, usize),
        out: &mut [f32],
        f: impl Fn(usize, usize, &mut [&mut [f32]]) + Sync + Send,
    ) {
        let (n, c, hw) = shape;
        let mut items: Vec<(usize, Vec<&mut [f32]>)> = Vec::new();
        for (b, image) in out.chunks_mut(c * hw).enumerate().take(n) {
            let mut planes: Vec<_> = image.chunks_mut(hw).map(|p| p.chunks_mut(LRN_CHUNK)).collect();
            for start in (0..hw).step_by(LRN_CHUNK) {
                let runs = planes.iter_mut().map(|p| p.next().expect("one run per chunk")).collect();
                items.push((b * c * hw + start, runs));
            }
        }
        items.into_par_iter().for_each(|(offset, mut runs)| {
            let len = runs[0].len();
            f(offset, len, &mut runs)
        });
    }
}

impl candle_core::CustomOp1 for LocalResponseNorm {
    fn name(&self) -> &'static str {
        "local-response-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "input")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let hw = h * w;
        let mut y = vec![0f32; x.len()];
        self.for_runs((n, c, hw), &mut y, |offset, len, runs| {
            let xs = &x[offset..];
            let mut d = vec![0f32; c * len];
            self.denominators(xs, hw, c, len, &mut d);
            for (ch, out) in runs.iter_mut().enumerate() {
                for ((o, &a), &dv) in out.iter_mut().zip(&xs[ch * hw..][..len]).zip(&d[ch * len..]) {
                    *o = a * self.inv_pow(dv);
                }
            }
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &LocalResponseNormGrad(*self))?))
    }
}

/// ∂L/∂a of [`LocalResponseNorm`] from `(a, ∂L/∂b)`.
struct LocalResponseNormGrad(LocalResponseNorm);

impl CustomOp2 for LocalResponseNormGrad {
    fn name(&self) -> &'static str {
        "local-response-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let lrn = self.0;
        let (x, g) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let (n, c, h, w) = l1.shape().dims4()?;
        let hw = h * w;
        let coef = 2.0 * lrn.alpha * lrn.beta / lrn.size as f32;
        let mut dx = vec![0f32; x.len()];
        lrn.for_runs((n, c, hw), &mut dx, |offset, len, runs| {
            let (xs, gs) = (&x[offset..], &g[offset..]);
            let mut d = vec![0f32; c * len];
            lrn.denominators(xs, hw, c, len, &mut d);
            // d becomes d^(−β); q_c = g_c a_c d_c^(−β−1).
            let mut q = vec![0f32; c * len];
            for ch in 0..c {
                let (xr, gr) = (&xs[ch * hw..][..len], &gs[ch * hw..][..len]);
                for (((dv, qv), &a), &gv) in
                    d[ch * len..][..len].iter_mut().zip(&mut q[ch * len..]).zip(xr).zip(gr)
                {
                    let p = lrn.inv_pow(*dv);
                    *qv = gv * a * p / *dv;
                    *dv = p;
                }
            }
            let mut sum = vec![0f32; len];
            for (j, out) in runs.iter_mut().enumerate() {
                // The channels c whose window holds j: j − ⌊(n−1)/2⌋ ..= j + ⌊n/2⌋.
                let (lo, hi) = (j.saturating_sub((lrn.size - 1) / 2), (j + lrn.size / 2 + 1).min(c));
                sum.fill(0.0);
                for ch in lo..hi {
                    sum.iter_mut().zip(&q[ch * len..][..len]).for_each(|(s, v)| *s += v);
                }
                let (xr, gr, dr) = (&xs[j * hw..][..len], &gs[j * hw..][..len], &d[j * len..][..len]);
                for ((((o, &s), &a), &gv), &p) in out.iter_mut().zip(&sum).zip(xr).zip(gr).zip(dr) {
                    *o = gv * p - coef * a * s;
                }
            }
        });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}
