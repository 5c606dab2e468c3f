//! Files holding secrets (the service account key, the mail relay's password) must be
//! readable by their owner only: one check for every such file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The file's mode when group or others may read it (`None`: private).
pub fn readable_by_others(path: &Path) -> std::io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    Ok((mode & 0o044 != 0).then_some(mode))
}
