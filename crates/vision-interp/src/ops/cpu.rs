//! CPU kernels with hand-written backward passes, as Candle custom operations: depthwise
//! convolution and ReLU6.
//!
//! Candle's `conv2d(groups = C)` runs C separate convolutions joined by `cat`, and the
//! shifted-view formulation in [`super::depthwise_conv2d_taps`] allocates a full-size gradient
//! per filter tap in the backward pass. Depthwise filters are tiny, so direct loops over each
//! channel plane (in parallel with rayon) are the fast way on a CPU.
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("depthwise conv: {what} must be f32"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("depthwise conv: {what} must be contiguous"),
    }
}

/// Geometry of one call: input `(n, c, h, w)`, filter `k × k`, stride `s`, output `oh × ow`.
#[derive(Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(x: &Shape, k: usize, s: usize) -> Result<Self> {
        let (n, c, h, w) = x.dims4()?;
        if h < k || w < k {
            candle_core::bail!("depthwise conv: input {h}×{w} smaller than the {k}×{k} filter");
        }
        Ok(Self { n, c, h, w, k, s, oh: (h - k) / s + 1, ow: (w - k) / s + 1 })
    }
}

/// `out[t] += a · x[t·stride]` for every `t` of `out`.
fn axpy_strided(out: &mut [f32], a: f32, x: &[f32], stride: usize) {
    if stride == 1 {
        for (o, &v) in out.iter_mut().zip(x) {
            *o += a * v;
        }
    } else {
        for (t, o) in out.iter_mut().enumerate() {
            *o += a * x[t * stride];
        }
    }
}

/// y = depthwise(x, w): arguments `(x (N,C,H,W), w (C,1,k,k))`.
pub struct DepthwiseConv2d {
    pub stride: usize,
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
        let k = l2.shape().dims4()?.2;
        let g = Geom::new(l1.shape(), k, self.stride)?;
        let (x, wt) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "weight")?);
        let mut y = vec![0f32; g.n * g.c * g.oh * g.ow];
        y.par_chunks_mut(g.oh * g.ow).enumerate().for_each(|(plane, out)| {
            let c = plane % g.c;
            let xp = &x[plane * g.h * g.w..(plane + 1) * g.h * g.w];
            let wc = &wt[c * k * k..(c + 1) * k * k];
            // Tap by tap, whole output rows at a time: with stride 1 each row update is a
            // contiguous multiply-add that the compiler vectorises.
            for (tap, &wv) in wc.iter().enumerate() {
                let (i, j) = (tap / k, tap % k);
                for oy in 0..g.oh {
                    let xrow = &xp[(oy * g.s + i) * g.w + j..];
                    let orow = &mut out[oy * g.ow..(oy + 1) * g.ow];
                    axpy_strided(orow, wv, xrow, g.s);
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((g.n, g.c, g.oh, g.ow))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (_, _, h, wd) = x.dims4()?;
        // Only what is needed: attribution differentiates through fixed weights.
        let gx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(w, &InputGrad { stride: self.stride, h, w: wd })?),
            false => None,
        };
        let gw = match w.track_op() {
            true => Some(x.apply_op2_no_bwd(&grad, &WeightGrad { stride: self.stride, k: w.dim(2)? })?),
            false => None,
        };
        Ok((gx, gw))
    }
}

/// ∂L/∂x from `(∂L/∂y, w)`.
struct InputGrad {
    stride: usize,
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
        let (h, w, s) = (self.h, self.w, self.stride);
        let (gy, wt) = (f32_slice(s1, l1, "gradient")?, f32_slice(s2, l2, "weight")?);
        let mut gx = vec![0f32; n * c * h * w];
        gx.par_chunks_mut(h * w).enumerate().for_each(|(plane, out)| {
            let ch = plane % c;
            let g = &gy[plane * oh * ow..(plane + 1) * oh * ow];
            let wc = &wt[ch * k * k..(ch + 1) * k * k];
            for (tap, &wv) in wc.iter().enumerate() {
                let (i, j) = (tap / k, tap % k);
                for oy in 0..oh {
                    let grow = &g[oy * ow..(oy + 1) * ow];
                    let orow = &mut out[(oy * s + i) * w + j..];
                    if s == 1 {
                        for (o, &gv) in orow[..ow].iter_mut().zip(grow) {
                            *o += wv * gv;
                        }
                    } else {
                        for (ox, &gv) in grow.iter().enumerate() {
                            orow[ox * s] += wv * gv;
                        }
                    }
                }
            }
        });
        Ok((CpuStorage::F32(gx), Shape::from((n, c, h, w))))
    }
}

