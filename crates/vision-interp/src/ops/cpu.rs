//! CPU kernels with hand-written backward passes, as Candle custom operations: depthwise
//! convolution and ReLU6.
//!
//! Candle's `conv2d(groups = C)` runs C separate convolutions joined by `cat`, and the
//! shifted-view formulation in [`super::depthwise_conv2d_taps`] allocates a full-size gradient
//! per filter tap in the backward pass. Depthwise filters are tiny, so direct loops over each
//! channel plane (in parallel with rayon) are the fast way on a CPU.
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
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
            for oy in 0..g.oh {
                for ox in 0..g.ow {
                    let mut acc = 0f32;
                    for i in 0..k {
                        let row = &xp[(oy * g.s + i) * g.w + ox * g.s..];
                        for j in 0..k {
                            acc += row[j] * wc[i * k + j];
                        }
                    }
                    out[oy * g.ow + ox] = acc;
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
        let gx = grad.apply_op2_no_bwd(w, &InputGrad { stride: self.stride, h, w: wd })?;
        let gw = x.apply_op2_no_bwd(&grad, &WeightGrad { stride: self.stride, k: w.dim(2)? })?;
        Ok((Some(gx), Some(gw)))
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
            for oy in 0..oh {
                for ox in 0..ow {
                    let v = g[oy * ow + ox];
                    for i in 0..k {
                        let row = &mut out[(oy * s + i) * w + ox * s..];
                        for j in 0..k {
                            row[j] += v * wc[i * k + j];
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
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let v = gp[oy * g.ow + ox];
                        for i in 0..k {
                            let row = &xp[(oy * g.s + i) * g.w + ox * g.s..];
                            for j in 0..k {
                                out[i * k + j] += v * row[j];
                            }
                        }
                    }
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

/// im2col for a stride-1 convolution with `pad` zeros on every side: `(N, C, H, W)` →
/// `(C·k·k, N·oh·ow)`, so that the convolution of the whole batch is one matrix product with
/// the weights `(O, C·k·k)`. Its backward pass is col2im (the sum of the columns back into the
/// image).
pub struct Im2Col {
    pub k: usize,
    pub pad: usize,
}

/// Copies (or, with `add`, accumulates) between one image plane and its `k·k` column-matrix
/// rows: the shared loop of im2col and col2im. `rows(tap)` gives the `oh·ow` entries of tap
/// `tap` for this plane.
#[allow(clippy::too_many_arguments)]
fn plane_taps(
    k: usize,
    pad: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    mut visit: impl FnMut(usize, usize, usize),
) {
    let p = pad as isize;
    for tap in 0..k * k {
        let (di, dj) = ((tap / k) as isize - p, (tap % k) as isize - p);
        for oy in 0..oh {
            let y = oy as isize + di;
            if y < 0 || y >= h as isize {
                continue;
            }
            for ox in 0..ow {
                let x = ox as isize + dj;
                if x >= 0 && x < w as isize {
                    visit(tap, oy * ow + ox, y as usize * w + x as usize);
                }
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
        let k = self.k;
        let (oh, ow) = (h + 2 * self.pad + 1 - k, w + 2 * self.pad + 1 - k);
        let hw = oh * ow;
        let mut cols = vec![0f32; c * k * k * n * hw];
        // Rows (c, tap) of all images; each worker fills the k·k rows of one channel.
        cols.par_chunks_mut(k * k * n * hw).enumerate().for_each(|(ch, rows)| {
            for b in 0..n {
                let xp = &x[(b * c + ch) * h * w..][..h * w];
                plane_taps(k, self.pad, h, w, oh, ow, |tap, o, i| rows[tap * n * hw + b * hw + o] = xp[i]);
            }
        });
        Ok((CpuStorage::F32(cols), Shape::from((c * k * k, n * hw))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (n, c, h, w) = x.dims4()?;
        let op = Col2Im { k: self.k, pad: self.pad, n, c, h, w };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// col2im: `(C·k·k, N·oh·ow)` → `(N, C, H, W)`, adding every column entry back to the pixel it
/// was copied from.
struct Col2Im {
    k: usize,
    pad: usize,
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
        let Col2Im { k, pad, n, c, h, w } = *self;
        let (oh, ow) = (h + 2 * pad + 1 - k, w + 2 * pad + 1 - k);
        let hw = oh * ow;
        let mut x = vec![0f32; n * c * h * w];
        x.par_chunks_mut(h * w).enumerate().for_each(|(plane, out)| {
            let (b, ch) = (plane / c, plane % c);
            let rows = &g[ch * k * k * n * hw..][..k * k * n * hw];
            plane_taps(k, pad, h, w, oh, ow, |tap, o, i| out[i] += rows[tap * n * hw + b * hw + o]);
        });
        Ok((CpuStorage::F32(x), Shape::from((n, c, h, w))))
    }
}

/// Max pooling on the CPU: window `k`, stride `s`, `pad` (−∞) on the top and left; the output
/// size `oh × ow` is given (see [`super::pool_output_size`]). The backward pass sends each
/// output's gradient to the first maximum of its window, as PyTorch does.
pub struct MaxPool {
    pub k: usize,
    pub s: usize,
    pub pad: usize,
    pub oh: usize,
    pub ow: usize,
}

impl MaxPool {
    /// Index (within the plane) of the first maximum of output `(oy, ox)`'s window, if any.
    fn argmax(&self, xp: &[f32], h: usize, w: usize, oy: usize, ox: usize) -> Option<usize> {
        let mut best: Option<(usize, f32)> = None;
        for i in 0..self.k {
            let y = (oy * self.s + i).checked_sub(self.pad).filter(|&y| y < h);
            let Some(y) = y else { continue };
            for j in 0..self.k {
                let Some(x) = (ox * self.s + j).checked_sub(self.pad).filter(|&x| x < w) else { continue };
                let v = xp[y * w + x];
                if best.is_none_or(|(_, b)| v > b) {
                    best = Some((y * w + x, v));
                }
            }
        }
        best.map(|(i, _)| i)
    }
}

impl candle_core::CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "max-pool2d"
    }

    fn cpu_fwd(&self, st: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(st, l, "input")?;
        let (n, c, h, w) = l.shape().dims4()?;
        let mut y = vec![0f32; n * c * self.oh * self.ow];
        y.par_chunks_mut(self.oh * self.ow).enumerate().for_each(|(plane, out)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            for oy in 0..self.oh {
                for ox in 0..self.ow {
                    out[oy * self.ow + ox] =
                        self.argmax(xp, h, w, oy, ox).map_or(f32::NEG_INFINITY, |i| xp[i]);
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, c, self.oh, self.ow))))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let pool = MaxPool { ..*self };
        Ok(Some(x.apply_op2_no_bwd(&grad.contiguous()?, &MaxPoolGrad(pool))?))
    }
}

/// `∂L/∂x` of [`MaxPool`] from `(x, ∂L/∂y)`.
struct MaxPoolGrad(MaxPool);

impl CustomOp2 for MaxPoolGrad {
    fn name(&self) -> &'static str {
        "max-pool2d-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, g) = (f32_slice(s1, l1, "input")?, f32_slice(s2, l2, "gradient")?);
        let (n, c, h, w) = l1.shape().dims4()?;
        let p = &self.0;
        let mut gx = vec![0f32; n * c * h * w];
        gx.par_chunks_mut(h * w).enumerate().for_each(|(plane, out)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            let gp = &g[plane * p.oh * p.ow..(plane + 1) * p.oh * p.ow];
            for oy in 0..p.oh {
                for ox in 0..p.ow {
                    if let Some(i) = p.argmax(xp, h, w, oy, ox) {
                        out[i] += gp[oy * p.ow + ox];
                    }
                }
            }
        });
        Ok((CpuStorage::F32(gx), l1.shape().clone()))
    }
}
