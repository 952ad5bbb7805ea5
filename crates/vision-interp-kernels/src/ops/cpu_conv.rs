//! Convolution on the CPU as one Candle custom operation: per image, im2col and a matrix
//! product forward; a matrix product and col2im for the input gradient; matrix products for
//! the weight gradient, each computed only when it is needed.
//!
//! One operation instead of a chain (im2col → matrix product → reshape → transpose) matters
//! because Candle's backward pass starts the gradient of every node in the graph as
//! `zeros + gradient`: a fresh zeroed tensor and an addition per node. The columns of a 3×3
//! convolution are nine times the size of its input, so that bookkeeping alone cost more than
//! a fifth of a feature-visualisation step. Here the graph holds one node per convolution,
//! the columns live only inside the kernels (one image at a time, so they stay small), and the
//! output is written straight into its `(N, O, oh, ow)` place.
//!
//! The matrix products call `gemm`, the crate behind Candle's own CPU matrix product.
use super::cpu::f32_slice;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Geometry of a convolution: filter `k × k`, `stride`, zeros `pad_top`/`pad_left` before the
/// image (and as many after it as the output size `oh × ow` needs).
#[derive(Debug, Clone, Copy)]
pub struct ConvGeom {
    pub k: usize,
    pub stride: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvGeom {
    /// A 1×1 convolution without stride or padding: its columns are the image itself.
    fn pointwise(&self, h: usize, w: usize) -> bool {
        self.k == 1
            && self.stride == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && (self.oh, self.ow) == (h, w)
    }

    /// The shared loop of im2col and col2im over one image plane `h × w`: for each tap of the
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

    /// im2col of one image `(C, H, W)` into `cols` `(C·k·k, oh·ow)` (zeros where the filter
    /// reaches into the padding); channels in parallel when `parallel`.
    fn im2col(&self, x: &[f32], (h, w): (usize, usize), cols: &mut [f32], parallel: bool) {
        let rows = self.k * self.k * self.oh * self.ow;
        let fill = |(ch, out): (usize, &mut [f32])| {
            out.fill(0.0);
            let plane = &x[ch * h * w..][..h * w];
            let hw = self.oh * self.ow;
            self.plane_taps(h, w, |tap, o, i, len| {
                let dst = &mut out[tap * hw + o..][..len];
                if self.stride == 1 {
                    dst.copy_from_slice(&plane[i..i + len]);
                } else {
                    for (t, d) in dst.iter_mut().enumerate() {
                        *d = plane[i + t * self.stride];
                    }
                }
            });
        };
        if parallel {
            cols.par_chunks_mut(rows).enumerate().for_each(fill);
        } else {
            cols.chunks_mut(rows).enumerate().for_each(fill);
        }
    }

    /// col2im of one image: adds every entry of `cols` `(C·k·k, oh·ow)` to the pixel of `x`
    /// `(C, H, W)` it was copied from.
    fn col2im(&self, cols: &[f32], (h, w): (usize, usize), x: &mut [f32], parallel: bool) {
        let rows = self.k * self.k * self.oh * self.ow;
        let add = |(ch, out): (usize, &mut [f32])| {
            let src_rows = &cols[ch * rows..][..rows];
            let hw = self.oh * self.ow;
            self.plane_taps(h, w, |tap, o, i, len| {
                let src = &src_rows[tap * hw + o..][..len];
                if self.stride == 1 {
                    for (d, s) in out[i..i + len].iter_mut().zip(src) {
                        *d += s;
                    }
                } else {
                    for (t, s) in src.iter().enumerate() {
                        out[i + t * self.stride] += s;
                    }
                }
            });
        };
        if parallel {
            x.par_chunks_mut(h * w).enumerate().for_each(add);
        } else {
            x.chunks_mut(h * w).enumerate().for_each(add);
        }
    }
}

/// A matrix in a slice: element `(i, j)` at `i·rs + j·cs`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols, rs: cols, cs: 1 }
    }

    fn t(self) -> Self {
        Self { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `dst = a · b` (or `dst += a · b` with `accumulate`), `dst` row-major `a.rows × b.cols`;
/// `threads` > 1 splits the product over that many rayon workers.
fn gemm_into(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) {
    assert!(a.cols == b.rows && a.in_bounds() && b.in_bounds(), "gemm: operands do not fit");
    assert_eq!(dst.len(), a.rows * b.cols, "gemm: destination size");
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the asserts above keep every index of `a`, `b` and `dst` inside its slice, and
    // `dst` is borrowed mutably, so it cannot overlap the operands.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// How to spread `n` images over the rayon workers: images in parallel when there are
/// several, with the workers left over given to each image's matrix product.
fn split(n: usize) -> (bool, usize) {
    let threads = rayon::current_num_threads();
    if n > 1 && threads > 1 {
        (true, threads.div_ceil(n).max(1))
    } else {
        (false, threads)
    }
}

/// Runs `f(image, out)` for each image's chunk of `out`, in parallel when [`split`] says so;
/// `f` gets the threads left for it and whether it may parallelise its own loops.
fn per_image(out: &mut [f32], n: usize, f: impl Fn(usize, &mut [f32], usize, bool) + Sync + Send) {
    let size = out.len() / n.max(1);
    let (across, threads) = split(n);
    if across {
        out.par_chunks_mut(size).enumerate().for_each(|(b, o)| f(b, o, threads, false));
    } else {
        out.chunks_mut(size).enumerate().for_each(|(b, o)| f(b, o, threads, true));
    }
}

/// Where a [`Conv2d`] adds its bias, and what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    /// The matrix product starts from the bias: `conv(x, w) + b`, a layer's own bias.
    First,
    /// The bias is added to the finished product, then ReLU6 where `relu6`: the numbers of
    /// the convolution, [`super::add_channel_bias`] and [`super::relu6`] one after the other
    /// (a BatchNorm folded into the convolution, as in the mobile networks), in one pass and
    /// one graph node instead of two or three.
    After { relu6: bool },
}

/// The convolution `y = conv(x, w) + b` (see [`Bias`]): arguments `x` `(N, C, H, W)`, `w`
/// `(O, C, k, k)` and `b` `(O)`; output `(N, O, oh, ow)`. The backward pass returns the
/// gradient of each argument that needs one.
#[derive(Debug, Clone, Copy)]
pub struct Conv2d {
    pub geom: ConvGeom,
    pub bias: Bias,
}

impl Conv2d {
    /// A convolution whose matrix product starts from its bias ([`Bias::First`]).
    pub fn new(geom: ConvGeom) -> Self {
        Self { geom, bias: Bias::First }
    }
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d-im2col"
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
        let g = self.geom;
        let x = f32_slice(s1, l1, "input")?;
        let wt = f32_slice(s2, l2, "weight")?;
        let bias = f32_slice(s3, l3, "bias")?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (o, wc, kh, kw) = l2.shape().dims4()?;
        if wc != c || kh != g.k || kw != g.k || bias.len() != o {
            candle_core::bail!(
                "conv2d: input with {c} channels, weight {:?}, bias of {} (expected ({o}, {c}, {k}, {k}) and {o})",
                l2.shape().dims(),
                bias.len(),
                k = g.k
            );
        }
        let (ck, hw) = (c * g.k * g.k, g.oh * g.ow);
        let weight = Mat::row_major(wt, o, ck);
        let mut y = vec![0f32; n * o * hw];
        per_image(&mut y, n, |b, out, threads, parallel| {
            if self.bias == Bias::First {
                for (row, &bv) in out.chunks_mut(hw).zip(bias) {
                    row.fill(bv);
                }
            }
            let xb = &x[b * c * h * w..][..c * h * w];
            if g.pointwise(h, w) {
                gemm_into(out, weight, Mat::row_major(xb, c, hw), true, threads);
            } else {
                let mut cols = vec![0f32; ck * hw];
                g.im2col(xb, (h, w), &mut cols, parallel);
                gemm_into(out, weight, Mat::row_major(&cols, ck, hw), true, threads);
            }
            if let Bias::After { relu6 } = self.bias {
                for (row, &bv) in out.chunks_mut(hw).zip(bias) {
                    super::cpu::add_bias(row, bv, relu6);
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((n, o, g.oh, g.ow))))
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
        let grad = match self.bias {
            Bias::After { relu6: true } => super::cpu::relu6_grad(res, &grad)?,
            _ => grad,
        };
        let (_, _, h, wd) = x.dims4()?;
        let dx = match x.track_op() {
            true => Some(grad.apply_op2_no_bwd(w, &InputGrad { geom: self.geom, h, w: wd })?),
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(grad.apply_op2_no_bwd(x, &WeightGrad(self.geom))?),
            false => None,
        };
        let db = super::cpu::bias_grad(b, &grad)?;
        Ok((dx, dw, db))
    }
}

/// The input gradient of [`Conv2d`]: arguments `(grad (N, O, oh, ow), w (O, C, k, k))`, output
/// `(N, C, h, w)`; per image `wᵀ · grad`, then col2im.
struct InputGrad {
    geom: ConvGeom,
    h: usize,
    w: usize,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "conv2d-input-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (g, (h, w)) = (self.geom, (self.h, self.w));
        let grad = f32_slice(s1, l1, "gradient")?;
        let wt = f32_slice(s2, l2, "weight")?;
        let (n, o, _, _) = l1.shape().dims4()?;
        let c = l2.shape().dims4()?.1;
        let (ck, hw) = (c * g.k * g.k, g.oh * g.ow);
        let weight_t = Mat::row_major(wt, o, ck).t();
        let mut dx = vec![0f32; n * c * h * w];
        per_image(&mut dx, n, |b, out, threads, parallel| {
            let gb = Mat::row_major(&grad[b * o * hw..][..o * hw], o, hw);
            if g.pointwise(h, w) {
                gemm_into(out, weight_t, gb, false, threads);
            } else {
                let mut cols = vec![0f32; ck * hw];
                gemm_into(&mut cols, weight_t, gb, false, threads);
                g.col2im(&cols, (h, w), out, parallel);
            }
        });
        Ok((CpuStorage::F32(dx), Shape::from((n, c, h, w))))
    }
}

/// The weight gradient of [`Conv2d`]: arguments `(grad (N, O, oh, ow), x (N, C, H, W))`,
/// output `(O, C, k, k)`: the sum over images of `grad · colsᵀ`.
struct WeightGrad(ConvGeom);

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let grad = f32_slice(s1, l1, "gradient")?;
        let x = f32_slice(s2, l2, "input")?;
        let (n, o, _, _) = l1.shape().dims4()?;
        let (_, c, h, w) = l2.shape().dims4()?;
        let (ck, hw) = (c * g.k * g.k, g.oh * g.ow);
        // Images in contiguous chunks, one per worker, each summed in order into its own
        // accumulator; the chunks are then added in order, so the result does not depend on
        // how rayon schedules them.
        let total = rayon::current_num_threads().max(1);
        let chunks = n.clamp(1, total);
        let (threads, parallel) = (total.div_ceil(chunks), chunks == 1);
        let per_chunk = n.div_ceil(chunks);
        let partial: Vec<Vec<f32>> = (0..chunks)
            .into_par_iter()
            .map(|chunk| {
                let mut acc = vec![0f32; o * ck];
                let mut cols = vec![0f32; if g.pointwise(h, w) { 0 } else { ck * hw }];
                for b in chunk * per_chunk..((chunk + 1) * per_chunk).min(n) {
                    let gb = Mat::row_major(&grad[b * o * hw..][..o * hw], o, hw);
                    let xb = &x[b * c * h * w..][..c * h * w];
                    let cols_b = if g.pointwise(h, w) {
                        Mat::row_major(xb, c, hw)
                    } else {
                        g.im2col(xb, (h, w), &mut cols, parallel);
                        Mat::row_major(&cols, ck, hw)
                    };
                    gemm_into(&mut acc, gb, cols_b.t(), true, threads);
                }
                acc
            })
            .collect();
        let mut dw = vec![0f32; o * ck];
        for p in &partial {
            dw.iter_mut().zip(p).for_each(|(s, v)| *s += v);
        }
        Ok((CpuStorage::F32(dw), Shape::from((o, c, g.k, g.k))))
    }
}

