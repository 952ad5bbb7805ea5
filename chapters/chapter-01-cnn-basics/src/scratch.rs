//! Chapter 1's training run, which chapters 2, 6, 7 and 13 reuse: the network chapter 1 trains,
//! asked for by its settings, never by path. [`ScratchRun::trained`] reads it from the working
//! folder (`target/vision-interp/`, see [`vision_interp::work_dir`]) when chapter 1 has run, and
//! otherwise trains it on the spot by the very code chapter 1 runs, so that every chapter runs
//! alone, in any order, from a fresh clone.
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use vision_interp::data::{Dataset, Split};
use vision_interp::models::simple_cnn::{init_varmap, SimpleCnn};

use crate::train::{train, EpochStats, TrainConfig};

/// What [`ScratchRun::fit`] returns: the trained network and its variables, the history, and
/// the first layer's filters as initialised (for the before/after figure).
pub struct Fitted {
    pub net: SimpleCnn,
    pub varmap: VarMap,
    pub history: Vec<EpochStats>,
    pub initial_conv1: Tensor,
}

impl Fitted {
    /// Parameters the optimiser trains (BatchNorm's running statistics are not among them).
    pub fn trainable_parameters(&self) -> usize {
        let vars = self.varmap.data().lock().expect("varmap lock");
        vars.iter().filter(|(name, _)| !name.contains("running_")).map(|(_, v)| v.elem_count()).sum()
    }
}

/// The dataset a SimpleCNN is trained on from scratch.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScratchData {
    /// The Fashion-MNIST subset shipped in `assets/` (works offline)
    #[default]
    FashionMnist,
    /// fast.ai's Imagenette, 160-pixel variant (downloaded once, about 94 MB)
    Imagenette,
}

impl ScratchData {
    /// `fashion-mnist` or `imagenette`: names figures, checkpoints and weights.
    pub fn slug(self) -> &'static str {
        match self {
            Self::FashionMnist => "fashion-mnist",
            Self::Imagenette => "imagenette",
        }
    }

    /// The class names, in label order.
    pub fn classes(self) -> Vec<String> {
        match self {
            Self::FashionMnist => {
                vision_interp::data::FASHION_MNIST_CLASSES.iter().map(|c| c.to_string()).collect()
            }
            Self::Imagenette => {
                vision_interp::data::IMAGENETTE_CLASSES.iter().map(|(_, c)| c.to_string()).collect()
            }
        }
    }
}

/// The flags of chapters 1, 2, 6, 7 and 13 that choose chapter 1's training run.
#[derive(clap::Args, Debug, Clone)]
pub struct ScratchArgs {
    /// Data chapter 1 trains SimpleCNN on
    #[arg(long, value_enum, default_value_t)]
    pub dataset: ScratchData,
    /// Training epochs [default: 4 on Fashion-MNIST, 6 on Imagenette; half or fewer with --quick]
    #[arg(long, value_parser = vision_interp::flag::count)]
    pub epochs: Option<usize>,
}

impl ScratchArgs {
    /// The run these flags describe.
    pub fn run(&self, quick: bool) -> ScratchRun {
        let run = ScratchRun::new(self.dataset, quick);
        ScratchRun { epochs: self.epochs.unwrap_or(run.epochs), ..run }
    }
}

/// The training run of chapter 1: which data, how many images and epochs, at what size.
#[derive(Debug, Clone, Copy)]
pub struct ScratchRun {
    pub data: ScratchData,
    /// Training images used (`None`: all of them).
    pub n_train: Option<usize>,
    /// Evaluation images used (`None`: all of them).
    pub n_eval: Option<usize>,
    pub epochs: usize,
    pub size: usize,
}

impl ScratchRun {
    /// Fashion-MNIST: 12,000 images of 32 px for 4 epochs (quick: 2,000 for 2). Imagenette:
    /// all 9,469 photos at 64 px for 6 epochs (quick: 1,000 photos, 500 for evaluation, 1 epoch).
    pub fn new(data: ScratchData, quick: bool) -> Self {
        match (data, quick) {
            (ScratchData::FashionMnist, true) => {
                Self { data, n_train: Some(2000), n_eval: None, epochs: 2, size: 32 }
            }
            (ScratchData::FashionMnist, false) => {
                Self { data, n_train: Some(12000), n_eval: None, epochs: 4, size: 32 }
            }
            (ScratchData::Imagenette, true) => {
                Self { data, n_train: Some(1000), n_eval: Some(500), epochs: 1, size: 64 }
            }
            (ScratchData::Imagenette, false) => {
                Self { data, n_train: None, n_eval: None, epochs: 6, size: 64 }
            }
        }
    }

