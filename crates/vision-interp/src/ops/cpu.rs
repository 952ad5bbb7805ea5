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
