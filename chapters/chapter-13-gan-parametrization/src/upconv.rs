//! Lucent's `upconvGAN` (`lucent.optvis.param.gan`): the DeePSiM generators of Dosovitskiy and
//! Brox (2016), trained to invert AlexNet's `fc6`, `fc7`, `fc8` or `pool5` features, as Binxu
//! Wang converted them from Caffe. Same layers, same state-dict names, same output:
//!
//! - `fc6`, `fc7`: `defc7`, `defc6`, `defc5` (4096 → 4096 linear layers), a view as
//!   `(256, 4, 4)`; `fc8` is the same from a 1000-d code;
//! - `pool5`: from a `(256, 6, 6)` code, `Rconv6`, `Rconv7` (3×3, padding 1) and `Rconv8`
//!   (3×3, no padding) to `(512, 4, 4)`;
//! - then transposed convolutions `deconv5` (4×4, stride 2) `conv5_1` (3×3) `deconv4` `conv4_1`
//!   `deconv3` `conv3_1` `deconv2` `deconv1` `deconv0`, to 3 × 256 × 256;
//! - LeakyReLU(0.3) after every layer but `deconv0`; the output's channels are BGR and are
//!   flipped to RGB ([`UpconvGan::forward`]), and [`UpconvGan::visualize`] adds the Caffe
//!   mean `[123, 117, 104]` and maps `[0, 255]` to `[0, 1]`.
//!
//! No package registry ships the weights; Lucent downloads them from OneDrive
//! ([`UpconvArch::url`]). [`UpconvGan::load`] reads Lucent's `upconvGAN_<name>.pt` (a PyTorch
//! state dict, zip or legacy format) from `--generator-weights`, the book's cache or Torch's
//! checkpoint folder, where Lucent puts it.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};

use vision_interp::ops;
use vision_interp::weights::WeightStore;

/// Which DeePSiM generator: the AlexNet layer whose features it inverts.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpconvArch {
    /// 4096-d code (AlexNet's fc6); the one Lucent's notebook uses
    Fc6,
    /// 4096-d code (fc7)
    Fc7,
    /// 1000-d code (fc8, the logits)
    Fc8,
    /// (256, 6, 6) code (pool5)
    Pool5,
}

/// One layer of the generator.
enum Layer {
    Linear {
        w: Tensor,
        b: Tensor,
    },
    Conv {
        w: Tensor,
        b: Tensor,
        pad: usize,
    },
    Deconv {
        w: Tensor,
        b: Tensor,
        stride: usize,
        pad: usize,
    },
    /// `(B, 4096)` → `(B, 256, 4, 4)`.
    View,
}

impl UpconvArch {
    pub const ALL: [UpconvArch; 4] = [Self::Fc6, Self::Fc7, Self::Fc8, Self::Pool5];

