//! Image parametrisations: what the optimiser changes, and how an image is made from it.
//!
//! - **pixel**: the image's values themselves (before the colour transform);
//! - **FFT** (Lucid/Lucent's default): a spectrum scaled by `1/max(f, 1/max(h, w))` (a 1/f
//!   spectrum, as natural images have), turned into an image by an orthonormal inverse real
//!   FFT written as four constant matrix products (Candle has no FFT), divided by 4;
//! - **CPPN**: a small network from pixel coordinates to colour, whose weights are optimised
//!   (see [`super::cppn`]);
//! - **low-resolution shared tensors** ([`ImageParam::with_lowres`]): coarse images
//!   interpolated up (over the batch too) and added, so that a batch shares structure;
//! - **phase only** (Faccent's `fourier_phase`, Fel et al.'s MaCo): the spectrum's magnitude
//!   is held fixed and only its phase is optimised;
//! - **decorrelated colour**: three channels mixed by Lucid's square root of ImageNet's colour
//!   covariance; then a sigmoid to valid RGB in (0, 1).
//!
//! [`ImageParam::from_image`] starts any of pixel, FFT and phase at a given image (Faccent's
//! `img_to_params`: the exact inverse of the map to pixels), for feature accentuation.
use std::f64::consts::PI;

use anyhow::Result;
use candle_core::{Device, Tensor, Var};
use rand::rngs::StdRng;

// ANCHOR: color
/// Lucid's and Lucent's colour matrix: `color_correlation_svd_sqrt`, a square root of
/// ImageNet's colour correlation matrix (by SVD), `[[0.26, 0.09, 0.02], [0.27, 0.00, −0.05],
/// [0.27, −0.09, 0.03]]`, divided by its largest column norm (the first column's, 0.462), so
/// that its largest column has norm 1. Applied per pixel: `rgb = N · v`.
pub const COLOR_CORRELATION: [[f32; 3]; 3] = [
    [0.562_828_6, 0.194_825_28, 0.043_294_51],
    [0.584_475_8, 0.0, -0.108_236_26],
    [0.584_475_8, -0.194_825_28, 0.064_941_76],
];
// ANCHOR_END: color

/// How the image is parametrised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Pixel,
    Fft,
    /// The phase of an FFT spectrum whose magnitude is fixed: only from an image
    /// ([`ImageParam::from_image`]; Faccent's random start needs an ImageNet magnitude
    /// spectrum that the book does not ship).
    Phase,
    /// A CPPN with `layers` 1×1 convolutions of `hidden` channels (Lucent: 8 and 24); one image,
    /// no colour decorrelation (the network's own sigmoid makes valid RGB). Optimise it with a
    /// learning rate about ten times lower than an image's (Lucent's notebooks: 0.005).
    Cppn {
        hidden: usize,
        layers: usize,
    },
}

/// A low-resolution tensor `(batch, 3, height, width)` that is interpolated (bilinear, aligned
/// corners, over the batch axis too) to the full image size and added before the colour
/// transform: Lucent's `lowres_tensor`. With `batch = 1` every image of the batch shares it;
/// with 2 it blends from the first image to the last. `offset` `(down, right)` shifts the
/// result with reflected borders, as Lucent's `offset` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowRes {
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub offset: (usize, usize),
}

impl LowRes {
    /// A `size × size` tensor shared by the whole batch, not shifted.
    pub fn shared(size: usize) -> Self {
        Self { batch: 1, height: size, width: size, offset: (0, 0) }
    }

    /// Lucent's `offset=True` on both axes: half the upsampling factor.
    pub fn half_offset(self, height: usize, width: usize) -> Self {
        Self { offset: (height / self.height / 2, width / self.width / 2), ..self }
    }
}

/// The constant maps of a [`LowRes`] tensor to the full batch.
struct LowResMap {
    var: Var,
    /// Interpolation over the batch axis `(B, batch)`.
    batch: Tensor,
    /// Source row of every output row, and source column of every output column.
    shift: Option<(Rows, Rows)>,
}

/// For each output index, the source index (`None`: zero).
type Rows = Vec<Option<u32>>;

/// The constant matrices of the inverse real FFT, and the spectrum scale.
struct Fourier {
    scale: Tensor,
    ch: Tensor,
    sh: Tensor,
    cw: Tensor,
    sw: Tensor,
}

