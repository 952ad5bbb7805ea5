//! One interface for every model in the book.
//!
//! Candle has no forward hooks, and `backward()` keeps gradients only for `Var`s. So a model
//! runs *to a set of named layers* and returns their activations ([`Model::forward_taps`]);
//! and a *probe*, a zero `Var` added to a layer's output, makes `grads.get(probe)` the
//! gradient with respect to that activation (Grad-CAM, feature-visualisation objectives).
use std::collections::{BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use candle_core::{Module, Tensor, Var};

pub mod googlenet;
pub mod inception_v1;
pub mod mobile;
pub mod resnet;
pub mod simple_cnn;
pub mod vgg;
pub mod zoo;

/// Hash-built weights (a module of the zoo, which the weights finder uses too).
pub use crate::hash_init;
pub use inception_v1::InceptionV1;
pub use mobile::{EfficientNetLite0, MobileNet};
pub use simple_cnn::SimpleCnn;
pub use zoo::{entry, load, load_randomized, ModelEntry, MODELS};

/// A named layer: where activations can be read, probed and optimised.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub name: String,
    /// Channels (units) of the layer's output.
    pub channels: usize,
    /// Spatial size of the output for the model's default input size (1 × 1 for logits).
    pub height: usize,
    pub width: usize,
    pub description: String,
}

/// What to record during a forward pass, and where to add probes.
#[derive(Debug, Clone, Default)]
pub struct Taps {
    pub layers: Vec<String>,
    pub probes: Vec<String>,
}

impl Taps {
    /// Record these layers.
    pub fn layers<S: AsRef<str>>(names: &[S]) -> Self {
        Self { layers: names.iter().map(|s| s.as_ref().to_owned()).collect(), probes: Vec::new() }
    }

    /// Also add a zero `Var` to the output of `layer` (and record the layer).
    pub fn probe(mut self, layer: &str) -> Self {
        self.probes.push(layer.to_owned());
        self.layers.push(layer.to_owned());
        self
    }
}

/// Activations recorded by a forward pass, by layer name, and the probes that were added.
#[derive(Debug, Default)]
pub struct Activations {
    acts: HashMap<String, Tensor>,
    probes: HashMap<String, Var>,
}

impl Activations {
    /// Activations given by hand, `(layer, tensor)`: an objective evaluated on tensors that no
    /// model made (tests, and parity with Lucent's objectives).
    pub fn from_tensors(tensors: impl IntoIterator<Item = (String, Tensor)>) -> Self {
        Self { acts: tensors.into_iter().collect(), probes: HashMap::new() }
    }

    /// The activations of `self`'s images followed by `other`'s, layer by layer (the two
    /// forward passes must have recorded the same layers; `other` must have no probes).
    pub fn cat(mut self, other: Self) -> Result<Self> {
        anyhow::ensure!(other.probes.is_empty(), "activations with probes cannot be appended to others");
        for (layer, b) in other.acts {
            let a = self
                .acts
                .get(&layer)
                .with_context(|| format!("layer `{layer}` is recorded by one pass only"))?;
            let joined = Tensor::cat(&[a, &b], 0)?;
            self.acts.insert(layer, joined);
        }
        Ok(self)
    }

    pub fn get(&self, layer: &str) -> Result<&Tensor> {
        self.acts.get(layer).with_context(|| format!("layer `{layer}` was not recorded in this forward pass"))
    }

    /// The probe added at `layer`: the gradient of a loss with respect to it is the gradient
    /// with respect to the layer's activation.
    pub fn probe(&self, layer: &str) -> Result<&Var> {
        self.probes.get(layer).with_context(|| format!("no probe was added at layer `{layer}`"))
    }
}

/// What a model says about itself: its name, input size, named layers and class names.
#[derive(Debug, Clone)]
pub struct ModelCard {
    /// Short name used in captions and file names (`efficientnet-lite0`).
    pub name: String,
    /// The square input size the model was trained at.
    pub input_size: usize,
    /// Every named layer, in forward order; the last one is `logits`.
    pub layers: Vec<LayerInfo>,
    /// Class names, one per logit.
    pub classes: Vec<String>,
    /// The layers and units that the chapters use on this model.
    pub roles: &'static Roles,
}