    pub fn name(self) -> &'static str {
        match self {
            Self::Fc6 => "fc6",
            Self::Fc7 => "fc7",
            Self::Fc8 => "fc8",
            Self::Pool5 => "pool5",
        }
    }

    /// The shape of one code.
    pub fn code_shape(self) -> Vec<usize> {
        match self {
            Self::Fc6 | Self::Fc7 => vec![4096],
            Self::Fc8 => vec![1000],
            Self::Pool5 => vec![256, 6, 6],
        }
    }

    /// Lucent's download address of `upconvGAN_<name>.pt` (OneDrive; its notebook's recorded
    /// run got "403 Forbidden").
    pub fn url(self) -> &'static str {
        match self {
            Self::Fc6 => "https://onedrive.live.com/download?cid=9CFFF6BCB39F6829&resid=9CFFF6BCB39F6829%2145339&authkey=AC2rQMt7Obr0Ba4",
            Self::Fc7 => "https://onedrive.live.com/download?cid=9CFFF6BCB39F6829&resid=9CFFF6BCB39F6829%2145338&authkey=AJ0R-daUAVYjQIw",
            Self::Fc8 => "https://onedrive.live.com/download?cid=9CFFF6BCB39F6829&resid=9CFFF6BCB39F6829%2145340&authkey=AKIfNk7s5MGrRkU",
            Self::Pool5 => "https://onedrive.live.com/download?cid=9CFFF6BCB39F6829&resid=9CFFF6BCB39F6829%2145337&authkey=AFaUAgeoIg0WtmA",
        }
    }

    /// The file name Lucent gives the weights.
    pub fn file_name(self) -> String {
        format!("upconvGAN_{}.pt", self.name())
    }

    /// The layers in order: `(name, kind, shape of the weight)`; kind `l` linear, `c`
    /// convolution (with its padding), `d` transposed convolution (stride, padding), `v` the view.
    fn plan(self) -> Vec<(&'static str, char, Vec<usize>, usize, usize)> {
        let mut plan = match self {
            Self::Pool5 => vec![
                ("Rconv6", 'c', vec![512, 256, 3, 3], 1, 1),
                ("Rconv7", 'c', vec![512, 512, 3, 3], 1, 1),
                ("Rconv8", 'c', vec![512, 512, 3, 3], 1, 0),
            ],
            _ => {
                let code = self.code_shape()[0];
                vec![
                    ("defc7", 'l', vec![4096, code], 0, 0),
                    ("defc6", 'l', vec![4096, 4096], 0, 0),
                    ("defc5", 'l', vec![4096, 4096], 0, 0),
                    ("reshape", 'v', vec![], 0, 0),
                ]
            }
        };
        let first = if self == Self::Pool5 { 512 } else { 256 };
        plan.extend([
            ("deconv5", 'd', vec![first, 256, 4, 4], 2, 1),
            ("conv5_1", 'd', vec![256, 512, 3, 3], 1, 1),
            ("deconv4", 'd', vec![512, 256, 4, 4], 2, 1),
            ("conv4_1", 'd', vec![256, 256, 3, 3], 1, 1),
            ("deconv3", 'd', vec![256, 128, 4, 4], 2, 1),
            ("conv3_1", 'd', vec![128, 128, 3, 3], 1, 1),
            ("deconv2", 'd', vec![128, 64, 4, 4], 2, 1),
            ("deconv1", 'd', vec![64, 32, 4, 4], 2, 1),
            ("deconv0", 'd', vec![32, 3, 4, 4], 2, 1),
        ]);
        plan
    }

    /// The state dict's tensors, names and shapes, as Lucent's `upconvGAN_<name>.pt` holds
    /// them (`ConvTranspose2d` weights are `(in, out, k, k)`).
    pub fn tensor_shapes(self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = Vec::new();
        for (name, kind, shape, _, _) in self.plan() {
            if kind != 'v' {
                let out = if kind == 'd' { shape[1] } else { shape[0] };
                shapes.push((format!("{name}.weight"), shape));
                shapes.push((format!("{name}.bias"), vec![out]));
            }
        }
        shapes
    }
}

/// A DeePSiM generator with its weights.
pub struct UpconvGan {
    arch: UpconvArch,
    layers: Vec<(&'static str, Layer)>,
}

/// The mean Caffe subtracted from its BGR inputs, in RGB order.
pub const RGB_MEAN: [f32; 3] = [123.0, 117.0, 104.0];

impl UpconvGan {
    /// Builds the generator from a state dict (names as Lucent's file has them; a leading
    /// `G.` is dropped, and `.1.` becomes `.` as Lucent's local loader does). A tensor missing
    /// or of the wrong shape is named with both shapes.
    pub fn from_store(arch: UpconvArch, store: &WeightStore) -> Result<Self> {
        let renamed: std::collections::HashMap<String, Tensor> = store
            .names()
            .filter_map(|n| {
                store.raw(n).map(|t| (n.strip_prefix("G.").unwrap_or(n).replace(".1.", "."), t.clone()))
            })
            .collect();
        let store =
            if renamed.is_empty() { store.clone() } else { WeightStore::from_tensors(store.path(), renamed) };
        let mut layers = Vec::new();
        for (name, kind, shape, stride, pad) in arch.plan() {
            if kind == 'v' {
                layers.push((name, Layer::View));
                continue;
            }
            let w = store.get(&format!("{name}.weight"), &shape)?;
            let out = if kind == 'd' { shape[1] } else { shape[0] };
            let b = store.get(&format!("{name}.bias"), &[out])?;
            layers.push((
                name,
                match kind {
                    'l' => Layer::Linear { w: w.t()?.contiguous()?, b },
                    'c' => Layer::Conv { w, b, pad },
                    _ => Layer::Deconv { w, b, stride, pad },
                },
            ));
        }
        Ok(Self { arch, layers })
    }

    /// Lucent's weights for `arch`, found by [`find_weights`].
    pub fn load(arch: UpconvArch, explicit: Option<&Path>, device: &Device) -> Result<Self> {
        let path = find_weights(arch, explicit)?;
        Self::from_store(arch, &WeightStore::load(&path, device)?)
    }

    pub fn arch(&self) -> UpconvArch {
        self.arch
    }

