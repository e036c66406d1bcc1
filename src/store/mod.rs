//! `store`: the node's home directory, laid out like the reference's so existing homes,
//! scripts and rigs work unchanged:
//!
//! ```text
//! identity.secret / identity.public   our identity (secret 0600; created when missing)
//! planet                              the planet (binary world); the built-in one if absent
//!                                     (`world`: its legacy name, removed with it)
//! moons.d/<16 hex>.moon               moons we orbit (binary worlds)
//! networks.d/<16 hex>.conf            one per joined network: the last good config
//!                                     (dictionary), or empty when joined but not configured
//! networks.d/<16 hex>.local.conf      per-network local settings (allowManaged=1 ...)
//! controller.d/                       the controller's networks and members (FileDB)
//! local.conf                          local settings (JSON, see `service::local_conf`)
//! authtoken.secret                    the control API token (0600; created when missing)
//! zerotier-one.port / .pid            the port in use and our pid, for tools
//! ```
//!
//! What this room guarantees (H4): the root is made absolute once; names derived from input
//! (network and moon ids) are formatted from parsed numbers, never taken from strings; every
//! read is size-bounded through one handle and refuses symlinks; every write is atomic
//! (temporary file, fsync, rename, directory fsync); secrets are created 0600 inside a 0700
//! home and rewriting them never widens permissions (see `files`). Deleting an object removes
//! every name it may be known by (H4.2): a moon or a network file in any spelling of its id,
//! a network's config together with its local settings, the planet with its legacy name.

mod files;
mod network_settings;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use self::files::{read_file, remove_aliases, remove_file, write_file};
use crate::controller::store::StoreError;
use crate::crypto::Identity;
use crate::wire::NetworkId;
use crate::wire::world::{World, WorldType};

pub use network_settings::NetworkSettings;

/// Moons loaded from `moons.d` at most (the node keeps fewer; extra files are ignored).
const MAX_MOON_FILES: usize = 64;

/// Networks listed from `networks.d` at most (the node refuses more joins anyway).
const MAX_NETWORK_FILES: usize = crate::node::MAX_NETWORKS;

/// The planet's name before `planet` (the reference removes it at start-up).
const LEGACY_PLANET: &str = "world";

/// Length of a generated API token (the reference uses 24 characters).
const AUTH_TOKEN_LEN: usize = 24;

/// Why a home directory operation failed; the message names the file.
#[derive(Debug)]
pub struct HomeError(pub String);

impl std::fmt::Display for HomeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HomeError {}

type HomeResult<T> = Result<T, HomeError>;

fn failed(path: &Path, what: &str, err: impl std::fmt::Display) -> HomeError {
    HomeError(format!("{what} {}: {err}", path.display()))
}

