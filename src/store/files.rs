//! The file operations of the home (H4): bounded reads through one handle that refuse
//! symlinks, atomic writes whose final permissions are set before the content is visible under
//! its name, removals, and the removal of every spelling (alias) of a numbered file.
//!
//! Aliases: the reference loads `moons.d/*.moon` and `networks.d/*.conf` by parsing the stem
//! as hex in any case (`Utils::hexStrToU64`), so `000000000000ABCD.moon`, `abcd.moon` and
//! `000000000000abcd.moon` all name moon 0xabcd for it (and for whatever reads the home after
//! us). This store only ever reads and writes the canonical `{:016x}` name (H4.6), but a
//! deletion removes every spelling, so nothing the reference (or a later copy of the home)
//! would load resurrects the deleted object.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{HomeResult, failed};

/// Largest state file read (the controller store's bound too).
pub(super) const MAX_FILE_LEN: u64 = 1024 * 1024;

/// Attempts at the final rename of an atomic write before the failure is reported.
const RENAME_ATTEMPTS: usize = 3;

/// Alias names removed per directory scan (the scan repeats while a batch is full).
const ALIAS_BATCH: usize = 256;

/// Reads `path` whole, at most [`MAX_FILE_LEN`] bytes; `None` if it does not exist. A
/// symlink, a non-regular file or an oversized file is an error, found before reading. The
/// file read is the one that was checked: the opened handle must be the same inode the name
/// held when it was inspected, so a symlink swapped in between is refused too.
pub(super) fn read_file(path: &Path) -> HomeResult<Option<Vec<u8>>> {
    let inspected = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(path, "cannot inspect", e)),
    };
    check_readable(path, &inspected)?;
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(path, "cannot open", e)),
    };
    let opened = file
        .metadata()
        .map_err(|e| failed(path, "cannot inspect", e))?;
    if !same_file(&inspected, &opened) {
        return Err(failed(
            path,
            "refusing",
            "replaced while being opened (H4.1)",
        ));
    }
    check_readable(path, &opened)?;
    let capacity = usize::try_from(opened.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| failed(path, "cannot read", e))?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(failed(path, "refusing", "larger than 1 MiB (H4.3)"));
    }
    Ok(Some(bytes))
}

fn check_readable(path: &Path, meta: &fs::Metadata) -> HomeResult<()> {
    if meta.file_type().is_symlink() {
        return Err(failed(path, "refusing", "a symbolic link (H4.1)"));
    }
    if !meta.is_file() {
        return Err(failed(path, "refusing", "not a regular file"));
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(failed(path, "refusing", "larger than 1 MiB (H4.3)"));
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.len() == b.len() && a.is_file() == b.is_file()
}

/// Replaces `path` atomically: a temporary file in the same directory created with the
/// final mode (0600 for a secret; otherwise the replaced file's mode, never wider than
/// 0644), written and fsynced, renamed over the target (retried a few times), then the
/// directory fsynced. A symlink at `path` is refused; any failure names the file and the
/// step, and leaves no temporary file behind.
pub(super) fn write_file(path: &Path, bytes: &[u8], secret: bool) -> HomeResult<()> {
    let existing = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(failed(path, "refusing to write", "a symbolic link (H4.1)"));
        }
        Ok(meta) => Some(meta),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(failed(path, "cannot inspect", e)),
    };
    let mode = final_mode(existing.as_ref(), secret);
    let (dir, file_name) = match (path.parent(), path.file_name().and_then(|n| n.to_str())) {
        (Some(dir), Some(name)) => (dir, name),
        _ => return Err(failed(path, "cannot write", "not a file path")),
    };
    let mut nonce = [0u8; 8];
    crate::crypto::c25519::random_bytes(&mut nonce);
    let temporary = dir.join(format!(".{file_name}.{}.tmp", crate::hex::encode(&nonce)));
    let written = write_temporary(&temporary, bytes, mode)
        .map_err(|e| failed(&temporary, "cannot write", e))
        .and_then(|()| rename_into_place(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_dir(dir)
}

/// 0600 for secrets; else the replaced file's permission bits within 0644 (0644 if new).
fn final_mode(existing: Option<&fs::Metadata>, secret: bool) -> u32 {
    if secret {
        return 0o600;
    }
    #[cfg(unix)]
    if let Some(meta) = existing {
        use std::os::unix::fs::PermissionsExt;
        return meta.permissions().mode() & 0o644;
    }
    let _ = existing;
    0o644
}

fn write_temporary(temporary: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options.open(temporary)?;
    // The umask may have narrowed the mode at creation; set it exactly, still before the
    // content has a public name.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(bytes)?;
    file.sync_all()
}

fn rename_into_place(temporary: &Path, path: &Path) -> HomeResult<()> {
    let mut last_error = None;
    for _ in 0..RENAME_ATTEMPTS {
        match fs::rename(temporary, path) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = Some(e),
        }
    }
    let cause = last_error.map_or_else(|| "no attempt".to_owned(), |e| e.to_string());
    Err(failed(
        path,
        "cannot replace",
        format!("rename failed {RENAME_ATTEMPTS} times: {cause}"),
    ))
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> HomeResult<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| failed(dir, "cannot sync directory", e))
}

/// Removes `path` (a missing file is fine); a symlink is removed itself, never its target.
pub(super) fn remove_file(path: &Path) -> HomeResult<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(path, "cannot remove", e)),
    }
}

/// Removes every file of `dir` named `<hex><suffix>` whose stem, in any case and with any
/// number of leading zeros, is `id`; then syncs the directory. Returns how many were removed.
pub(super) fn remove_aliases(dir: &Path, id: u64, suffix: &str) -> HomeResult<usize> {
    let mut removed = 0;
    loop {
        let batch = find_aliases(dir, id, suffix)?;
        for name in &batch {
            remove_file(&dir.join(name))?;
        }
        removed += batch.len();
        if batch.len() < ALIAS_BATCH {
            break;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Up to [`ALIAS_BATCH`] names of `dir` that spell `id` with `suffix` (directories aside).
fn find_aliases(dir: &Path, id: u64, suffix: &str) -> HomeResult<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(dir, "cannot list", e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| failed(dir, "cannot list", e))?;
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_dir && spells_id(name, id, suffix) {
            found.push(name.to_owned());
            if found.len() == ALIAS_BATCH {
                break;
            }
        }
    }
    Ok(found)
}

/// True if `name` is `<hex digits><suffix>` and the digits are `id` (any case, any number of
/// leading zeros).
pub(super) fn spells_id(name: &str, id: u64, suffix: &str) -> bool {
    let Some(stem) = name.strip_suffix(suffix) else {
        return false;
    };
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let significant = stem.trim_start_matches('0');
    if significant.len() > 16 {
        return false;
    }
    if significant.is_empty() {
        return id == 0;
    }
    u64::from_str_radix(significant, 16) == Ok(id)
}
