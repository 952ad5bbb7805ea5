//! The offline photo collection: real photographs that a registry package ships, with their
//! credits.
//!
//! GCompris (Debian's `gcompris-qt-data`) keeps a few hundred photographs from Wikimedia
//! Commons inside Qt resource bundles (`.rcc`), each activity with a `README` in Debian's
//! copyright format that gives the author, source and licence of every file. This module reads
//! both; the `photo-collection` tool turns them into `assets/photos/collection/`.
//!
//! No crate reads Qt's resource format, so [`read_rcc`] does (about forty lines, every offset
//! and length checked against the file: a truncated or crafted bundle is an error, never a
//! panic or a large allocation).
use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{bail, ensure, Context, Result};

/// The largest file a bundle may claim to hold once decompressed (the photos are well under).
const MAX_ENTRY: usize = 64 << 20;

/// Every file of a Qt resource bundle: `(path inside the bundle, bytes)`, in path order.
pub fn read_rcc(bytes: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let be32 = |at: usize| -> Result<usize> {
        let b = bytes.get(at..at + 4).with_context(|| format!("rcc: truncated at byte {at}"))?;
        Ok(u32::from_be_bytes(b.try_into().expect("4 bytes")) as usize)
    };
    let be16 = |at: usize| -> Result<usize> {
        let b = bytes.get(at..at + 2).with_context(|| format!("rcc: truncated at byte {at}"))?;
        Ok(u16::from_be_bytes(b.try_into().expect("2 bytes")) as usize)
    };
    ensure!(bytes.starts_with(b"qres"), "not a Qt resource bundle (no `qres` header)");
    let (version, tree, data, names) = (be32(4)?, be32(8)?, be32(12)?, be32(16)?);
    ensure!((1..=3).contains(&version), "rcc: unknown format version {version}");
    let node = if version == 1 { 14 } else { 22 };
    let name = |off: usize| -> Result<String> {
        let len = be16(names + off)?;
        let at = names + off + 6;
        let raw = bytes.get(at..at + 2 * len).context("rcc: a name runs past the end")?;
        let units: Vec<u16> = raw.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        String::from_utf16(&units).context("rcc: a name is not UTF-16")
    };
    let mut files = BTreeMap::new();
    // (node index, path of its parent); children always follow their parent in the tree, which
    // rules out loops in a crafted file.
    let mut stack = vec![(0usize, String::new())];
    while let Some((i, parent)) = stack.pop() {
        let at = tree + i * node;
        let flags = be16(at + 4)?;
        let path = if i == 0 { String::new() } else { format!("{parent}/{}", name(be32(at)?)?) };
        if flags & 2 != 0 {
            let (count, first) = (be32(at + 6)?, be32(at + 10)?);
            ensure!(first > i || count == 0, "rcc: node {i} points back to node {first}");
            ensure!(
                tree + (first + count) * node <= bytes.len(),
                "rcc: node {i}'s children run past the end"
            );
            stack.extend((first..first + count).map(|c| (c, path.clone())));
            continue;
        }
        let off = data + be32(at + 10)?;
        let size = be32(off)?;
        let raw =
            bytes.get(off + 4..off + 4 + size).with_context(|| format!("rcc: `{path}` runs past the end"))?;
        let content = if flags & 1 != 0 {
            let claimed = be32(off + 4)?;
            ensure!(claimed <= MAX_ENTRY, "rcc: `{path}` claims {claimed} bytes uncompressed");
            let mut out = Vec::with_capacity(claimed);
            flate2::read::ZlibDecoder::new(&raw[4..]).take(claimed as u64 + 1).read_to_end(&mut out)?;
            ensure!(out.len() == claimed, "rcc: `{path}` decompresses to {} bytes, not {claimed}", out.len());
            out
        } else if flags & 4 != 0 {
            bail!("rcc: `{path}` is zstd-compressed, which this reader does not handle")
        } else {
            raw.to_vec()
        };
        files.insert(path.trim_start_matches('/').to_owned(), content);
    }
    Ok(files)
}

/// Who made a file and under which licence, as a `README` in Debian's copyright format says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub copyright: String,
    pub license: String,
    pub source: String,
}

impl Credit {
    /// Public domain or CC0: no attribution or share-alike obligation on a figure that shows it.
    pub fn is_free(&self) -> bool {
        let l = self.license.to_lowercase().replace(['-', ' '], "");
        l == "publicdomain" || l.starts_with("cc0")
    }
}

