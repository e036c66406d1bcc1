//! Helpers shared by the integration tests: locating and reading `../shared/vectors/` in place
//! (never copied or edited) and parsing its `key=value` hex files.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

/// `../shared/vectors` relative to the project root, or `$ZTRS_VECTORS` if set.
pub fn vectors_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("ZTRS_VECTORS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}

pub fn reference_path(name: &str) -> PathBuf {
    vectors_dir().join("reference").join(name)
}

/// Reads a reference file as text; a missing vector fails the test loudly.
pub fn read_reference(name: &str) -> String {
    let path = reference_path(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read vector {}: {e}", path.display()))
}

/// Parses a `key=value` file, skipping `#` comments and blank lines.
pub fn key_values(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// `wire_vectors.txt` as a map.
pub fn wire_vectors() -> HashMap<String, String> {
    key_values(&read_reference("wire_vectors.txt"))
}

/// `netconf_vectors.txt` as a map.
pub fn netconf_vectors() -> HashMap<String, String> {
    key_values(&read_reference("netconf_vectors.txt"))
}

/// Decodes a hex vector value, failing the test on bad hex.
pub fn unhex(text: &str) -> Vec<u8> {
    ztrs::hex::decode(text.trim()).unwrap_or_else(|| panic!("bad hex in vector: {text}"))
}

pub mod nodes;
