//! `ztrs idtool` (also reachable as `zerotier-idtool`): identities, signatures and world
//! definitions, command-compatible with the reference `zerotier-idtool`.
//!
//! Output follows the reference byte for byte where scripts may read it: `generate` and
//! `getpublic` print identities without a newline, `sign` prints 192 hex digits without a
//! newline, status lines (`... is a valid identity`, `... signature valid`, `wrote ...`) end
//! with one. Exit status 0 means success; every failure and usage error is status 1.
//!
//! Identity arguments are taken literally when they parse as an identity string, and are
//! otherwise read as a file.

use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use zeroize::Zeroize;

use super::files::{read_bounded, write_file};
use super::moon::{WorldSpec, moon_template, sign_world};
use crate::crypto::Identity;
use crate::hex;

/// Identity files are ~270 bytes; anything far larger is not one.
const IDENTITY_FILE_CAP: u64 = 64 * 1024;
/// World JSON files are a few KiB even with 4 roots of 32 endpoints each.
const WORLD_JSON_CAP: u64 = 1024 * 1024;
/// Signature files hold 192 hex digits (plus whitespace).
const SIGNATURE_FILE_CAP: u64 = 4096;
/// Files to sign or verify are read whole; refuse absurd sizes rather than exhaust memory.
const SIGNED_FILE_CAP: u64 = 1 << 30;

/// Arguments of `ztrs idtool`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdtoolArgs {
    #[command(subcommand)]
    verb: Verb,
}

/// The same verbs as a standalone program, for the `zerotier-idtool` name.
#[derive(Debug, Parser)]
#[command(
    name = "zerotier-idtool",
    version,
    about = "ZeroTier identity and world tool"
)]
struct Standalone {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Generate an identity; print the secret form, or write the secret (0600) and public
    /// files. A vanity hex prefix makes it search for an address starting with it.
    Generate {
        secret_file: Option<PathBuf>,
        public_file: Option<PathBuf>,
        vanity: Option<String>,
    },
    /// Check an identity's proof of work (and that a secret matches its public key).
    Validate {
        /// Identity string, or a file holding one.
        identity: OsString,
    },
    /// Print the public form of an identity.
    Getpublic {
        /// Identity string, or a file holding one.
        identity: OsString,
    },
    /// Sign a file; prints the 96-byte signature as hex.
    Sign {
        /// Secret identity string, or a file holding one.
        identity: OsString,
        file: PathBuf,
    },
    /// Verify a file's signature (hex, or a file holding the hex).
    Verify {
        /// Identity string, or a file holding one.
        identity: OsString,
        file: PathBuf,
        signature: OsString,
    },
    /// Print a JSON moon definition template with a fresh signing key for this root.
    Initmoon {
        /// The first root's public identity string, or a file holding one.
        identity: OsString,
    },
    /// Sign a JSON world definition and write `<16-hex id>.moon` in the current directory.
    Genmoon { json_file: PathBuf },
}

/// A failure to report on stderr (exit status 1).
struct Failure(String);

type Outcome = Result<(), Failure>;

fn fail<T>(message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(message.into()))
}

/// Runs `ztrs idtool <verb> ...`.
pub(crate) fn run(args: IdtoolArgs) -> ExitCode {
    finish(execute(args.verb))
}

/// Runs with the full `argv` when the binary is invoked as `zerotier-idtool`.
pub(crate) fn main_standalone(argv: Vec<OsString>) -> ExitCode {
    match Standalone::try_parse_from(argv) {
        Ok(cli) => finish(execute(cli.verb)),
        Err(err) => super::usage_error(err),
    }
}

fn finish(outcome: Outcome) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            let _ = writeln!(io::stderr(), "{message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(verb: Verb) -> Outcome {
    match verb {
        Verb::Generate {
            secret_file,
            public_file,
            vanity,
        } => generate(
            secret_file.as_deref(),
            public_file.as_deref(),
            vanity.as_deref(),
        ),
        Verb::Validate { identity } => validate(&identity),
        Verb::Getpublic { identity } => {
            let id = identity_arg(&identity)?;
            print(&id.to_public_string())
        }
        Verb::Sign { identity, file } => sign(&identity, &file),
        Verb::Verify {
            identity,
            file,
            signature,
        } => verify(&identity, &file, &signature),
        Verb::Initmoon { identity } => initmoon(&identity),
        Verb::Genmoon { json_file } => genmoon(&json_file),
    }
}

/// Writes to stdout; a closed stdout is a failure, not a panic.
fn print(text: &str) -> Outcome {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .or_else(|e| fail(format!("cannot write to stdout: {e}")))
}

fn shown(arg: &OsStr) -> String {
    arg.to_string_lossy().into_owned()
}

/// Parses `arg` as an identity string, or else reads it as a file holding one.
fn load_identity(arg: &OsStr) -> Option<Identity> {
    if let Some(text) = arg.to_str()
        && let Ok(id) = text.parse::<Identity>()
    {
        return Some(id);
    }
    let mut bytes = read_bounded(Path::new(arg), IDENTITY_FILE_CAP).ok()?;
    let parsed = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|t| t.parse().ok());
    bytes.zeroize();
    parsed
}

fn identity_arg(arg: &OsStr) -> Result<Identity, Failure> {
    load_identity(arg).ok_or_else(|| {
        Failure(format!(
            "Identity argument invalid or file unreadable: {}",
            shown(arg)
        ))
    })
}

/// Parses a vanity prefix: up to 10 hex digits, matched against the top of the address.
fn parse_vanity(text: &str) -> Result<(u64, u32), Failure> {
    let digits = text.trim();
    if digits.is_empty() || digits.len() > 10 {
        return fail(format!("vanity prefix must be 1 to 10 hex digits: {text}"));
    }
    let value = u64::from_str_radix(digits, 16)
        .or_else(|_| fail(format!("vanity prefix must be hex: {text}")))?;
    Ok((value, 4 * digits.len() as u32))
}