    // ANCHOR: upconv_forward
    /// The generator's raw output `(B, 3, 256, 256)`, channels flipped from BGR to RGB
    /// (Lucent's `forward`); `code` is `(B, 4096)`, `(B, 1000)` or `(B, 256, 6, 6)`.
    pub fn forward(&self, code: &Tensor) -> Result<Tensor> {
        let want = self.arch.code_shape();
        if code.rank() != want.len() + 1 || code.dims()[1..] != want[..] {
            bail!(
                "the {} generator takes codes of shape (batch, {}), not {:?}",
                self.arch.name(),
                want.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                code.dims()
            );
        }
        let mut x = code.clone();
        let last = self.layers.len() - 1;
        for (i, (_, layer)) in self.layers.iter().enumerate() {
            x = match layer {
                Layer::Linear { w, b } => x.matmul(w)?.broadcast_add(b)?,
                Layer::Conv { w, b, pad } => ops::conv2d_padded(&x, w, Some(b), 1, [*pad; 4])?,
                Layer::Deconv { w, b, stride, pad } => ops::conv_transpose2d(&x, w, Some(b), *stride, *pad)?,
                Layer::View => {
                    x = x.reshape((x.dim(0)?, 256, 4, 4))?;
                    continue;
                }
            };
            if i != last {
                x = ops::leaky_relu(&x, 0.3)?;
            }
        }
        let bgr_to_rgb = Tensor::new(&[2u32, 1, 0], x.device())?;
        Ok(x.index_select(&bgr_to_rgb, 1)?)
    }

    /// Images in [0, 1]: `clamp(forward(code) + [123, 117, 104], 0, 255) / 255` (Lucent's
    /// `visualize`; no gradient where the clamp is active).
    pub fn visualize(&self, code: &Tensor) -> Result<Tensor> {
        // ANCHOR: solution-visualize Return clamp(forward(code) + [123, 117, 104], 0, 255) / 255, the mean added per channel
        let mean = Tensor::new(&RGB_MEAN, code.device())?.reshape((1, 3, 1, 1))?;
        Ok((self.forward(code)?.broadcast_add(&mean)?.clamp(0f32, 255f32)? / 255.0)?)
        // ANCHOR_END: solution-visualize
    }
    // ANCHOR_END: upconv_forward
}

/// Whether `path` begins as a PyTorch state dict does: a zip archive, or the legacy format's
/// pickle (protocol 2).
fn is_pytorch_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok()
        && (head == *b"PK\x03\x04" || head[..2] == [0x80, 0x02])
}

/// Torch's checkpoint folder, where Lucent saves the weights it downloads:
/// `$TORCH_HOME/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints`.
fn torch_checkpoints() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    std::env::var_os("TORCH_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache").join("torch"))
        .join("hub")
        .join("checkpoints")
}

/// The weights file of `arch`: `explicit` (`--generator-weights`), else `upconvGAN_<name>.pt`
/// in the book's cache ([`vision_interp::weights::cache_dir`]) or Torch's checkpoint folder, else a
/// download of Lucent's address into the cache (skipped with `HF_HUB_OFFLINE=1`). When none
/// works, one error says what was tried and how to supply the file.
pub fn find_weights(arch: UpconvArch, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--generator-weights {}: no such file", p.display());
    }
    let file = arch.file_name();
    let cache = vision_interp::weights::cache_dir();
    let mut tried = Vec::new();
    for dir in [cache.clone(), torch_checkpoints()] {
        let candidate = dir.join(&file);
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(format!("{} (not there)", candidate.display()));
    }
    let remote =
        vision_interp::download::Remote { url: arch.url().into(), file_name: file.clone(), md5: None };
    match vision_interp::download::cached(&remote, &cache) {
        // OneDrive answers some requests with a web page: keep only a PyTorch file (a zip
        // archive, or the legacy format's pickle).
        Ok(p) if is_pytorch_file(&p) => return Ok(p),
        Ok(p) => {
            let _ = std::fs::remove_file(&p);
            tried.push("download of Lucent's address (the answer was not a PyTorch file)".into());
        }
        Err(e) => tried.push(format!("download of Lucent's address ({})", e.root_cause())),
    }
    bail!(
        "no weights for the DeePSiM {name} generator. Tried:\n  - {tried}\nNo package registry \
         ships them. Lucent downloads them from {url}; save that file as {dest} (or in Torch's \
         checkpoint folder) or pass --generator-weights PATH.",
        name = arch.name(),
        tried = tried.join("\n  - "),
        url = arch.url(),
        dest = cache.join(&file).display(),
    )
}
