//! `ztrs demo`: a private ZeroTier network with real TCP traffic, needing no privileges and
//! no internet. This file owns the arguments, logging and the exit status; the modes live in
//! `userspace` (the default: an in-process [`Lab`](crate::lab::Lab) on 127.0.0.1 with
//! user-space TCP/IP stacks) and `tun` (`--tun`: kernel TCP through TUN interfaces in
//! network namespaces, needs root). Both render through `ui`.

mod report;
mod traffic;
mod tun;
mod ui;
mod userspace;

use std::io::IsTerminal;
use std::process::ExitCode;

/// Default amount of data sent over TCP (64 MiB).
const DEFAULT_BYTES: u64 = 64 << 20;
/// Largest `--bytes` accepted (a demo, not a soak test).
const MAX_BYTES: u64 = 64 << 30;

/// Arguments of `ztrs demo`.
#[derive(Debug, clap::Args)]
pub(crate) struct DemoArgs {
    /// Seed of the nodes' random generators and of the data sent, for a repeatable run;
    /// identities always come from the OS.
    #[arg(long, value_name = "N")]
    pub(crate) seed: Option<u64>,
    /// Print only the summary table (no progress lines, no progress bar).
    #[arg(long)]
    pub(crate) quiet: bool,
    /// Bytes sent over TCP from alice to bob; suffixes K, M, G (powers of 1024).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BYTES, value_parser = parse_size)]
    pub(crate) bytes: u64,
    /// Print the summary as one JSON object on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Kernel TCP through TUN interfaces in network namespaces instead (needs root).
    #[arg(long)]
    pub(crate) tun: bool,
}

/// Runs the demo. Exit status 0 when every step completed, 1 otherwise (the step that
/// failed is named on stderr).
pub(crate) fn run(args: DemoArgs) -> ExitCode {
    init_logging();
    let outcome = if args.tun {
        tun::run(&args)
    } else {
        userspace::run(&args)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failed) => {
            eprintln!("demo failed: {failed}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only when `RUST_LOG` asks for them: the summary is the output.
fn init_logging() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// A byte count with an optional K/M/G suffix (powers of 1024; "KiB"/"MB" spellings too).
fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, suffix) = trimmed.split_at(digits_end);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count (e.g. 512K, 64M, 1G)"))?;
    let shift = match suffix.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        other => return Err(format!("unknown size suffix {other:?} (use K, M or G)")),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .filter(|b| (1..=MAX_BYTES).contains(b))
        .ok_or_else(|| format!("{text:?}: between 1 byte and 64G"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_accept_binary_suffixes() {
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("65G").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }
}