// ANCHOR: roles
/// What a model is, by role rather than by layer name: a chapter says "the last convolution",
/// each model says which of its layers that is. Every name here is checked against the model's
/// layers by the zoo's tests. What one chapter wants of a model (its notebook's units, its style
/// layers) is not here but in that chapter's own table, a [`PerModel`].
#[derive(Debug)]
pub struct Roles {
    /// The unit a chapter studies first, `layer:unit` (chapter 3's parametrisation study).
    pub showcase_unit: &'static str,
    /// Layers from early to late for a walk through depth (chapter 3: one unit of each).
    pub depth: &'static [&'static str],
    /// Five layers from shallow to deep for Grad-CAM at several depths (chapter 2).
    pub cam_ladder: &'static [&'static str],
    /// The last convolutional layer: Grad-CAM's default.
    pub last_conv: &'static str,
    /// Layers from the logits down, randomised one more at a time in the model-randomisation
    /// test (Adebayo et al., 2018).
    pub cascade: &'static [&'static str],
    /// A direct connection `(from, to, unit of to)` whose weights say how units of `from` feed
    /// one unit of `to` (chapter 3's circuit), where the model has one. `from` should be a
    /// layer after a ReLU, so that its units are never negative and a negative weight means
    /// inhibition.
    pub circuit: Option<(&'static str, &'static str, usize)>,
}

impl Roles {
    /// No roles at all: the base of `Roles { showcase_unit: …, ..Roles::EMPTY }`.
    pub const EMPTY: Roles =
        Roles { showcase_unit: "", depth: &[], cam_ladder: &[], last_conv: "", cascade: &[], circuit: None };
}

/// What one chapter wants of each model of the zoo, a row per model by its name: chapter 4's
/// spectrum units, chapter 11's style layers. The chapter keeps the table in its own crate, and
/// a test of the chapter checks that its rows are the zoo's models ([`PerModel::check_rows`]) and
/// name real layers; a new chapter adds no field to the models.
#[derive(Debug)]
pub struct PerModel<T: 'static>(pub &'static [(&'static str, T)]);

impl<T> PerModel<T> {
    /// The row of `model`, if the table has one.
    pub fn get(&self, model: &str) -> Option<&'static T> {
        self.0.iter().find(|(name, _)| *name == model).map(|(_, row)| row)
    }

    /// The models the table has rows for, in its order.
    pub fn models(&self) -> impl Iterator<Item = &'static str> {
        self.0.iter().map(|(name, _)| *name)
    }

    /// Fails unless the table has one row for each model of the zoo, in the zoo's order.
    pub fn check_rows(&self) -> Result<()> {
        let rows: Vec<&str> = self.models().collect();
        let zoo: Vec<&str> = MODELS.iter().map(|e| e.name).collect();
        anyhow::ensure!(rows == zoo, "the table has rows for {rows:?}, the zoo's models are {zoo:?}");
        Ok(())
    }
}

impl<T> PerModel<Option<T>> {
    /// The choice made for `model`; `None` where the table chose nothing for it (the chapter
    /// falls back to its default) or has no row.
    pub fn chosen(&self, model: &str) -> Option<&'static T> {
        self.get(model).and_then(Option::as_ref)
    }
}
// ANCHOR_END: roles

/// A model of the book: named layers, preprocessing, class names.
pub trait Model {
    /// Name, input size, layers and classes.
    fn card(&self) -> &ModelCard;
    /// Short name used in captions and file names (`efficientnet-lite0`).
    fn name(&self) -> &str {
        &self.card().name
    }
    /// The square input size the model was trained at.
    fn input_size(&self) -> usize {
        self.card().input_size
    }
    /// Every named layer, in forward order; the last one is `logits`.
    fn layers(&self) -> &[LayerInfo] {
        &self.card().layers
    }
    /// Class names, one per logit.
    fn classes(&self) -> &[String] {
        &self.card().classes
    }
    /// `(N, 3, H, W)` RGB in [0, 1] → what the network's first layer expects.
    fn preprocess(&self, rgb01: &Tensor) -> Result<Tensor>;
    /// Runs the preprocessed input `x` as far as the deepest requested layer.
    fn forward_taps(&self, x: &Tensor, taps: &Taps) -> Result<Activations>;