// ANCHOR: parametrisation
/// What the render loop optimises: named variables, and the batch of images `(B, 3, H, W)` in
/// [0, 1] they make. [`ImageParam`] (pixels, spectra, CPPNs) is one; a generator's code is
/// another (chapter 13's `GanParam`).
pub trait Parametrisation {
    /// The variables the optimiser changes, named.
    fn vars(&self) -> Vec<(String, Var)>;
    /// The images, as a differentiable function of the variables.
    fn image(&self) -> Result<Tensor>;
    /// How many images at the end of the batch are constants (a photo beside the optimised
    /// images, [`ImageParam::with_fixed`]).
    fn fixed_len(&self) -> usize {
        0
    }
}
// ANCHOR_END: parametrisation

impl Parametrisation for ImageParam {
    fn vars(&self) -> Vec<(String, Var)> {
        ImageParam::vars(self)
    }
    fn image(&self) -> Result<Tensor> {
        ImageParam::image(self)
    }
    fn fixed_len(&self) -> usize {
        ImageParam::fixed_len(self)
    }
}

/// A batch of images `(B, 3, H, W)` made from trainable variables.
pub struct ImageParam {
    pub space: Space,
    pub decorrelate: bool,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    vars: Vec<Var>,
    fourier: Option<Fourier>,
    cppn: Option<super::cppn::Cppn>,
    lowres: Vec<LowResMap>,
    color: Tensor,
    /// The values before the colour transform are divided by this (Lucent's FFT: 4; Faccent: 5
    /// for FFT and pixel, 1 for phase; Lucent's pixel: 1).
    desaturation: f64,
    /// The fixed magnitude of [`Space::Phase`], `(B, 3, H, W/2 + 1)`.
    magnitude: Option<Tensor>,
    /// Images in (0, 1) appended to the batch unchanged ([`ImageParam::with_fixed`]).
    fixed: Option<Tensor>,
}

/// `fftfreq(n)[k]`: `k/n` for `k < n/2`, `(k − n)/n` above (cycles per pixel).
fn fftfreq(k: usize, n: usize) -> f64 {
    let k = k as f64;
    let n_f = n as f64;
    if (k as usize) < n.div_ceil(2) {
        k / n_f
    } else {
        (k - n_f) / n_f
    }
}

/// What [`ImageParam::new`] builds; the default is Lucent's `param.image(128)`: one 128 × 128
/// image, FFT, decorrelated colour, initial standard deviation 0.01.
#[derive(Debug, Clone, Copy)]
pub struct ImageSpec {
    pub space: Space,
    pub decorrelate: bool,
    pub batch: usize,
    pub height: usize,
    pub width: usize,
    pub sd: f32,
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self { space: Space::Fft, decorrelate: true, batch: 1, height: 128, width: 128, sd: 0.01 }
    }
}

impl ImageSpec {
    /// A square `size` × `size` image, otherwise the defaults.
    pub fn square(size: usize) -> Self {
        Self { height: size, width: size, ..Self::default() }
    }
}

impl ImageParam {
    /// Lucent's `param.image(w, h, sd, batch, decorrelate, fft)`, values drawn from `rng`.
    pub fn new(spec: &ImageSpec, rng: &mut StdRng, device: &Device) -> Result<Self> {
        let ImageSpec { space, decorrelate, batch, height, width, sd } = *spec;
        let (mut vars, mut fourier, mut cppn) = (Vec::new(), None, None);
        match space {
            Space::Pixel => {
                let v = crate::rng::randn(rng, (batch, 3, height, width), 0.0, sd, device)?;
                vars.push(Var::from_tensor(&v)?);
            }
            Space::Fft => {
                let wf = width / 2 + 1;
                let re = crate::rng::randn(rng, (batch, 3, height, wf), 0.0, sd, device)?;
                let im = crate::rng::randn(rng, (batch, 3, height, wf), 0.0, sd, device)?;
                vars = vec![Var::from_tensor(&re)?, Var::from_tensor(&im)?];
                fourier = Some(fourier_of(height, width, device)?);
            }
            Space::Phase => {
                anyhow::bail!("a phase-only image is made from a seed image: use ImageParam::from_image")
            }
            Space::Cppn { hidden, layers } => {
                if batch != 1 {
                    anyhow::bail!("a CPPN parametrises one image (batch 1), not {batch}");
                }
                let net = super::cppn::Cppn::new(height, width, hidden, layers, rng, device)?;
                vars = net.vars().to_vec();
                cppn = Some(net);
            }
        }
        let color = Tensor::new(&COLOR_CORRELATION, device)?;
        let decorrelate = decorrelate && cppn.is_none();
        let desaturation = if space == Space::Fft { 4.0 } else { 1.0 };
        let lowres = Vec::new();
        Ok(Self {
            space,
            decorrelate,
            batch,
            height,
            width,
            vars,
            fourier,
            cppn,
            lowres,
            color,
            desaturation,
            magnitude: None,
            fixed: None,
        })
    }

