//! Writing files so that a kill at any moment leaves either the old file or the new one, never
//! half of one: a temporary file in the destination's folder, renamed into place.
use std::path::Path;

use anyhow::{Context, Result};

/// Creates the folders of `path`, lets `write` fill a temporary file beside it (through its
/// path or its handle), makes it an ordinary readable file (0644) and renames it to `path`.
pub fn write_with(path: &Path, write: impl FnOnce(&tempfile::NamedTempFile) -> Result<()>) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    write(&tmp).with_context(|| format!("cannot write {}", path.display()))?;
    // Temporary files are private (0600); what is written here is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