    /// The weights `(units of to, units of from)` of a direct 1×1 connection between two
    /// layers (the circuits of Olah et al.: how much each unit of `from` excites each unit of
    /// `to`), where the model has one.
    fn connection(&self, from: &str, to: &str) -> Result<Tensor> {
        bail!("{}: no direct connection from `{from}` to `{to}` is known", self.name())
    }

    /// The first convolution's filters `(out, 3, k, k)` (BatchNorm folded in, where the
    /// model has one): what the network looks for in raw pixels. The zoo's tests check that
    /// every model of the zoo has one.
    fn first_conv(&self) -> Result<Tensor> {
        bail!("{}: its first convolution is not exposed", self.name())
    }

    // ANCHOR: pre_activation
    /// The layer that holds `layer`'s values before its activation function, where the model
    /// has one (`head_pre_relu` for Lite0's `head`, `conv2d0_pre_relu_conv` for InceptionV1's
    /// `conv2d0`): an objective there is not cut off where the activation is flat.
    fn pre_activation(&self, layer: &str) -> Option<&str> {
        let names = [format!("{layer}_pre_relu"), format!("{layer}_pre_relu_conv")];
        self.layers().iter().map(|l| l.name.as_str()).find(|n| names.iter().any(|m| m == n))
    }
    // ANCHOR_END: pre_activation

    /// Plain ReLUs (`false`) or redirected ones (`true`: [`crate::ops::redirected_relu`],
    /// [`crate::ops::redirected_relu6`]), whose backward pass lets a little gradient through
    /// where the unit is off, so that an objective behind a dead unit can start (Lucent's
    /// `redirected_relu`). Forward values are the same either way. InceptionV1 starts
    /// redirected, as Lucent's does; the mobile family starts plain. Returns the previous
    /// setting.
    fn set_redirected_relu(&self, on: bool) -> Result<bool> {
        let _ = on;
        bail!("{}: redirected ReLUs are not available for this model", self.name())
    }

    /// The index of a class given by name (`"tabby"`, case ignored; a unique prefix or word
    /// also matches) or by number; an error lists the candidates.
    fn class_index(&self, label: &str) -> Result<usize> {
        find_class(self.classes(), &self.card().name, label)
    }

    /// Logits of a batch of `(N, 3, H, W)` RGB images in [0, 1].
    fn logits(&self, rgb01: &Tensor) -> Result<Tensor> {
        let acts = self.forward_taps(&self.preprocess(rgb01)?, &Taps::layers(&["logits"]))?;
        Ok(acts.get("logits")?.clone())
    }

    /// The layer called `name`, or an error listing the layers that exist.
    fn layer(&self, name: &str) -> Result<&LayerInfo> {
        self.layers().iter().find(|l| l.name == name).with_context(|| {
            let names: Vec<&str> = self.layers().iter().map(|l| l.name.as_str()).collect();
            let close = closest(&names, name);
            let hint =
                if close.is_empty() { String::new() } else { format!(" (closest: {})", close.join(", ")) };
            format!("{} has no layer `{name}`{hint}; its layers are: {}", self.name(), names.join(", "))
        })
    }
}

/// The `layers` tool's table of a model: its roles, then every named layer with its units,
/// spatial size and description.
pub fn layer_table(m: &dyn Model) -> String {
    use std::fmt::Write;
    let roles = m.card().roles;
    let mut out = format!("{}: {} layers at {} px\n", m.name(), m.layers().len(), m.input_size());
    let circuit = roles.circuit.map_or("none".into(), |(from, to, unit)| format!("{from} → {to}:{unit}"));
    let _ = writeln!(
        out,
        "roles: showcase unit {}, last convolution {}, Grad-CAM ladder {}, circuit {circuit}",
        roles.showcase_unit,
        roles.last_conv,
        roles.cam_ladder.join(" "),
    );
    let _ = writeln!(out, "{:<40} {:>8} {:>9}  description", "layer", "units", "size");
    for l in m.layers() {
        let size = format!("{}×{}", l.height, l.width);
        let _ = writeln!(out, "{:<40} {:>8} {:>9}  {}", l.name, l.channels, size, l.description);
    }
    out
}