    // ANCHOR: from_image
    /// An image parametrisation that starts exactly at `seed` `(1, 3, H, W)` in [0, 1]
    /// (Faccent's `img_to_params`): logit (the sigmoid's inverse, values clamped to
    /// [10⁻⁶, 1 − 10⁻⁶]), the colour correlation's inverse, times `desaturation`; then, for FFT,
    /// the orthonormal real FFT divided by the spectrum scale, and for phase, the FFT's phase
    /// (its magnitude is kept fixed).
    pub fn from_image(seed: &Tensor, space: Space, desaturation: f64) -> Result<Self> {
        let (b, c, height, width) = seed.dims4()?;
        anyhow::ensure!(b == 1 && c == 3, "a seed image is (1, 3, H, W), not {:?}", seed.dims());
        anyhow::ensure!(desaturation > 0.0, "the desaturation must be positive, not {desaturation}");
        let device = seed.device().clone();
        let color = Tensor::new(&COLOR_CORRELATION, &device)?;
        let mut p = Self {
            space,
            decorrelate: true,
            batch: 1,
            height,
            width,
            vars: Vec::new(),
            fourier: None,
            cppn: None,
            lowres: Vec::new(),
            color,
            desaturation,
            magnitude: None,
            fixed: None,
        };
        let v = p.unsigmoid(seed)?;
        p.vars = match space {
            Space::Pixel => vec![Var::from_tensor(&v)?],
            Space::Fft => {
                let f = fourier_of(height, width, &device)?;
                let (re, im) = rfft2_ortho(&v)?;
                let vars = vec![
                    Var::from_tensor(&re.broadcast_div(&f.scale)?)?,
                    Var::from_tensor(&im.broadcast_div(&f.scale)?)?,
                ];
                p.fourier = Some(f);
                vars
            }
            Space::Phase => {
                let (re, im) = rfft2_ortho(&v)?;
                p.magnitude = Some((re.sqr()? + im.sqr()?)?.sqrt()?);
                p.fourier = Some(fourier_of(height, width, &device)?);
                vec![Var::from_tensor(&atan2(&im, &re)?)?]
            }
            Space::Cppn { .. } => anyhow::bail!("a CPPN cannot start from an image"),
        };
        Ok(p)
    }
    // ANCHOR_END: from_image

    /// Moves the parameters so that the image becomes `img` `(1, 3, H, W)` (a projection step;
    /// a phase-only image keeps its magnitude, so only its phase follows `img`).
    pub fn set_image(&self, img: &Tensor) -> Result<()> {
        let v = self.unsigmoid(img)?;
        match (self.space, &self.fourier) {
            (Space::Pixel, _) => self.vars[0].set(&v)?,
            (Space::Fft, Some(f)) => {
                let (re, im) = rfft2_ortho(&v)?;
                self.vars[0].set(&re.broadcast_div(&f.scale)?)?;
                self.vars[1].set(&im.broadcast_div(&f.scale)?)?;
            }
            (Space::Phase, Some(_)) => {
                let (re, im) = rfft2_ortho(&v)?;
                self.vars[0].set(&atan2(&im, &re)?)?;
            }
            _ => anyhow::bail!("set_image: a {:?} image cannot be set from pixels", self.space),
        }
        Ok(())
    }

