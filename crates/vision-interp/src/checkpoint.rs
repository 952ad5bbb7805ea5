//! Checkpoints of training runs (chapter 1's classifier, chapter 13's generator): networks'
//! variables with their optimisers' states, written atomically, read back whole and checked
//! before anything is changed.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::Serialize;

use crate::optim::Adam;

/// One trained network of a checkpoint: its variables, saved under `prefix` (with its
/// optimiser's state under `<prefix>adam.`); a GAN's checkpoint has two.
#[derive(Clone)]
pub struct Part<'a> {
    /// Prefix of its tensors' names in the checkpoint.
    pub prefix: &'a str,
    /// Its variables.
    pub varmap: &'a VarMap,
}

/// A checkpoint: the variables and optimiser states of `parts` (with the optimisers in the
/// same order), any `extra` tensors (`<stem>.safetensors`), and `progress` (`<stem>.json`),
/// each written to a temporary file and renamed, so that a kill never leaves a half-written
/// file. The `.json` is renamed last: it marks the checkpoint complete.
pub fn save_checkpoint(
    parts: &[(Part, &Adam)],
    extra: std::collections::HashMap<String, Tensor>,
    progress: &impl Serialize,
    weights: &Path,
) -> Result<()> {
    let mut tensors = extra;
    for (part, opt) in parts {
        for (name, t) in opt.state() {
            tensors.insert(format!("{}{name}", part.prefix), t);
        }
        for (name, var) in part.varmap.data().lock().expect("varmap lock").iter() {
            tensors.insert(format!("{}{name}", part.prefix), var.as_tensor().clone());
        }
    }
    crate::atomic::write_with(weights, |tmp| Ok(candle_core::safetensors::save(&tensors, tmp.path())?))?;
    crate::atomic::write_with(&weights.with_extension("json"), |tmp| {
        Ok(serde_json::to_writer_pretty(tmp.as_file(), progress)?)
    })
}

/// Reads a checkpoint and checks it whole against the run (every variable of `parts` and its
/// optimiser state present with the right shape) before anything is changed, so that a
/// corrupt or foreign checkpoint leaves the freshly initialised networks untouched.
pub fn read_checkpoint<P: serde::de::DeserializeOwned>(
    ckpt: &Path,
    parts: &[Part],
    device: &Device,
) -> Result<(std::collections::HashMap<String, Tensor>, P)> {
    let json = ckpt.with_extension("json");
    let context = || format!("cannot resume from the checkpoint {}", ckpt.display());
    let progress: P = std::fs::read(&json)
        .map_err(anyhow::Error::from)
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
        .with_context(|| format!("{} is not a readable progress file", json.display()))
        .with_context(context)?;
    let tensors = candle_core::safetensors::load(ckpt, device).with_context(context)?;
    for part in parts {
        for (name, var) in part.varmap.data().lock().expect("varmap lock").iter() {
            let trained = !name.contains("running_");
            let p = part.prefix;
            let names = [format!("{p}{name}"), format!("{p}adam.m.{name}"), format!("{p}adam.v.{name}")];
            for key in names.iter().take(if trained { 3 } else { 1 }) {
                let t = tensors.get(key).with_context(|| format!("{}: no tensor `{key}`", context()))?;
                if t.dims() != var.dims() {
                    bail!("{}: `{key}` has shape {:?}, the model {:?}", context(), t.dims(), var.dims());
                }
            }
        }
    }
    Ok((tensors, progress))
}

/// Sets the variables of `part` and the state of its optimiser from checked checkpoint
/// `tensors` ([`read_checkpoint`]).
pub fn restore(
    part: &Part,
    opt: &mut Adam,
    tensors: &std::collections::HashMap<String, Tensor>,
    step: usize,
) -> Result<()> {
    for (name, var) in part.varmap.data().lock().expect("varmap lock").iter() {
        var.set(&tensors[&format!("{}{name}", part.prefix)])?;
    }
    let own: std::collections::HashMap<String, Tensor> = tensors
        .iter()
        .filter_map(|(k, t)| k.strip_prefix(part.prefix).map(|k| (k.to_owned(), t.clone())))
        .collect();
    opt.load_state(&own, step)
}