/// The credits of a `README` (blocks of `Field: value` lines separated by blank lines; `Files:`
/// lists file names, on its line or the following ones), by file name.
pub fn read_credits(readme: &str) -> BTreeMap<String, Credit> {
    let mut out = BTreeMap::new();
    for block in readme.replace("\r\n", "\n").split("\n\n") {
        let mut fields: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = None;
        for line in block.lines() {
            match line.split_once(':') {
                Some((k, v))
                    if !k.starts_with(char::is_whitespace)
                        && !k.contains(' ')
                        && k != "http"
                        && k != "https" =>
                {
                    fields.insert(k, v.trim().to_owned());
                    current = Some(k);
                }
                _ => {
                    if let Some(k) = current {
                        let v = fields.entry(k).or_default();
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                }
            }
        }
        let get = |k: &str| fields.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let credit = Credit { copyright: get("Copyright"), license: get("License"), source: get("Source") };
        for file in get("Files").split_whitespace() {
            out.insert(file.to_owned(), credit.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 bundle with `dir/a.txt` (stored) and `dir/b.txt` (zlib).
    fn bundle() -> Vec<u8> {
        use std::io::Write;
        let mut names = Vec::new();
        let mut name_at = |s: &str| {
            let at = names.len() as u32;
            names.extend((s.len() as u16).to_be_bytes());
            names.extend(0u32.to_be_bytes());
            for u in s.encode_utf16() {
                names.extend(u.to_be_bytes());
            }
            at
        };
        let (dir, a, b) = (name_at("dir"), name_at("a.txt"), name_at("b.txt"));
        let mut data = Vec::new();
        data.extend(5u32.to_be_bytes());
        data.extend(b"hello");
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"compressed!").unwrap();
        let z = z.finish().unwrap();
        let b_at = data.len() as u32;
        data.extend((z.len() as u32 + 4).to_be_bytes());
        data.extend(11u32.to_be_bytes());
        data.extend(&z);
        let mut tree = Vec::new();
        let mut push = |name: u32, flags: u16, x: u32, y: u32| {
            tree.extend(name.to_be_bytes());
            tree.extend(flags.to_be_bytes());
            tree.extend(x.to_be_bytes());
            tree.extend(y.to_be_bytes());
            tree.extend(0u64.to_be_bytes());
        };
        push(0, 2, 1, 1); // root: one child, node 1
        push(dir, 2, 2, 2); // dir: two children from node 2
        let mut file = |name: u32, flags: u16, at: u32| {
            tree.extend(name.to_be_bytes());
            tree.extend(flags.to_be_bytes());
            tree.extend(0u32.to_be_bytes());
            tree.extend(at.to_be_bytes());
            tree.extend(0u64.to_be_bytes());
        };
        file(a, 0, 0);
        file(b, 1, b_at);
        let mut out = b"qres".to_vec();
        let (t, d) = (20u32, 20 + tree.len() as u32);
        let n = d + data.len() as u32;
        for v in [2u32, t, d, n] {
            out.extend(v.to_be_bytes());
        }
        out.extend(tree);
        out.extend(data);
        out.extend(names);
        out
    }

    #[test]
    fn reads_stored_and_compressed_files() {
        let files = read_rcc(&bundle()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files["dir/a.txt"], b"hello");
        assert_eq!(files["dir/b.txt"], b"compressed!");
    }

    #[test]
    fn truncated_or_crafted_bundles_are_errors() {
        let good = bundle();
        for cut in [3, 10, 25, 60, good.len() - 3] {
            assert!(read_rcc(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert!(read_rcc(b"PK\x03\x04 not a bundle").is_err());
        // The compressed entry claims 4 GiB uncompressed.
        let mut huge = good.clone();
        let at = huge.windows(4).position(|w| w == 11u32.to_be_bytes()).unwrap();
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        let err = read_rcc(&huge).unwrap_err().to_string();
        assert!(err.contains("claims"), "{err}");
        // The directory points back at the root.
        let mut looped = good;
        looped[20 + 22 + 10..20 + 22 + 14].copy_from_slice(&0u32.to_be_bytes());
        assert!(read_rcc(&looped).unwrap_err().to_string().contains("points back"));
    }

    #[test]
    fn credits_by_file() {
        let readme = "Copyright: Kurt Kaiser\nLicense: CC0-1.0\nSource: https://commons.wikimedia.org/wiki/File:A.jpg\nFiles:\nbison.webp\n\n\
                      Copyright: Someone\nLicense: CC-BY-SA-4.0\nFiles: alpaca.webp bee.webp\n";
        let c = read_credits(readme);
        assert_eq!(c.len(), 3);
        assert_eq!(c["bison.webp"].source, "https://commons.wikimedia.org/wiki/File:A.jpg");
        assert!(c["bison.webp"].is_free());
        assert!(!c["bee.webp"].is_free());
        assert!(Credit { license: "Public domain".into(), ..c["bee.webp"].clone() }.is_free());
    }
}