/// The transposed convolution `y = conv_transpose(x, w)`: arguments `x` `(N, C_in, h, w)` and
/// `w` `(C_in, C_out, k, k)`; output `(N, C_out, H, W)`. It is the input gradient of the
/// convolution from `(N, C_out, H, W)` to `(N, C_in, h, w)` with the same weight, stride and
/// padding (`geom` describes that convolution: its output is `h × w`), so the forward pass is
/// [`InputGrad`]'s matrix product and col2im, the input gradient is that convolution
/// ([`Conv2d`]), and the weight gradient is its [`WeightGrad`] with the roles of input and
/// gradient exchanged.
#[derive(Debug, Clone, Copy)]
pub struct ConvTranspose2d {
    pub geom: ConvGeom,
    /// The output's height and width.
    pub out: (usize, usize),
}

impl CustomOp2 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "conv-transpose2d-col2im"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = l1.shape().dims4()?;
        let (c_in, _, kh, kw) = l2.shape().dims4()?;
        if c != c_in || kh != self.geom.k || kw != self.geom.k || (h, w) != (self.geom.oh, self.geom.ow) {
            candle_core::bail!(
                "conv_transpose2d: input {:?}, weight {:?}, for a {}×{} filter from {}×{}",
                l1.shape().dims(),
                l2.shape().dims(),
                self.geom.k,
                self.geom.k,
                self.geom.oh,
                self.geom.ow
            );
        }
        InputGrad { geom: self.geom, h: self.out.0, w: self.out.1 }.cpu_fwd(s1, l1, s2, l2)
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dx = match x.track_op() {
            true => {
                let zeros = Tensor::zeros(w.dim(0)?, candle_core::DType::F32, w.device())?;
                Some(grad.apply_op3_no_bwd(w, &zeros, &Conv2d::new(self.geom))?)
            }
            false => None,
        };
        let dw = match w.track_op() {
            true => Some(x.contiguous()?.apply_op2_no_bwd(&grad, &WeightGrad(self.geom))?),
            false => None,
        };
        Ok((dx, dw))
    }
}