/// See [`Model::class_index`].
fn find_class(classes: &[String], model: &str, label: &str) -> Result<usize> {
    let lower = label.trim().to_lowercase();
    match lower.parse::<usize>() {
        Ok(i) if i < classes.len() => return Ok(i),
        Ok(i) => bail!("{model}: class {i} is out of range (0..{})", classes.len()),
        Err(_) => {}
    }
    // A class's full name, or its first name (`tiger` for "tiger, Panthera tigris", which
    // `tiger cat` and `tiger shark` only begin with).
    let exact: Vec<usize> = (0..classes.len())
        .filter(|&i| {
            let c = classes[i].to_lowercase();
            c == lower || c.split(',').next().is_some_and(|first| first.trim() == lower)
        })
        .collect();
    let loose: Vec<usize> = (0..classes.len())
        .filter(|&i| {
            let c = classes[i].to_lowercase();
            c.starts_with(&lower) || c.split([',', ' ']).any(|w| w == lower)
        })
        .collect();
    match (exact.as_slice(), loose.as_slice()) {
        ([i], _) | ([], [i]) => Ok(*i),
        ([], []) => {
            let names: Vec<&str> = classes.iter().map(String::as_str).collect();
            let close = closest(&names, &lower);
            let hint =
                if close.is_empty() { String::new() } else { format!(" (closest: {})", close.join("; ")) };
            bail!("{model} has no class `{label}`{hint}")
        }
        (_, many) => bail!(
            "`{label}` matches several classes of {model}: {}",
            many.iter().take(8).map(|&i| format!("{i} {}", classes[i])).collect::<Vec<_>>().join("; ")
        ),
    }
}

/// The layer names that share the longest prefix with `name` (at most eight, branch layers
/// left out when `name` has no `_`): the likely intended ones.
fn closest<'a>(names: &[&'a str], name: &str) -> Vec<&'a str> {
    let common = |a: &str| a.chars().zip(name.chars()).take_while(|(x, y)| x == y).count();
    let best = names.iter().map(|n| common(n)).max().unwrap_or(0);
    if best < 2 {
        return Vec::new();
    }
    names
        .iter()
        .filter(|n| common(n) == best && (name.contains('_') || !n.contains('_')))
        .take(8)
        .copied()
        .collect()
}

/// A unit written `layer:unit` (`stage4:17`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    pub layer: String,
    pub unit: usize,
}

impl Unit {
    /// `stage3:42` → `stage3-42`, for file names.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.layer, self.unit)
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.layer, self.unit)
    }
}

/// Parses `layer:unit` and checks it against the model's layers.
pub fn parse_unit(model: &dyn Model, spec: &str) -> Result<Unit> {
    let (layer, unit) = spec
        .rsplit_once(':')
        .with_context(|| format!("`{spec}` is not of the form layer:unit (e.g. stage4:17)"))?;
    let info = model.layer(layer)?;
    let unit: usize = unit.parse().with_context(|| format!("`{unit}` in `{spec}` is not a unit number"))?;
    if unit >= info.channels {
        bail!(
            "{}: layer `{layer}` has units 0..={} ({} channels); `{spec}` is out of range",
            model.name(),
            info.channels - 1,
            info.channels
        );
    }
    Ok(Unit { layer: layer.to_owned(), unit })
}

/// Records and probes activations for models whose named layers do not form a single chain
/// (branches, as in Inception): the model calls [`Recorder::see`] with every named output, and
/// may stop early once [`Recorder::done`].
pub struct Recorder<'a> {
    taps: &'a Taps,
    acts: Activations,
    pending: BTreeSet<&'a str>,
}