/// ∂L/∂w from `(x, ∂L/∂y)`.
struct WeightGrad {
    stride: usize,
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
        let g = Geom::new(l1.shape(), self.k, self.stride)?;
        let (x, gy) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let k = g.k;
        let mut gw = vec![0f32; g.c * k * k];
        gw.par_chunks_mut(k * k).enumerate().for_each(|(ch, out)| {
            for b in 0..g.n {
                let plane = b * g.c + ch;
                let xp = &x[plane * g.h * g.w..(plane + 1) * g.h * g.w];
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

/// im2col for a convolution with stride `stride` and zeros `pad_top`/`pad_left` before the
/// image (and as many after it as the output size `oh × ow` needs): `(N, C, H, W)` →
/// `(C·k·k, N·oh·ow)`, so that the convolution of the whole batch is one matrix product with
/// the weights `(O, C·k·k)`. Its backward pass is col2im (the sum of the columns back into the
/// image). With `ones_row`, one more row of ones follows, so that a bias column appended to the
/// weights is added (and its gradient summed) inside the same matrix product.
#[derive(Debug, Clone, Copy)]
pub struct Im2Col {
    pub k: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
    pub ones_row: bool,
}

impl Im2Col {
    /// The shared loop of im2col and col2im, over one image plane `h × w`: for each tap of the
    /// filter and each output row, the run of output pixels whose input pixel lies inside the
    /// image. `visit(tap, o, i, len)` gets the first output index `o` (within `oh·ow`, the run
    /// is contiguous), the first input index `i` (within `h·w`, the run steps by `stride`) and
    /// the run length.
    fn plane_taps(&self, h: usize, w: usize, mut visit: impl FnMut(usize, usize, usize, usize)) {
        let (k, s) = (self.k, self.stride as isize);
        let (pt, pl) = (self.pad_top as isize, self.pad_left as isize);
        for tap in 0..k * k {
            let (di, dj) = ((tap / k) as isize - pt, (tap % k) as isize - pl);
            // Output columns ox with 0 <= ox·s + dj < w.
            let x0 = if dj >= 0 { 0 } else { (-dj + s - 1) / s };
            let x1 =
                if (w as isize) > dj { ((w as isize - dj + s - 1) / s).min(self.ow as isize) } else { 0 };
            if x0 >= x1 {
                continue;
            }
            for oy in 0..self.oh {
                let y = oy as isize * s + di;
                if y < 0 || y >= h as isize {
                    continue;
                }
                let i = y as usize * w + (x0 * s + dj) as usize;
                visit(tap, oy * self.ow + x0 as usize, i, (x1 - x0) as usize);
            }
        }
    }
}

impl candle_core::CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "input")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let (k, st) = (self.k, self.stride);
        let hw = self.oh * self.ow;
        let rows_out = c * k * k + usize::from(self.ones_row);
        let mut cols = vec![0f32; rows_out * n * hw];
        if self.ones_row {
            cols[c * k * k * n * hw..].fill(1.0);
        }
        // Rows (c, tap) of all images; each worker fills the k·k rows of one channel.
        cols[..c * k * k * n * hw].par_chunks_mut(k * k * n * hw).enumerate().for_each(|(ch, rows)| {
            for b in 0..n {
                let xp = &x[(b * c + ch) * h * w..][..h * w];
                self.plane_taps(h, w, |tap, o, i, len| {
                    let dst = &mut rows[tap * n * hw + b * hw + o..][..len];
                    if st == 1 {
                        dst.copy_from_slice(&xp[i..i + len]);
                    } else {
                        for (t, d) in dst.iter_mut().enumerate() {
                            *d = xp[i + t * st];
                        }
                    }
                });
            }
        });
        Ok((CpuStorage::F32(cols), Shape::from((rows_out, n * hw))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        let op = Col2Im { cols: *self, n, c, h, w };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// col2im: `(C·k·k [+ 1], N·oh·ow)` → `(N, C, H, W)`, adding every column entry back to the
/// pixel it was copied from.
struct Col2Im {
    cols: Im2Col,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
}

impl candle_core::CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32_slice(s, l, "gradient")?;
        let Col2Im { cols, n, c, h, w } = *self;
        let (k, st) = (cols.k, cols.stride);
        let hw = cols.oh * cols.ow;
        let mut x = vec![0f32; n * c * h * w];
        x.par_chunks_mut(h * w).enumerate().for_each(|(plane, out)| {
            let (b, ch) = (plane / c, plane % c);
            let rows = &g[ch * k * k * n * hw..][..k * k * n * hw];
            cols.plane_taps(h, w, |tap, o, i, len| {
                let src = &rows[tap * n * hw + b * hw + o..][..len];
                if st == 1 {
                    for (d, s) in out[i..i + len].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    for (t, s) in src.iter().enumerate() {
                        out[i + t * st] += s;
                    }
                }
            });
        });
        Ok((CpuStorage::F32(x), Shape::from((n, c, h, w))))
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
        let per_plane = self.oh * self.ow;
        let mut y = vec![0f32; n * c * per_plane];
        let mut idx = vec![u32::MAX; n * c * per_plane];
        y.par_chunks_mut(per_plane).zip(idx.par_chunks_mut(per_plane)).enumerate().for_each(
            |(plane, (out, arg))| {
                let xp = &x[plane * h * w..(plane + 1) * h * w];
                for oy in 0..self.oh {
                    let (y0, y1) = self.span(oy, h);
                    for ox in 0..self.ow {
                        let (x0, x1) = self.span(ox, w);
                        let (mut best, mut at) = (f32::NEG_INFINITY, u32::MAX);
                        for yy in y0..y1 {
                            for xx in x0..x1 {
                                let v = xp[yy * w + xx];
                                if at == u32::MAX || v > best {
                                    (best, at) = (v, (yy * w + xx) as u32);
                                }
                            }
                        }
                        out[oy * self.ow + ox] = best;
                        arg[oy * self.ow + ox] = at;
                    }
                }
            },
        );
        *self.argmax.lock().expect("argmax lock") = idx;
        Ok((CpuStorage::F32(y), Shape::from((n, c, self.oh, self.ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = x.dims4()?;
        let op = MaxPoolGrad { plane: h * w, argmax: self.argmax.clone() };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?.reshape(x.shape())?))
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
        let grad = if self.relu6 { res.apply_op2_no_bwd(&grad, &Relu6Grad)? } else { grad };
        let db = match b.track_op() {
            true => Some(grad.apply_op1_no_bwd(&ChannelSum)?.reshape(b.shape())?),
            false => None,
        };
        Ok((Some(grad), db))
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

/// The matrix product `a · b` whose value `y` was computed beforehand (the forward pass only
/// copies it), with a backward pass that computes the gradient of an argument only when that
/// argument needs one. Candle's own matmul backward always computes both: for a convolution
/// of fixed weights, as in attribution and feature visualisation, half of that work is wasted.
/// Arguments: `(a, b, y)`.
pub struct LeanMatMul;

impl CustomOp3 for LeanMatMul {
    fn name(&self) -> &'static str {
        "lean-matmul"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        _s2: &CpuStorage,
        _l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((CpuStorage::F32(f32_slice(s3, l3, "product")?.to_vec()), l3.shape().clone()))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let ga = if a.track_op() { Some(grad.matmul(&b.t()?)?) } else { None };
        let gb = if b.track_op() { Some(a.t()?.matmul(grad)?) } else { None };
        Ok((ga, gb, None))
    }
}
