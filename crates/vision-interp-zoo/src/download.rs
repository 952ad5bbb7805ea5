//! Downloads of files that are too large to commit (datasets, weights behind a plain URL): a
//! progress bar, a checksum, a cache, and, without network, an error that says how to supply
//! the file by hand.
//!
//! A download goes to `<name>.part` beside its final place and is renamed only after its
//! checksum matches, so an interrupted or corrupted download never looks like a finished one.
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use md5::{Digest, Md5};

/// Whether `HF_HUB_OFFLINE` asks for no network (as the Hugging Face tools read it).
pub(crate) fn hub_offline() -> bool {
    matches!(std::env::var("HF_HUB_OFFLINE").as_deref(), Ok("1") | Ok("true") | Ok("TRUE") | Ok("yes"))
}

/// A file on the web with a known checksum.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Where to fetch it from.
    pub url: String,
    /// The file name it gets in the cache.
    pub file_name: String,
    /// Expected MD5 digest in lowercase hex (the checksum the publisher gives), when known. A
    /// file without one is checked by its reader (names, shapes) instead.
    pub md5: Option<String>,
}

/// Hex MD5 digest of a file.
pub fn md5_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Md5::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// The cached copy of `remote` under `dir`, downloading it first when it is missing.
///
/// A cached file is trusted (its checksum was verified when it was written). Set
/// `HF_HUB_OFFLINE=1` to forbid the download and get the "supply it by hand" message at once.
pub fn cached(remote: &Remote, dir: &Path) -> Result<PathBuf> {
    let dest = dir.join(&remote.file_name);
    if dest.is_file() {
        return Ok(dest);
    }
    let checksum = remote.md5.as_ref().map(|m| format!(" (MD5 {m})")).unwrap_or_default();
    let by_hand = format!(
        "download {}{checksum} elsewhere and put it at {} (the cache folder moves with VISION_INTERP_CACHE)",
        remote.url,
        dest.display()
    );
    if hub_offline() {
        bail!("{} is not cached and HF_HUB_OFFLINE is set: {by_hand}", remote.file_name);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let part = dir.join(format!("{}.part", remote.file_name));
    let result = fetch(&remote.url, &part).and_then(|()| {
        if let Some(want) = &remote.md5 {
            let got = md5_file(&part)?;
            if &got != want {
                bail!("checksum mismatch for {}: MD5 {got}, expected {want}", remote.url);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        let _ = std::fs::remove_file(&part);
        return Err(e.context(format!("could not download {}: {by_hand}", remote.file_name)));
    }
    std::fs::rename(&part, &dest)?;
    Ok(dest)
}

/// Streams `url` into `path` with a progress bar. Connecting gives up after 15 seconds and a
/// stalled transfer after 60, so a closed network fails quickly instead of hanging.
fn fetch(url: &str, path: &Path) -> Result<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(15))
        .timeout_read(Duration::from_secs(60))
        .build();
    let response = agent.get(url).call().with_context(|| format!("GET {url} failed"))?;
    let len = response.header("Content-Length").and_then(|v| v.parse::<u64>().ok());
    let bar = crate::progress::bytes_bar(len, "download");
    let mut reader = response.into_reader();
    let mut out = std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).with_context(|| format!("reading {url} failed after {total} bytes"))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
        bar.inc(n as u64);
    }
    out.sync_all()?;
    bar.finish_and_clear();
    if let Some(len) = len {
        if total != len {
            bail!("{url} ended after {total} of {len} bytes");
        }
    }
    Ok(())
}

/// Unpacks the `.tgz` archive `archive` into `dir`, which then holds what the archive holds.
///
/// The archive is unpacked into a temporary folder beside `dir` and renamed into place, so a
/// killed extraction leaves no half-filled `dir` behind.
pub fn extract_tgz(archive: &Path, dir: &Path) -> Result<()> {
    let parent = dir.parent().context("extraction folder has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new().prefix(".extract-").tempdir_in(parent)?;
    let file = std::fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(tmp.path())
        .with_context(|| format!("{} is not a readable .tgz archive", archive.display()))?;
    std::fs::rename(tmp.keep(), dir)
        .with_context(|| format!("cannot move the extracted files to {}", dir.display()))?;
    Ok(())
}
