//! Training a classifier from scratch: Adam, cross-entropy, one evaluation per epoch, a
//! checkpoint after every epoch, and a guard against a diverging loss.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::models::{Model, SimpleCnn};
use crate::optim::Adam;

/// Hyper-parameters (the course: Adam, learning rate 1e-3, batch 32, no weight decay).
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Loss and accuracy (%) after one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_acc: f32,
    pub val_loss: f32,
    pub val_acc: f32,
}

/// Mean loss and accuracy (%) of `net` on `data` (evaluation mode).
pub fn evaluate(net: &SimpleCnn, data: &Dataset, batch: usize, device: &Device) -> Result<(f32, f32)> {
    let (mut loss, mut correct) = (0f64, 0f64);
    for idx in data.batches(batch, None) {
        let (x, y) = data.batch(&idx, device)?;
        let logits = net.forward_t(&net.preprocess(&x)?, false)?;
        loss += candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()? as f64 * idx.len() as f64;
        correct +=
            logits.argmax(D::Minus1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let n = data.len().max(1) as f64;
    Ok(((loss / n) as f32, (100.0 * correct / n) as f32))
}

/// One optimisation step on a batch of images `(B, 3, H, W)` in [0, 1] and labels `(B)`:
/// preprocessing, forward pass in training mode, cross-entropy, backward pass, Adam update.
/// Returns the loss and the logits; a loss that is not finite is an error and changes nothing.
pub fn train_step(net: &SimpleCnn, opt: &mut Adam, x: &Tensor, y: &Tensor) -> Result<(f32, Tensor)> {
    let logits = net.forward_t(&net.preprocess(x)?, true)?;
    let loss = candle_nn::loss::cross_entropy(&logits, y)?;
    let l = loss.to_scalar::<f32>()?;
    if !l.is_finite() {
        bail!("the loss became {l}: training diverged");
    }
    opt.backward_step(&loss)?;
    Ok((l, logits))
}

/// What a checkpoint's `.json` holds.
#[derive(Serialize, Deserialize)]
struct Progress {
    optimizer_step: usize,
    history: Vec<EpochStats>,
}

/// One trained network of a checkpoint: its variables, saved under `prefix` (with its
/// optimiser's state under `<prefix>adam.`); a GAN's checkpoint has two.
#[derive(Clone)]
pub(crate) struct Part<'a> {
    pub prefix: &'a str,
    pub varmap: &'a VarMap,
}

/// A checkpoint: the variables and optimiser states of `parts` (with the optimisers in the
/// same order), any `extra` tensors (`<stem>.safetensors`), and `progress` (`<stem>.json`),
/// each written to a temporary file and renamed, so that a kill never leaves a half-written
/// file. The `.json` is renamed last: it marks the checkpoint complete.
pub(crate) fn save_checkpoint(
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
pub(crate) fn read_checkpoint<P: serde::de::DeserializeOwned>(
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
pub(crate) fn restore(
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

/// Trains `net` (whose variables are `varmap`) and returns the per-epoch history. With a
/// `checkpoint` path, finished epochs found there are loaded and skipped, and each new epoch is
/// saved there; since every epoch's randomness comes from `(seed, epoch)`, a resumed run ends
/// with the same weights as one that was never interrupted.
pub fn train(
    net: &SimpleCnn,
    varmap: &mut VarMap,
    train: &Dataset,
    val: &Dataset,
    cfg: TrainConfig,
    device: &Device,
    checkpoint: Option<&Path>,
) -> Result<Vec<EpochStats>> {
    let mut opt = Adam::new(varmap, cfg.lr)?;
    let mut history: Vec<EpochStats> = Vec::new();
    if let Some(ckpt) = checkpoint.filter(|c| c.is_file() && c.with_extension("json").is_file()) {
        let part = Part { prefix: "", varmap };
        let read = read_checkpoint::<Progress>(ckpt, std::slice::from_ref(&part), device).and_then(|(t, p)| {
            let h = &p.history;
            if h.len() > cfg.epochs || h.iter().enumerate().any(|(i, e)| e.epoch != i + 1) {
                bail!(
                    "cannot resume from the checkpoint {}: its history ({} epochs) does not fit a run of {} epochs",
                    ckpt.display(),
                    h.len(),
                    cfg.epochs
                );
            }
            Ok((t, p))
        });
        match read {
            Ok((tensors, progress)) => {
                restore(&part, &mut opt, &tensors, progress.optimizer_step)?;
                history = progress.history;
                eprintln!("resumed from {} after epoch {}", ckpt.display(), history.len());
            }
            // Nothing in it can be used; it is replaced after the first epoch.
            Err(e) => eprintln!("warning: {e:#}; training from the start"),
        }
    }
    for epoch in history.len() + 1..=cfg.epochs {
        let mut rng = crate::rng::seeded(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        net.reseed_dropout(cfg.seed.wrapping_add(epoch as u64));
        let batches = train.batches(cfg.batch, Some(&mut rng));
        let pb = crate::progress::bar(batches.len() as u64, &format!("epoch {epoch}/{}", cfg.epochs));
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0f64, 0usize);
        for idx in &batches {
            let (x, y) = train.batch(idx, device)?;
            let x = train.augment(&x, &mut rng)?;
            let (l, logits) = train_step(net, &mut opt, &x, &y)
                .with_context(|| format!("epoch {epoch}: lower the learning rate (now {})", cfg.lr))?;
            loss_sum += l as f64 * idx.len() as f64;
            correct +=
                logits.argmax(D::Minus1)?.eq(&y)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
            seen += idx.len();
            pb.inc(1);
        }
        pb.finish_and_clear();
        let (val_loss, val_acc) = evaluate(net, val, 256, device)?;
        let stats = EpochStats {
            epoch,
            train_loss: (loss_sum / seen as f64) as f32,
            train_acc: (100.0 * correct / seen as f64) as f32,
            val_loss,
            val_acc,
        };
        eprintln!(
            "epoch {epoch}/{}: train loss {:.3}, accuracy {:.1} % | eval loss {:.3}, accuracy {:.1} %",
            cfg.epochs, stats.train_loss, stats.train_acc, stats.val_loss, stats.val_acc
        );
        history.push(stats);
        if let Some(ckpt) = checkpoint {
            let progress = Progress { optimizer_step: opt.step, history: history.clone() };
            save_checkpoint(&[(Part { prefix: "", varmap }, &opt)], Default::default(), &progress, ckpt)?;
        }
    }
    Ok(history)
}