    /// The inverse of the colour transform and the sigmoid, times the desaturation.
    fn unsigmoid(&self, img: &Tensor) -> Result<Tensor> {
        let x = img.to_dtype(candle_core::DType::F32)?.clamp(1e-6f32, 1.0 - 1e-6)?;
        let logit = (x.log()? - x.affine(-1.0, 1.0)?.log()?)?;
        let (b, c, h, w) = logit.dims4()?;
        let v = if self.decorrelate {
            let inv = Tensor::new(&invert3(&COLOR_CORRELATION), img.device())?;
            inv.broadcast_matmul(&logit.reshape((b, c, h * w))?)?.reshape((b, c, h, w))?
        } else {
            logit
        };
        Ok((v * self.desaturation)?)
    }

    /// Adds low-resolution tensors (values drawn with standard deviation `sd`): Lucent's
    /// `lowres_tensor`, for batches whose images share structure.
    pub fn with_lowres(mut self, parts: &[LowRes], sd: f32, rng: &mut StdRng) -> Result<Self> {
        let device = self.color.device().clone();
        for p in parts {
            if p.batch == 0 || p.height == 0 || p.width == 0 || p.batch > self.batch {
                anyhow::bail!("low-resolution tensor {p:?} does not fit a batch of {} images", self.batch);
            }
            if p.offset.0 >= self.height || p.offset.1 >= self.width {
                anyhow::bail!(
                    "offset {:?} is larger than the {}×{} image",
                    p.offset,
                    self.height,
                    self.width
                );
            }
            let v = crate::rng::randn(rng, (p.batch, 3, p.height, p.width), 0.0, sd, &device)?;
            // Reflected shift: output row y reads row |y − down| (and likewise for columns).
            let reflect = |n: usize, by: usize| (0..n).map(|y| Some(y.abs_diff(by) as u32)).collect();
            let shift = match p.offset {
                (0, 0) => None,
                (down, right) => Some((reflect(self.height, down), reflect(self.width, right))),
            };
            self.lowres.push(LowResMap {
                var: Var::from_tensor(&v)?,
                batch: crate::ops::bilinear_matrix_aligned(self.batch, p.batch, &device)?,
                shift,
            });
        }
        Ok(self)
    }

    /// Appends `images` `(N, 3, H, W)` in [0, 1] to every batch [`ImageParam::image`] returns,
    /// as constants: Lucid's way of putting a photo beside the optimised image, so that both go
    /// through the same random transformations and one forward pass (feature inversion, style
    /// transfer). They are images `batch..batch + N` of the result.
    pub fn with_fixed(mut self, images: &Tensor) -> Result<Self> {
        let (_, c, h, w) = images.dims4()?;
        if (c, h, w) != (3, self.height, self.width) {
            anyhow::bail!(
                "fixed images of {c}×{h}×{w} do not fit a batch of 3×{}×{} images",
                self.height,
                self.width
            );
        }
        let images = images.to_device(self.color.device())?.to_dtype(self.color.dtype())?.detach();
        self.fixed = Some(match self.fixed.take() {
            None => images,
            Some(f) => Tensor::cat(&[&f, &images], 0)?,
        });
        Ok(self)
    }

    /// How many images at the end of the batch are constants ([`ImageParam::with_fixed`]).
    pub fn fixed_len(&self) -> usize {
        self.fixed.as_ref().map_or(0, |f| f.dims()[0])
    }

