//! The model zoo: one table from which `--model`'s accepted values and help, loading,
//! randomised copies, hash-built weights and the `layers` tool all derive.
//!
//! Adding a model is one file (its architecture, a [`ModelEntry`] and its [`Roles`](super::Roles)) and one
//! line in [`MODELS`]. The zoo's tests then check every role against the model's layers and
//! run each chapter's core path on it with hash-built weights.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};

use super::Model;
use crate::weights::{WeightSpec, WeightStore};

/// One model of the zoo.
pub struct ModelEntry {
    /// The name `--model` takes, used in captions and file names.
    pub name: &'static str,
    /// Other names `--model` accepts.
    pub aliases: &'static [&'static str],
    /// One line for `--help`.
    pub summary: &'static str,
    /// Where its trained weights come from.
    pub weights: WeightSpec,
    /// Renames a weights file's tensors to the names `build` reads, where files with other
    /// conventions exist (applied before randomisation, whose prefixes use those names).
    pub rename: Option<fn(WeightStore) -> Result<WeightStore>>,
    /// Builds the model from named tensors (a weights file's, or hash-built ones).
    pub build: fn(WeightStore) -> Result<Box<dyn Model>>,
    /// The weight-name prefixes of a layer's parameters: what the model-randomisation test
    /// re-draws when it randomises that layer.
    pub prefixes: fn(&str) -> Vec<String>,
}

// ANCHOR: models
/// Every model `--model` accepts, the offline default first.
pub static MODELS: &[&ModelEntry] = &[
    &super::mobile::ENTRY,
    &super::mobile::LITE1_ENTRY,
    &super::mobile::LITE2_ENTRY,
    &super::mobile::MOBILENET_V2_ENTRY,
    &super::inception_v1::ENTRY,
    &super::googlenet::ENTRY,
    &super::resnet::RESNET18_ENTRY,
    &super::resnet::RESNET50_ENTRY,
    &super::vgg::ENTRY,
];
// ANCHOR_END: models

/// The model `--model` uses when none is named.
pub const DEFAULT_MODEL: &str = "efficientnet-lite0";

/// The entry called `name` (or one of its aliases); an error lists the zoo.
pub fn entry(name: &str) -> Result<&'static ModelEntry> {
    MODELS.iter().copied().find(|e| e.name == name || e.aliases.contains(&name)).with_context(|| {
        let names: Vec<&str> = MODELS.iter().map(|e| e.name).collect();
        format!("unknown model `{name}`; the zoo has: {}", names.join(", "))
    })
}

/// Loads model `name` with its trained weights (see [`crate::weights::resolve`]).
pub fn load(name: &str, weights: Option<&Path>, device: &Device) -> Result<Box<dyn Model>> {
    entry(name)?.load(weights, device)
}

/// A copy of model `name` in which the convolution and linear weights of `layers` are re-drawn
/// at random (see [`WeightStore::randomized`]).
pub fn load_randomized(
    name: &str,
    weights: Option<&Path>,
    device: &Device,
    layers: &[&str],
    seed: u64,
) -> Result<Box<dyn Model>> {
    entry(name)?.load_randomized(weights, device, layers, seed)
}

impl ModelEntry {
    /// The trained weights, found by [`crate::weights::resolve`].
    pub fn store(&self, weights: Option<&Path>, device: &Device) -> Result<WeightStore> {
        let path = crate::weights::resolve(&self.weights, weights)?;
        let store = WeightStore::load(&path, device)?;
        match self.rename {
            Some(rename) => rename(store),
            None => Ok(store),
        }
    }

    /// The model with its trained weights.
    pub fn load(&self, weights: Option<&Path>, device: &Device) -> Result<Box<dyn Model>> {
        (self.build)(self.store(weights, device)?)
    }

    /// The model with the weights of `layers` re-drawn (BatchNorm statistics kept).
    pub fn load_randomized(
        &self,
        weights: Option<&Path>,
        device: &Device,
        layers: &[&str],
        seed: u64,
    ) -> Result<Box<dyn Model>> {
        let prefixes: Vec<String> = layers.iter().flat_map(|l| (self.prefixes)(l)).collect();
        let model = (self.build)(self.store(weights, device)?.randomized(&prefixes, seed)?)?;
        for layer in layers {
            model.layer(layer)?;
        }
        Ok(model)
    }

    /// The model with weights built from an integer hash (the parity fixtures' recipe): every
    /// architecture runs without a weights file, in tests and demonstrations. Its outputs mean
    /// nothing.
    pub fn hashed(&self, phase: u32, device: &Device) -> Result<Box<dyn Model>> {
        (self.build)(WeightStore::hashed(phase, device))
    }

    /// The hash-built weights as a state dict (names and shapes of the real one), to be saved
    /// as safetensors and loaded back through `--weights`.
    pub fn hash_weights(&self, phase: u32) -> Result<HashMap<String, Tensor>> {
        let store = WeightStore::hashed(phase, &Device::Cpu);
        (self.build)(store.clone())?;
        Ok(store.requested().into_iter().collect())
    }
}

/// `--model`'s values: every entry with its aliases and summary, for clap's parser and help.
pub fn model_value_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        MODELS.iter().map(|e| clap::builder::PossibleValue::new(e.name).aliases(e.aliases).help(e.summary)),
    )
}
