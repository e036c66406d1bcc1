//! `cli`: the `ztrs` command line. A thin dispatcher: it parses the top level with clap and
//! hands each subcommand to its own module, which owns its arguments, output and exit codes.
//!
//! The binary also answers to the names of the reference tools: invoked through a file (or
//! symlink) named `zerotier-idtool` it behaves as `ztrs idtool`, named `zerotier-one` as
//! `ztrs service`, and named `zerotier-cli` as the client verbs (`ztrs info`, ...).

mod client;
mod demo;
mod files;
mod flood;
mod idtool;
mod moon;
mod root;
mod service;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// `ztrs`: a ZeroTier-V1-compatible node, root and controller.
#[derive(Debug, Parser)]
#[command(name = "ztrs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Identity, signature and world (planet/moon) tool, compatible with `zerotier-idtool`.
    Idtool(idtool::IdtoolArgs),
    /// Run a planet or moon root from a home directory (identity.secret and a world file).
    Root(root::RootArgs),
    /// Run a private underlay on 127.0.0.1 (root, alice, bob) and report relay vs direct.
    Demo(demo::DemoArgs),
    /// Run the node daemon from a home directory (as `zerotier-one [-p<port>] [-U] [home]`).
    Service(service::ServiceArgs),
    /// Print a shell completion script for ztrs.
    Completions(client::completions::CompletionsArgs),
    /// Send hostile traffic at a node (hardening checks; see `ztrs::flood`).
    #[command(hide = true)]
    Flood(flood::FloodArgs),
    #[command(flatten)]
    Client(client::Verb),
}

/// Entry point of the `ztrs` binary.
pub fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    if invoked_as(&argv, "zerotier-idtool") {
        return idtool::main_standalone(argv);
    }
    if invoked_as(&argv, "zerotier-one") {
        return service::main_standalone(argv);
    }
    if invoked_as(&argv, "zerotier-cli") {
        return client::main_standalone(argv);
    }
    match Cli::try_parse_from(argv) {
        Ok(cli) => match cli.command {
            Command::Idtool(args) => idtool::run(args),
            Command::Root(args) => root::run(args),
            Command::Demo(args) => demo::run(args),
            Command::Service(args) => service::run(args),
            Command::Completions(args) => client::completions::run(&args, Cli::command()),
            Command::Flood(args) => flood::run(args),
            Command::Client(verb) => client::run("ztrs", verb),
        },
        Err(err) => usage_error(err),
    }
}

/// True when `argv[0]`'s file name (without an `.exe` suffix) is `name`.
fn invoked_as(argv: &[OsString], name: &str) -> bool {
    argv.first()
        .and_then(|arg0| Path::new(arg0).file_stem())
        .is_some_and(|stem| stem == name)
}

/// Reports a clap error: help and version go to stdout with status 0; real usage errors go to
/// stderr with status 1 (the reference tools' convention, rather than clap's 2).
pub(crate) fn usage_error(err: clap::Error) -> ExitCode {
    // Nothing useful can be done if the terminal is gone.
    let _ = err.print();
    if err.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv0_dispatch() {
        let argv = |s: &str| vec![OsString::from(s), OsString::from("validate")];
        assert!(invoked_as(&argv("zerotier-idtool"), "zerotier-idtool"));
        assert!(invoked_as(
            &argv("/usr/sbin/zerotier-idtool"),
            "zerotier-idtool"
        ));
        assert!(invoked_as(&argv("zerotier-idtool.exe"), "zerotier-idtool"));
        assert!(!invoked_as(&argv("ztrs"), "zerotier-idtool"));
        assert!(!invoked_as(&[], "zerotier-idtool"));
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