    /// The variables the optimiser changes, named.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let own = self.vars.iter().enumerate().map(|(i, v)| (format!("param{i}"), v.clone()));
        let low = self.lowres.iter().enumerate().map(|(i, l)| (format!("lowres{i}"), l.var.clone()));
        own.chain(low).collect()
    }

    // ANCHOR: image
    /// The values before the colour transform (and before the sigmoid): `(B, 3, H, W)`.
    pub fn raw(&self) -> Result<Tensor> {
        let mut v = match (&self.fourier, &self.cppn) {
            (Some(f), _) if self.space == Space::Phase => {
                let (mag, phase) =
                    (self.magnitude.as_ref().expect("phase magnitude"), self.vars[0].as_tensor());
                (f.irfft2(&(mag * phase.cos()?)?, &(mag * phase.sin()?)?)? / self.desaturation)?
            }
            (Some(f), _) => {
                let a = self.vars[0].as_tensor().broadcast_mul(&f.scale)?;
                let b = self.vars[1].as_tensor().broadcast_mul(&f.scale)?;
                (f.irfft2(&a, &b)? / self.desaturation)?
            }
            (None, Some(net)) => net.forward()?,
            (None, None) => (self.vars[0].as_tensor() / self.desaturation)?,
        };
        for l in &self.lowres {
            v = (v + l.upsampled(self.batch, self.height, self.width)?)?;
        }
        Ok(v)
    }

    /// The images in (0, 1): optional colour decorrelation, then a sigmoid.
    pub fn image(&self) -> Result<Tensor> {
        let v = self.to_rgb(&self.raw()?)?;
        Ok(match &self.fixed {
            None => v,
            Some(f) => Tensor::cat(&[&v, f], 0)?,
        })
    }

    /// Values before the colour transform `(N, 3, H, W)`, [`ImageParam::raw`]'s or a mix of
    /// them, as images in (0, 1): this parametrisation's colour decorrelation, then a sigmoid.
    pub fn to_rgb(&self, raw: &Tensor) -> Result<Tensor> {
        let v = if self.decorrelate {
            let (b, c, h, w) = raw.dims4()?;
            self.color.broadcast_matmul(&raw.reshape((b, c, h * w))?)?.reshape((b, c, h, w))?
        } else {
            raw.clone()
        };
        Ok(sigmoid(&v)?)
    }
    // ANCHOR_END: image
}

impl LowResMap {
    /// The tensor interpolated to `(batch, 3, H, W)` and shifted.
    fn upsampled(&self, batch: usize, height: usize, width: usize) -> Result<Tensor> {
        let t = self.var.as_tensor();
        let (b, c, h, w) = t.dims4()?;
        let t = self.batch.matmul(&t.reshape((b, c * h * w))?)?.reshape((batch, c, h, w))?;
        let t = crate::ops::resize_bilinear_aligned(&t, height, width)?;
        Ok(match &self.shift {
            None => t,
            Some((rows, cols)) => {
                crate::ops::select::select(&crate::ops::select::select(&t, rows, 2)?, cols, 3)?
            }
        })
    }
}

/// `1 / (1 + e^{−x})`, from operations whose gradients Candle computes.
pub fn sigmoid(x: &Tensor) -> candle_core::Result<Tensor> {
    (x.neg()?.exp()? + 1.0)?.recip()
}

// ANCHOR: irfft2
impl Fourier {
    /// Orthonormal inverse real 2-D FFT of the spectrum `re + i·im` `(…, H, W/2 + 1)`:
    /// the inverse complex DFT along H, then the real inverse along W (the imaginary parts
    /// of the zero and Nyquist columns are ignored, as in `torch.fft.irfftn`).
    fn irfft2(&self, re: &Tensor, im: &Tensor) -> Result<Tensor> {
        let yre = (self.ch.broadcast_matmul(re)? - self.sh.broadcast_matmul(im)?)?;
        let yim = (self.sh.broadcast_matmul(re)? + self.ch.broadcast_matmul(im)?)?;
        Ok((yre.broadcast_matmul(&self.cw)? - yim.broadcast_matmul(&self.sw)?)?)
    }
}
// ANCHOR_END: irfft2

/// The orthonormal real 2-D FFT of `x` `(…, H, W)`: `(re, im)`, each `(…, H, W/2 + 1)`, the
/// exact inverse of [`irfft2_ortho`] for real images (torch's `rfftn(norm="ortho")`).
pub fn rfft2_ortho(x: &Tensor) -> Result<(Tensor, Tensor)> {
    let dims = x.dims();
    let (h, w) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let f = fourier_of(h, w, x.device())?;
    let wf = w / 2 + 1;
    let (cw, sw) = dft_tables(w, wf, w, x.device())?;
    // Along W (e^{−iθ}): a = x·cos − i x·sin; then along H.
    let (are, aim) = (x.broadcast_matmul(&cw)?, x.broadcast_matmul(&sw)?.neg()?);
    let re = (f.ch.broadcast_matmul(&are)? + f.sh.broadcast_matmul(&aim)?)?;
    let im = (f.ch.broadcast_matmul(&aim)? - f.sh.broadcast_matmul(&are)?)?;
    Ok((re, im))
}

