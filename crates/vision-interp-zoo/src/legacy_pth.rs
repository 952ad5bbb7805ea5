//! Reader for PyTorch's legacy (pre-1.6, non-zip) `torch.save` format.
//!
//! Candle reads zip-format `.pth` files only. A legacy file is a chain of pickles followed by
//! raw storages: (1) a magic number, (2) the protocol version, (3) system information,
//! (4) the object itself, whose tensors refer to storages by key through persistent ids,
//! (5) the list of storage keys; then, for each key in that order, an int64 element count and
//! the little-endian data. Candle's pickle machine parses (2)–(5); this module walks the file.
use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

/// The first pickle of every legacy file: protocol 2, LONG1 of 10 bytes, the magic number
/// 0x1950a86a20f9469cfc6c, STOP.
const MAGIC: [u8; 15] =
    [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];

fn read_pickle<R: std::io::BufRead>(r: &mut R) -> Result<Object> {
    let mut stack = Stack::empty();
    stack.read_loop(r)?;
    Ok(stack.finalize()?)
}

/// Reads every tensor of a legacy state dict, in file order, as CPU tensors.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_state_dict(&bytes).with_context(|| {
        format!("{} is not a legacy PyTorch state dict (the pre-1.6 torch.save format)", path.display())
    })
}

/// Parses the bytes of a legacy state dict.
pub fn parse_state_dict(bytes: &[u8]) -> Result<Vec<(String, Tensor)>> {
    ensure!(
        bytes.starts_with(&MAGIC),
        "missing the legacy magic number (a zip-format file loads with candle's pickle reader)"
    );
    let body = &bytes[MAGIC.len()..];
    let mut r = Cursor::new(body);
    let protocol = read_pickle(&mut r)?;
    ensure!(matches!(protocol, Object::Int(1001) | Object::Long(1001)), "unsupported protocol {protocol:?}");
    let _sys_info = read_pickle(&mut r)?;
    let state = read_pickle(&mut r)?;
    let keys = match read_pickle(&mut r)? {
        Object::List(keys) => keys
            .into_iter()
            .map(|k| k.unicode().map_err(|o| anyhow::anyhow!("bad storage key {o:?}")))
            .collect::<Result<Vec<_>>>()?,
        other => bail!("expected the list of storage keys, found {other:?}"),
    };
    // Raw storages, in key order: int64 element count, then the data.
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    let infos = tensor_infos(state)?;
    let elem_size: HashMap<String, usize> =
        infos.iter().map(|i| (storage_key(&i.path), i.dtype.size_in_bytes())).collect();
    for key in keys {
        let mut n = [0u8; 8];
        r.read_exact(&mut n).context("truncated storage header")?;
        let size = *elem_size.get(&key).with_context(|| format!("storage {key} is used by no tensor"))?;
        // The header's element count is checked against what the file holds before anything
        // is allocated: a corrupt count is an error, not a huge allocation.
        let left = body.len() - r.position() as usize;
        let len = usize::try_from(u64::from_le_bytes(n))
            .ok()
            .and_then(|count| count.checked_mul(size))
            .filter(|&len| len <= left)
            .with_context(|| {
                format!(
                    "storage {key} claims {} elements, more than the {left} bytes left",
                    u64::from_le_bytes(n)
                )
            })?;
        let mut data = vec![0u8; len];
        r.read_exact(&mut data).with_context(|| format!("storage {key} is truncated"))?;
        storages.insert(key, data);
    }
    infos
        .into_iter()
        // BatchNorm's num_batches_tracked counters are int64 and carry no weights.
        .filter(|info| info.dtype != DType::I64)
        .map(|info| {
            let data = &storages[&storage_key(&info.path)];
            let bytes = gather_strided(data, &info)?;
            let t = Tensor::from_raw_buffer(&bytes, info.dtype, info.layout.shape().dims(), &Device::Cpu)?;
            Ok((info.name, t))
        })
        .collect()
}

/// Copies a tensor's elements out of its storage in row-major order, following its strides
/// (tensors converted from TensorFlow are often stored transposed).
fn gather_strided(data: &[u8], info: &candle_core::pickle::TensorInfo) -> Result<Vec<u8>> {
    let size = info.dtype.size_in_bytes();
    let layout = &info.layout;
    let dims = layout.shape().dims();
    let strides = layout.stride();
    let start = layout.start_offset() / size;
    // Shapes and strides come from the file: every size is computed with overflow checks and
    // bounded by the storage before anything is allocated.
    let past = || {
        anyhow::anyhow!("tensor {} (shape {dims:?}, strides {strides:?}) runs past its storage", info.name)
    };
    let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(past)?;
    let last = dims
        .iter()
        .zip(strides)
        .try_fold(start, |acc, (&d, &s)| d.saturating_sub(1).checked_mul(s).and_then(|x| acc.checked_add(x)));
    let fits = |n: usize| n.checked_mul(size).is_some_and(|b| b <= data.len());
    ensure!(count == 0 || (last.is_some_and(|l| fits(l + 1)) && fits(count)), past());
    let mut out = Vec::with_capacity(count * size);
    let mut index = vec![0usize; dims.len()];
    for _ in 0..count {
        let offset = start + index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(&data[offset * size..(offset + 1) * size]);
        for k in (0..dims.len()).rev() {
            index[k] += 1;
            if index[k] < dims[k] {
                break;
            }
            index[k] = 0;
        }
    }
    Ok(out)
}

fn storage_key(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

fn tensor_infos(state: Object) -> Result<Vec<candle_core::pickle::TensorInfo>> {
    let Object::Dict(entries) = state else {
        bail!("the saved object is not a state dict");
    };
    let mut out = Vec::new();
    for (name, value) in entries {
        if let Some(info) = value.into_tensor_info(name, Path::new(""))? {
            out.push(info);
        }
    }
    Ok(out)
}