    /// The training and evaluation sets (Imagenette is downloaded into the cache folder the
    /// first time; see [`vision_interp::weights::cache_dir`]).
    pub fn datasets(&self) -> Result<(Dataset, Dataset)> {
        Ok((self.dataset(Split::Train)?, self.dataset(Split::Eval)?))
    }

    /// One split of the run's data.
    pub fn dataset(&self, split: Split) -> Result<Dataset> {
        use vision_interp::data::{fashion_mnist, imagenette, imagenette_remote};
        let n = if split == Split::Train { self.n_train } else { self.n_eval };
        match self.data {
            ScratchData::FashionMnist => {
                let all = fashion_mnist(split, self.size)?;
                all.take(n.unwrap_or(usize::MAX))
            }
            ScratchData::Imagenette => {
                let cache = vision_interp::weights::cache_dir().join("datasets");
                imagenette(split, self.size, n, &imagenette_remote(), &cache)
            }
        }
    }

    /// `simple-cnn-fashion-mnist-32px-n12000-4ep-seed0`: names the checkpoint and the weights.
    pub fn tag(&self, seed: u64) -> String {
        let n = self.n_train.map_or("all".to_string(), |n| n.to_string());
        format!("simple-cnn-{}-{}px-n{n}-{}ep-seed{seed}", self.data.slug(), self.size, self.epochs)
    }

    /// Where chapter 1 saves the trained weights.
    pub fn weights_path(&self, seed: u64) -> PathBuf {
        vision_interp::work_dir().join("models").join(format!("{}.safetensors", self.tag(seed)))
    }

    /// Where the training checkpoint (weights, Adam state, history) is kept between runs.
    pub fn checkpoint_path(&self, seed: u64) -> PathBuf {
        vision_interp::work_dir().join("checkpoints").join(format!("{}.safetensors", self.tag(seed)))
    }

    // ANCHOR: fit
    /// Initialises SimpleCNN from `seed` and trains it (Adam 1e-3, batch 32, cross-entropy),
    /// resuming from the checkpoint of an interrupted run; saves the trained weights where
    /// [`ScratchRun::trained`] finds them.
    pub fn fit(&self, train_set: &Dataset, eval_set: &Dataset, seed: u64, device: &Device) -> Result<Fitted> {
        anyhow::ensure!(self.epochs > 0, "training needs at least one epoch (epochs = 0)");
        let mut varmap = VarMap::new();
        init_varmap(&varmap, train_set.classes.len(), &mut vision_interp::rng::seeded(seed), device)?;
        // A copy: training updates the variable's buffer in place.
        let initial_conv1 = varmap.data().lock().expect("varmap lock")["conv1.weight"].as_tensor().copy()?;
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = SimpleCnn::new(vb, train_set.classes.clone(), self.size, vision_interp::rng::seeded(seed))?;
        let cfg = TrainConfig { epochs: self.epochs, batch: 32, lr: 1e-3, seed };
        let checkpoint = self.checkpoint_path(seed);
        let history = train(&net, &mut varmap, train_set, eval_set, cfg, device, Some(&checkpoint))?;
        vision_interp::atomic::write_with(&self.weights_path(seed), |tmp| Ok(varmap.save(tmp)?))?;
        Ok(Fitted { net, varmap, history, initial_conv1 })
    }
    // ANCHOR_END: fit

    /// The SimpleCNN chapter 1 trains with this run and seed: its saved weights, or, when
    /// chapter 1 has not been run, trained here by the same code (and saved for next time).
    pub fn trained(&self, seed: u64, device: &Device) -> Result<SimpleCnn> {
        let path = self.weights_path(seed);
        if !path.is_file() {
            eprintln!(
                "chapter 1's SimpleCNN ({}) is not in {}: training it now, as `cargo run -p \
                 chapter-01-cnn-basics` does",
                self.tag(seed),
                path.parent().map_or(path.clone(), Path::to_path_buf).display()
            );
            let (train_set, eval_set) = self.datasets()?;
            return Ok(self.fit(&train_set, &eval_set, seed, device)?.net);
        }
        let store = vision_interp::weights::WeightStore::load(&path, device)?;
        let names: Vec<String> = store.names().map(str::to_owned).collect();
        let tensors = names.iter().map(|n| (n.clone(), store.raw(n).expect("listed").clone())).collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        SimpleCnn::new(vb, self.data.classes(), self.size, vision_interp::rng::seeded(seed))
    }
}