/// `cos(2π·r·c/n)/√n` and `sin(2π·r·c/n)/√n` for `r < rows`, `c < cols`: the orthonormal DFT's
/// real and imaginary parts as `(rows, cols)` matrices.
fn dft_tables(rows: usize, cols: usize, n: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let (mut c, mut s) = (vec![0f32; rows * cols], vec![0f32; rows * cols]);
    for r in 0..rows {
        for k in 0..cols {
            let t = 2.0 * PI * (r * k) as f64 / n as f64;
            c[r * cols + k] = (t.cos() / (n as f64).sqrt()) as f32;
            s[r * cols + k] = (t.sin() / (n as f64).sqrt()) as f32;
        }
    }
    Ok((Tensor::from_vec(c, (rows, cols), device)?, Tensor::from_vec(s, (rows, cols), device)?))
}

/// `atan2(y, x)` elementwise (Candle has none; computed on the host, no gradient).
fn atan2(y: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (ys, xs) = (y.flatten_all()?.to_vec1::<f32>()?, x.flatten_all()?.to_vec1::<f32>()?);
    let v: Vec<f32> = ys.iter().zip(&xs).map(|(a, b)| a.atan2(*b)).collect();
    Ok(Tensor::from_vec(v, y.shape(), y.device())?)
}

/// The inverse of a 3 × 3 matrix (by cofactors).
fn invert3(m: &[[f32; 3]; 3]) -> [[f32; 3]; 3] {
    let m = m.map(|r| r.map(f64::from));
    let cof = |r: usize, c: usize| {
        let (r1, r2, c1, c2) = ((r + 1) % 3, (r + 2) % 3, (c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cof(0, c)).sum();
    std::array::from_fn(|r| std::array::from_fn(|c| (cof(c, r) / det) as f32))
}

/// [`Fourier::irfft2`] for an `h × w` image (exposed for tests and for readers).
pub fn irfft2_ortho(re: &Tensor, im: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    fourier_of(h, w, re.device())?.irfft2(re, im)
}

/// The spectrum scale `1 / max(f, 1/max(h, w))` (`h × (w/2 + 1)`), Lucent's 1/f decay.
pub fn spectrum_scale(h: usize, w: usize, device: &Device) -> Result<Tensor> {
    Ok(fourier_of(h, w, device)?.scale)
}

// ANCHOR: spectrum_scale
/// `1 / max(f, 1/max(h, w))` for every frequency of an `h × (w/2 + 1)` real spectrum, row by
/// row, `f` being the frequency's magnitude in cycles per pixel.
fn scale_values(h: usize, w: usize) -> Vec<f32> {
    let wf = w / 2 + 1;
    let floor = 1.0 / h.max(w) as f64;
    let mut scale = vec![0f32; h * wf];
    // ANCHOR: solution-spectrum-scale Fill `scale[y·wf + x]` with 1 / max(f, 1/max(h, w)), f = √(fftfreq(y, h)² + fftfreq(x, w)²)
    for y in 0..h {
        for x in 0..wf {
            let f = (fftfreq(y, h).powi(2) + fftfreq(x, w).powi(2)).sqrt();
            scale[y * wf + x] = (1.0 / f.max(floor)) as f32;
        }
    }
    // ANCHOR_END: solution-spectrum-scale
    scale
}
// ANCHOR_END: spectrum_scale

fn fourier_of(h: usize, w: usize, device: &Device) -> Result<Fourier> {
    let wf = w / 2 + 1;
    let scale = scale_values(h, w);
    let (ch, sh) = dft_tables(h, h, h, device)?;
    let (mut cw, mut sw) = (vec![0f32; wf * w], vec![0f32; wf * w]);
    for k in 0..wf {
        let c = if k == 0 || (w.is_multiple_of(2) && k == w / 2) { 1.0 } else { 2.0 };
        for x in 0..w {
            let t = 2.0 * PI * (k * x) as f64 / w as f64;
            cw[k * w + x] = (c * t.cos() / (w as f64).sqrt()) as f32;
            sw[k * w + x] = (c * t.sin() / (w as f64).sqrt()) as f32;
        }
    }
    Ok(Fourier {
        scale: Tensor::from_vec(scale, (h, wf), device)?,
        ch,
        sh,
        cw: Tensor::from_vec(cw, (wf, w), device)?,
        sw: Tensor::from_vec(sw, (wf, w), device)?,
    })
}