/// A node's home directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// Opens `root`, creating it (0700) and `networks.d`/`moons.d` when missing. The path is
    /// made absolute here, once. A symlinked home or subdirectory is refused.
    pub fn open(root: &Path) -> HomeResult<Home> {
        let root = std::path::absolute(root).map_err(|e| failed(root, "cannot resolve", e))?;
        ensure_private_dir(&root)?;
        let home = Home { root };
        ensure_private_dir(&home.networks_dir())?;
        ensure_private_dir(&home.moons_dir())?;
        Ok(home)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn networks_dir(&self) -> PathBuf {
        self.root.join("networks.d")
    }

    fn moons_dir(&self) -> PathBuf {
        self.root.join("moons.d")
    }

    /// The controller store's directory.
    pub fn controller_dir(&self) -> PathBuf {
        self.root.join("controller.d")
    }

    /// Reads a file of the home, bounded and without following symlinks; `None` if missing.
    pub fn read(&self, name: &str) -> HomeResult<Option<Vec<u8>>> {
        read_file(&self.path(name))
    }

    /// Replaces a file of the home atomically; `secret` files end up 0600.
    pub fn write(&self, name: &str, bytes: &[u8], secret: bool) -> HomeResult<()> {
        write_file(&self.path(name), bytes, secret)
    }

    /// `identity.secret`, or a new identity (written 0600 with `identity.public`) when it
    /// does not exist. A present but unusable file is an error, never silently replaced.
    pub fn load_or_create_identity(&self) -> HomeResult<Identity> {
        let path = self.path("identity.secret");
        match read_file(&path)? {
            Some(mut bytes) => {
                let parsed = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse::<Identity>().ok());
                bytes.zeroize();
                let identity =
                    parsed.ok_or_else(|| failed(&path, "unusable", "not an identity"))?;
                if !identity.has_secret() {
                    return Err(failed(&path, "unusable", "no secret key"));
                }
                if !identity.locally_validate() {
                    return Err(failed(&path, "unusable", "fails its proof of work"));
                }
                self.complete_public_identity(&identity)?;
                Ok(identity)
            }
            None => {
                let identity = Identity::generate();
                let mut secret = identity.to_secret_string();
                let written = write_file(&path, secret.as_bytes(), true);
                secret.zeroize();
                written?;
                self.write(
                    "identity.public",
                    identity.to_public_string().as_bytes(),
                    false,
                )?;
                Ok(identity)
            }
        }
    }

    /// Rewrites `identity.public` when it is missing or is not `identity`'s public half: a
    /// crash between the two writes of a new identity leaves the secret alone, and the
    /// public file is derived from it (the reference repairs it the same way).
    fn complete_public_identity(&self, identity: &Identity) -> HomeResult<()> {
        let public = identity.to_public_string();
        let stored = self.read("identity.public")?;
        if stored.as_deref().map(<[u8]>::trim_ascii) != Some(public.as_bytes()) {
            self.write("identity.public", public.as_bytes(), false)?;
        }
        Ok(())
    }

    /// The planet: `planet` when present (it must parse and be a planet), else the built-in
    /// one.
    pub fn planet(&self) -> HomeResult<World> {
        let path = self.path("planet");
        match read_file(&path)? {
            None => Ok(World::default_planet()),
            Some(bytes) => {
                let world = World::parse(&bytes).map_err(|e| failed(&path, "unusable", e))?;
                if world.world_type != WorldType::Planet {
                    return Err(failed(&path, "unusable", "a moon, not a planet"));
                }
                Ok(world)
            }
        }
    }

    /// The moons in `moons.d` (files that cannot be read — a symlink, an oversized file —
    /// or do not parse as moons are skipped, with their names in the second list, so the
    /// caller can log them; one bad file does not stop the others).
    pub fn moons(&self) -> HomeResult<(Vec<World>, Vec<String>)> {
        let mut moons = Vec::new();
        let mut skipped = Vec::new();
        for (name, id) in list_hex_files(&self.moons_dir(), ".moon", MAX_MOON_FILES)? {
            let path = self.moons_dir().join(&name);
            let parsed = read_file(&path)
                .ok()
                .flatten()
                .and_then(|bytes| World::parse(&bytes).ok())
                .filter(|w| w.world_type == WorldType::Moon && w.id == id);
            match parsed {
                Some(world) => moons.push(world),
                None => skipped.push(name),
            }
        }
        Ok((moons, skipped))
    }

    /// Persists a planet or moon the node accepted (an update, or a new moon). Writing the
    /// planet drops its legacy name, so an old copy cannot shadow the new one.
    pub fn save_world(&self, world: &World) -> HomeResult<()> {
        let mut bytes = Vec::new();
        world.emit(&mut bytes);
        match world.world_type {
            WorldType::Planet => {
                self.write("planet", &bytes, false)?;
                remove_file(&self.path(LEGACY_PLANET))
            }
            WorldType::Moon => write_file(
                &self.moons_dir().join(format!("{:016x}.moon", world.id)),
                &bytes,
                false,
            ),
        }
    }

    /// Forgets a custom planet (back to the built-in one): `planet` and its legacy name.
    pub fn remove_planet(&self) -> HomeResult<()> {
        remove_file(&self.path(LEGACY_PLANET))?;
        remove_file(&self.path("planet"))
    }

    /// Removes a moon (deorbit): its file under every spelling of its id (case, leading
    /// zeros), since the reference would load any of them.
    pub fn remove_moon(&self, id: u64) -> HomeResult<()> {
        remove_aliases(&self.moons_dir(), id, ".moon").map(drop)
    }

    /// The networks joined (`networks.d/<nwid>.conf`), sorted.
    pub fn joined_networks(&self) -> HomeResult<Vec<NetworkId>> {
        Ok(
            list_hex_files(&self.networks_dir(), ".conf", MAX_NETWORK_FILES)?
                .into_iter()
                .map(|(_, id)| NetworkId(id))
                .collect(),
        )
    }

    fn network_path(&self, nwid: NetworkId, suffix: &str) -> PathBuf {
        self.networks_dir().join(format!("{:016x}{suffix}", nwid.0))
    }

    /// The last good config of `nwid` (a dictionary); `None` when not joined or never
    /// configured (an empty file).
    pub fn network_config(&self, nwid: NetworkId) -> HomeResult<Option<Vec<u8>>> {
        Ok(read_file(&self.network_path(nwid, ".conf"))?.filter(|b| !b.is_empty()))
    }

    /// Records a join (an empty `.conf` unless one exists).
    pub fn mark_joined(&self, nwid: NetworkId) -> HomeResult<()> {
        let path = self.network_path(nwid, ".conf");
        if read_file(&path)?.is_none() {
            write_file(&path, b"", false)?;
        }
        Ok(())
    }

    /// Persists the config in force for `nwid`.
    pub fn save_network_config(&self, nwid: NetworkId, dictionary: &[u8]) -> HomeResult<()> {
        write_file(&self.network_path(nwid, ".conf"), dictionary, false)
    }

    /// Forgets a network (leave) as the reference does: its local settings and its config,
    /// under every spelling of its id. The config (the join record) goes last, so an
    /// interrupted leave leaves a joined network with default settings, never orphaned
    /// settings that a later join would silently pick up again.
    pub fn forget_network(&self, nwid: NetworkId) -> HomeResult<()> {
        remove_aliases(&self.networks_dir(), nwid.0, ".local.conf")?;
        remove_aliases(&self.networks_dir(), nwid.0, ".conf").map(drop)
    }

    /// Per-network local settings (`networks.d/<nwid>.local.conf`); defaults when absent.
    pub fn network_settings(&self, nwid: NetworkId) -> HomeResult<NetworkSettings> {
        let path = self.network_path(nwid, ".local.conf");
        Ok(match read_file(&path)? {
            Some(bytes) => NetworkSettings::parse(&String::from_utf8_lossy(&bytes)),
            None => NetworkSettings::default(),
        })
    }

    /// Writes per-network local settings.
    pub fn save_network_settings(
        &self,
        nwid: NetworkId,
        settings: &NetworkSettings,
    ) -> HomeResult<()> {
        write_file(
            &self.network_path(nwid, ".local.conf"),
            settings.to_text().as_bytes(),
            false,
        )
    }

    /// The control API token: `authtoken.secret`, created (0600, random) when missing.
    pub fn auth_token(&self) -> HomeResult<String> {
        let path = self.path("authtoken.secret");
        if let Some(bytes) = read_file(&path)? {
            let token = String::from_utf8_lossy(&bytes).trim().to_string();
            if !token.is_empty() {
                return Ok(token);
            }
        }
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut random = [0u8; AUTH_TOKEN_LEN];
        crate::crypto::c25519::random_bytes(&mut random);
        let token: String = random
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        write_file(&path, token.as_bytes(), true)?;
        Ok(token)
    }
}