fn generate(
    secret_file: Option<&Path>,
    public_file: Option<&Path>,
    vanity: Option<&str>,
) -> Outcome {
    let vanity = vanity.map(parse_vanity).transpose()?;
    let interactive = io::stderr().is_terminal();
    let mut keys_tried = 0u64;
    let id = loop {
        let before = keys_tried;
        let id = Identity::generate_with_progress(|tries| {
            keys_tried = before + u64::from(tries);
            if interactive {
                let _ = write!(
                    io::stderr(),
                    "\rgenerating identity: {keys_tried} keys tried"
                );
            }
        });
        let address = id.address().to_u64();
        match vanity {
            None => break id,
            Some((prefix, bits)) if address >> (40 - bits) == prefix => break id,
            Some((prefix, bits)) => {
                if interactive {
                    let _ = write!(
                        io::stderr(),
                        "\rvanity address: tried {} looking for first {bits} bits of {:010x}",
                        id.address(),
                        prefix << (40 - bits)
                    );
                }
            }
        }
    };
    if interactive {
        let _ = writeln!(io::stderr());
    }
    if vanity.is_some() {
        let _ = writeln!(io::stderr(), "vanity address: found {} !", id.address());
    }
    let _ = writeln!(
        io::stderr(),
        "generated identity {} ({keys_tried} keys tried)",
        id.address()
    );

    let mut secret = id.to_secret_string();
    let outcome = match secret_file {
        None => print(&secret),
        Some(path) => write_identity(path, &secret, true).and_then(|()| match public_file {
            None => Ok(()),
            Some(path) => write_identity(path, &id.to_public_string(), false),
        }),
    };
    secret.zeroize();
    outcome
}

fn write_identity(path: &Path, text: &str, secret: bool) -> Outcome {
    match write_file(path, text.as_bytes(), secret) {
        Ok(()) => print(&format!("{} written\n", path.display())),
        Err(e) => fail(format!("Error writing to {}: {e}", path.display())),
    }
}

fn validate(arg: &OsStr) -> Outcome {
    let id = identity_arg(arg)?;
    if id.locally_validate() {
        print(&format!("{} is a valid identity\n", shown(arg)))
    } else {
        fail(format!("{} FAILED validation.", shown(arg)))
    }
}

fn read_signed_file(path: &Path) -> Result<Vec<u8>, Failure> {
    read_bounded(path, SIGNED_FILE_CAP)
        .or_else(|_| fail(format!("{} is not readable", path.display())))
}

fn sign(identity: &OsStr, file: &Path) -> Outcome {
    let id = identity_arg(identity)?;
    if !id.has_secret() {
        return fail(format!(
            "{} does not contain a private key (must use private to sign)",
            shown(identity)
        ));
    }
    let data = read_signed_file(file)?;
    match id.sign(&data) {
        Some(signature) => print(&hex::encode(&signature)),
        None => fail("signing failed"),
    }
}

/// The signature argument is hex, or else a file holding hex (as in the reference).
fn signature_candidates(arg: &OsStr) -> Vec<Vec<u8>> {
    let mut candidates = Vec::new();
    if let Some(sig) = arg.to_str().and_then(|t| hex::decode(t.trim())) {
        candidates.push(sig);
    }
    if let Ok(bytes) = read_bounded(Path::new(arg), SIGNATURE_FILE_CAP)
        && let Some(sig) = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|t| hex::decode(t.trim()))
    {
        candidates.push(sig);
    }
    candidates
}

fn verify(identity: &OsStr, file: &Path, signature: &OsStr) -> Outcome {
    let id = identity_arg(identity)?;
    let data = read_signed_file(file)?;
    if signature_candidates(signature)
        .iter()
        .any(|sig| id.verify(&data, sig))
    {
        print(&format!("{} signature valid\n", file.display()))
    } else {
        fail(format!("{} signature check FAILED", file.display()))
    }
}

fn initmoon(arg: &OsStr) -> Outcome {
    let Some(root) = load_identity(arg) else {
        return fail(format!("{} is not a valid identity", shown(arg)));
    };
    let mut template = moon_template(&root);
    template.push('\n');
    let outcome = print(&template);
    template.zeroize();
    outcome
}

fn now_ms() -> Result<u64, Failure> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .or_else(|_| fail("the system clock is before 1970"))?;
    u64::try_from(elapsed.as_millis()).or_else(|_| fail("the system clock is out of range"))
}

fn genmoon(json_file: &Path) -> Outcome {
    let mut bytes = read_bounded(json_file, WORLD_JSON_CAP)
        .or_else(|_| fail(format!("cannot read {}", json_file.display())))?;
    let spec = std::str::from_utf8(&bytes)
        .map_err(|_| "invalid JSON: not UTF-8".to_string())
        .and_then(WorldSpec::from_json);
    bytes.zeroize();
    let spec = spec.map_err(|e| Failure(format!("{}: {e}", json_file.display())))?;

    let timestamp = now_ms()?;
    let (name, serialized) = sign_world(&spec, timestamp);
    write_file(Path::new(&name), &serialized, false)
        .or_else(|e| fail(format!("cannot write {name}: {e}")))?;
    print(&format!(
        "wrote {name} (signed world with timestamp {timestamp})\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vanity_prefixes() {
        assert_eq!(parse_vanity("7c").ok(), Some((0x7c, 8)));
        assert!(parse_vanity("").is_err());
        assert!(parse_vanity("12345678901").is_err());
        assert!(parse_vanity("zz").is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Standalone::command().debug_assert();
    }
}