impl<'a> Recorder<'a> {
    /// Checks every requested layer against `model`'s layers (an unknown one is an error that
    /// lists them).
    pub fn new(model: &dyn Model, taps: &'a Taps) -> Result<Self> {
        let pending: BTreeSet<&str> = taps.layers.iter().chain(&taps.probes).map(String::as_str).collect();
        for name in &pending {
            model.layer(name)?;
        }
        Ok(Self { taps, acts: Activations::default(), pending })
    }

    /// Layer `name` produced `x`: adds a probe if one was asked for, records it if wanted, and
    /// returns what the next layers should see (`x`, plus the probe).
    pub fn see(&mut self, name: &str, x: Tensor) -> Result<Tensor> {
        let mut x = x;
        if self.taps.probes.iter().any(|p| p == name) {
            let probe = Var::zeros(x.shape(), x.dtype(), x.device())?;
            x = (x + probe.as_tensor())?;
            self.acts.probes.insert(name.to_owned(), probe);
        }
        if self.pending.remove(name) {
            self.acts.acts.insert(name.to_owned(), x.clone());
        }
        Ok(x)
    }

    /// Whether layer `name` is still to be recorded or probed (for an output that costs extra
    /// work to make).
    pub fn wants(&self, name: &str) -> bool {
        self.pending.contains(name) || self.taps.probes.iter().any(|p| p == name)
    }

    /// Whether every requested layer has been seen.
    pub fn done(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn finish(self) -> Activations {
        self.acts
    }
}

/// A convolution with its BatchNorm (evaluation mode) folded in, zero-padded by `k / 2` on every
/// side: ResNet's and GoogLeNet's building block.
pub(crate) struct FoldedConv {
    pub(crate) weight: Tensor,
    bias: Tensor,
    stride: usize,
    pad: usize,
}

impl FoldedConv {
    pub(crate) fn load(
        store: &crate::weights::WeightStore,
        conv: &str,
        bn: &str,
        shape: [usize; 4],
        stride: usize,
        eps: f64,
    ) -> Result<Self> {
        let (weight, bias) = store.conv_bn(conv, bn, &shape, eps)?;
        Ok(Self { weight, bias, stride, pad: shape[2] / 2 })
    }

    pub(crate) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(crate::ops::conv2d_padded(x, &self.weight, Some(&self.bias), self.stride, [self.pad; 4])?)
    }
}

/// A chain of named stages: the executor behind [`Model::forward_taps`] for models whose named
/// layers follow one another.
pub struct Sequential {
    stages: Vec<(String, Box<dyn Module + Send + Sync>)>,
}

impl Sequential {
    pub fn new() -> Self {
        Self { stages: Vec::new() }
    }

    pub fn push(&mut self, name: &str, stage: impl Module + Send + Sync + 'static) {
        self.stages.push((name.to_owned(), Box::new(stage)));
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|(n, _)| n.as_str())
    }

    // ANCHOR: sequential_run
    /// Runs the stages up to the deepest layer in `taps`, recording and probing as asked.
    pub fn run(&self, x: &Tensor, taps: &Taps) -> Result<Activations> {
        let wanted: BTreeSet<&str> = taps.layers.iter().chain(&taps.probes).map(String::as_str).collect();
        let mut last = 0;
        for name in &wanted {
            let i = self.stages.iter().position(|(n, _)| n == name).with_context(|| {
                format!("no layer `{name}`; the layers are: {}", self.names().collect::<Vec<_>>().join(", "))
            })?;
            last = last.max(i);
        }
        let mut acts = Activations::default();
        let mut x = x.clone();
        for (name, stage) in &self.stages[..=last] {
            x = stage.forward(&x)?;
            if taps.probes.iter().any(|p| p == name) {
                let probe = Var::zeros(x.shape(), x.dtype(), x.device())?;
                x = (x + probe.as_tensor())?;
                acts.probes.insert(name.clone(), probe);
            }
            if wanted.contains(name.as_str()) {
                acts.acts.insert(name.clone(), x.clone());
            }
        }
        Ok(acts)
    }
    // ANCHOR_END: sequential_run
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}