/// Creates `path` as a 0700 directory when missing; refuses a symlink or a file.
fn ensure_private_dir(path: &Path) -> HomeResult<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            Err(failed(path, "refusing", "a symbolic link (H4.1)"))
        }
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(failed(path, "refusing", "not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                builder.mode(0o700);
            }
            builder
                .create(path)
                .map_err(|e| failed(path, "cannot create", e))
        }
        Err(e) => Err(failed(path, "cannot inspect", e)),
    }
}

/// `(file name, id)` of the files `<16 lowercase hex><suffix>` in `dir`, sorted by id, at
/// most `cap` (other names are ignored, as the reference ignores them).
fn list_hex_files(dir: &Path, suffix: &str, cap: usize) -> HomeResult<Vec<(String, u64)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed(dir, "cannot list", e)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| failed(dir, "cannot list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(suffix) else {
            continue;
        };
        if !crate::controller::store::is_lower_hex(stem, 16) {
            continue;
        }
        if let Ok(id) = u64::from_str_radix(stem, 16) {
            found.push((name.to_string(), id));
        }
    }
    found.sort_by_key(|(_, id)| *id);
    found.truncate(cap);
    Ok(found)
}

impl From<StoreError> for HomeError {
    fn from(e: StoreError) -> HomeError {
        HomeError(e.to_string())
    }
}

#[cfg(test)]
mod tests;
