//! Training a classifier from scratch: Adam, cross-entropy, one evaluation per epoch, a
//! checkpoint after every epoch, and a guard against a diverging loss.
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use vision_interp::checkpoint::{read_checkpoint, restore, save_checkpoint, Part};
use vision_interp::data::Dataset;
use vision_interp::models::{Model, SimpleCnn};
use vision_interp::optim::Adam;

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
        let mut rng =
            vision_interp::rng::seeded(cfg.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        net.reseed_dropout(cfg.seed.wrapping_add(epoch as u64));
        let batches = train.batches(cfg.batch, Some(&mut rng));
        let pb = vision_interp::progress::bar(batches.len() as u64, &format!("epoch {epoch}/{}", cfg.epochs));
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
