//! The `zerotier-cli` compatible client: the verbs that talk to a running daemon over its
//! local JSON API (`info`, `listpeers`, `peers`, `listnetworks`, `join`, `leave`, `set`,
//! `get`, `listmoons`, `orbit`, `deorbit`, and our `controller ...`). They run as
//! `ztrs <verb> [switches]`, or through a file named `zerotier-cli` with the reference's
//! command line: `zerotier-cli [-switches] <command/path> [<args>]`.
//!
//! This module owns the verbs' command-line shape and dispatch; each verb group (and the
//! HTTP client, the session, the output rules) lives in its own file. Output lines, messages
//! and exit codes are the reference's (see docs/cli.md for the few deliberate differences).

pub(crate) mod completions;
mod controller;
pub(in crate::cli) mod http;
mod moons;
mod networks;
mod output;
mod peers;
mod session;
mod status;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use self::session::{ConnectionArgs, Session};

/// A verb that needs only the connection switches.
#[derive(Debug, clap::Args)]
pub(crate) struct Plain {
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// A verb on one network.
#[derive(Debug, clap::Args)]
pub(crate) struct OnNetwork {
    /// Network ID (16 hex digits)
    #[arg(value_name = "NETWORK_ID")]
    nwid: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `set <network ID> <setting>=<value>`.
#[derive(Debug, clap::Args)]
pub(crate) struct SetArgs {
    /// Network ID (16 hex digits)
    #[arg(value_name = "NETWORK_ID")]
    nwid: String,
    /// allowManaged, allowGlobal, allowDefault or allowDNS = 1|0|true|false
    #[arg(value_name = "SETTING=VALUE")]
    assignment: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `get <network ID> <property>`.
#[derive(Debug, clap::Args)]
pub(crate) struct GetArgs {
    /// Network ID (16 hex digits)
    #[arg(value_name = "NETWORK_ID")]
    nwid: String,
    /// A field of `-j listnetworks`, or ip, ip4, ip6, ip6plane, ip6prefix
    #[arg(value_name = "PROPERTY")]
    property: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `orbit <world ID> <seed>`.
#[derive(Debug, clap::Args)]
pub(crate) struct OrbitArgs {
    /// Moon world ID (hex)
    #[arg(value_name = "WORLD_ID")]
    world_id: String,
    /// Address of any root of the moon (hex)
    #[arg(value_name = "SEED")]
    seed: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `deorbit <world ID>`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeorbitArgs {
    /// Moon world ID (hex)
    #[arg(value_name = "WORLD_ID")]
    world_id: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// `controller ...`.
#[derive(Debug, clap::Args)]
pub(crate) struct ControllerArgs {
    #[command(subcommand)]
    command: controller::ControllerCommand,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// The client verbs (subcommands of `ztrs`, and of `zerotier-cli`).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum Verb {
    /// Display status info (of a running daemon)
    #[command(alias = "status")]
    Info(Plain),
    /// List all peers
    Listpeers(Plain),
    /// List all peers (prettier)
    Peers(Plain),
    /// List all networks
    Listnetworks(Plain),
    /// Join a network
    Join(OnNetwork),
    /// Leave a network
    Leave(OnNetwork),
    /// Set a network setting
    Set(SetArgs),
    /// Get a network setting
    Get(GetArgs),
    /// List moons (federated root sets)
    Listmoons(Plain),
    /// Join a moon via any member root
    Orbit(OrbitArgs),
    /// Leave a moon
    Deorbit(DeorbitArgs),
    /// Manage this node's network controller (networks and members)
    Controller(ControllerArgs),
}

impl Verb {
    fn connection(&self) -> &ConnectionArgs {
        match self {
            Verb::Info(a) | Verb::Listpeers(a) | Verb::Peers(a) | Verb::Listnetworks(a) => {
                &a.connection
            }
            Verb::Listmoons(a) => &a.connection,
            Verb::Join(a) | Verb::Leave(a) => &a.connection,
            Verb::Set(a) => &a.connection,
            Verb::Get(a) => &a.connection,
            Verb::Orbit(a) => &a.connection,
            Verb::Deorbit(a) => &a.connection,
            Verb::Controller(a) => &a.connection,
        }
    }
}

/// Runs a verb; `program` prefixes the messages about a missing port or token.
pub(crate) fn run(program: &str, verb: Verb) -> ExitCode {
    let session = match Session::open(program, verb.connection()) {
        Ok(session) => session,
        Err(code) => return ExitCode::from(code),
    };
    let code = match &verb {
        Verb::Info(_) => status::info(&session),
        Verb::Listpeers(_) => peers::listpeers(&session),
        Verb::Peers(_) => peers::peers(&session),
        Verb::Listnetworks(_) => networks::listnetworks(&session),
        Verb::Join(a) => networks::join(&session, &a.nwid),
        Verb::Leave(a) => networks::leave(&session, &a.nwid),
        Verb::Set(a) => networks::set(&session, &a.nwid, &a.assignment),
        Verb::Get(a) => networks::get(&session, &a.nwid, &a.property),
        Verb::Listmoons(_) => moons::listmoons(&session),
        Verb::Orbit(a) => moons::orbit(&session, &a.world_id, &a.seed),
        Verb::Deorbit(a) => moons::deorbit(&session, &a.world_id),
        Verb::Controller(a) => controller::run(&session, &a.command),
    };
    ExitCode::from(code)
}

/// The reference's switch list, for `zerotier-cli -h` (clap lists them per verb).
const SWITCHES_HELP: &str = "Switches (before or after the command):
  -j          Display full raw JSON output
  -D<path>    ZeroTier home path for parameter auto-detect
  -p<port>    HTTP port (default: auto)
  -T<token>   Authentication token (default: auto)
  -v          Show version

A command starting with '/' GETs that API path and prints the answer as it is.";

/// `zerotier-cli`'s top level: a verb, or a raw API path.
#[derive(Debug, Parser)]
#[command(
    name = "zerotier-cli",
    about = "ztrs running as zerotier-cli: talk to the local ZeroTier service",
    override_usage = "zerotier-cli [-switches] <command/path> [<args>]",
    arg_required_else_help = true,
    disable_version_flag = true,
    after_help = SWITCHES_HELP
)]
struct ZerotierCli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CliCommand {
    #[command(flatten)]
    Verb(Verb),
    /// `/<path>`: GET that API path and print the answer as it is.
    #[command(external_subcommand)]
    Path(Vec<OsString>),
}

/// `GET /<path>` with the connection switches (`zerotier-cli /status`).
#[derive(Debug, Parser)]
#[command(name = "zerotier-cli")]
struct RawPath {
    /// An API path starting with '/'
    path: String,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// Puts the switches written before the verb after it (`zerotier-cli -j -D/x info` is
/// parsed as `info -j -D/x`). As in the reference, a switch before the verb carries its
/// value in the same word (`-p9993`), so each one moves as a single word.
fn switches_after_verb(argv: Vec<OsString>) -> Vec<OsString> {
    let mut words = argv.into_iter();
    let program = words.next();
    let mut leading = Vec::new();
    let mut rest = Vec::new();
    for word in words.by_ref() {
        if word.to_string_lossy().starts_with('-') {
            leading.push(word);
        } else {
            rest.push(word);
            break;
        }
    }
    rest.extend(leading);
    rest.extend(words);
    program.into_iter().chain(rest).collect()
}

/// The binary invoked as `zerotier-cli`.
pub(crate) fn main_standalone(argv: Vec<OsString>) -> ExitCode {
    let program = argv.first().map_or_else(
        || "zerotier-cli".to_owned(),
        |p| p.to_string_lossy().into_owned(),
    );
    let words: Vec<String> = argv
        .iter()
        .skip(1)
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    if words.iter().any(|w| w == "-v") {
        output::out(&format!("{}\n", env!("CARGO_PKG_VERSION")));
        return ExitCode::SUCCESS;
    }
    let leading_help = words
        .iter()
        .take_while(|w| w.starts_with('-'))
        .any(|w| matches!(w.as_str(), "-h" | "--help" | "-?"));
    if leading_help {
        output::out(&ZerotierCli::command().render_help().to_string());
        return ExitCode::SUCCESS;
    }
    match ZerotierCli::try_parse_from(switches_after_verb(argv)) {
        Ok(parsed) => match parsed.command {
            CliCommand::Verb(verb) => run(&program, verb),
            CliCommand::Path(words) => raw_path(&program, words),
        },
        Err(err) => crate::cli::usage_error(err),
    }
}

/// `zerotier-cli /<path> [switches]`; any other unknown command is a usage error.
fn raw_path(program: &str, words: Vec<OsString>) -> ExitCode {
    let first = words.first().map(|w| w.to_string_lossy().into_owned());
    match first {
        Some(path) if path.starts_with('/') => {}
        other => {
            let name = other.unwrap_or_default();
            return crate::cli::usage_error(ZerotierCli::command().error(
                clap::error::ErrorKind::InvalidSubcommand,
                format!("unrecognized subcommand '{name}'"),
            ));
        }
    }
    let argv = std::iter::once(OsString::from(program)).chain(words);
    match RawPath::try_parse_from(argv) {
        Ok(parsed) => match Session::open(program, &parsed.connection) {
            Ok(session) => ExitCode::from(status::raw_get(&session, &parsed.path)),
            Err(code) => ExitCode::from(code),
        },
        Err(err) => crate::cli::usage_error(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<OsString> {
        text.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn leading_switches_move_after_the_verb() {
        assert_eq!(
            switches_after_verb(words("zerotier-cli -j -D/x info")),
            words("zerotier-cli info -j -D/x")
        );
        assert_eq!(
            switches_after_verb(words("zerotier-cli -p9993 join 8056c2e21c000001 -j")),
            words("zerotier-cli join -p9993 8056c2e21c000001 -j")
        );
        assert_eq!(
            switches_after_verb(words("zerotier-cli -j")),
            words("zerotier-cli -j")
        );
        assert_eq!(switches_after_verb(vec![]), Vec::<OsString>::new());
    }

    #[test]
    fn zerotier_cli_definition_is_consistent() {
        ZerotierCli::command().debug_assert();
        RawPath::command().debug_assert();
    }

    #[test]
    fn zerotier_cli_parses_reference_command_lines() {
        let parse = |line: &str| ZerotierCli::try_parse_from(switches_after_verb(words(line)));
        let parsed = parse("zerotier-cli -j -D/tmp/h -p9993 -Tsecret listnetworks").unwrap();
        let CliCommand::Verb(Verb::Listnetworks(plain)) = parsed.command else {
            panic!("wrong verb");
        };
        assert!(plain.connection.json);
        assert_eq!(plain.connection.port, Some(9993));
        assert_eq!(plain.connection.token.as_deref(), Some("secret"));
        assert!(parse("zerotier-cli status").is_ok());
        assert!(parse("zerotier-cli set 8056c2e21c000001 allowDNS=1").is_ok());
        assert!(parse("zerotier-cli controller member list 8056c2e21c000001 -j").is_ok());
        assert!(matches!(
            parse("zerotier-cli /status").unwrap().command,
            CliCommand::Path(_)
        ));
        assert!(parse("zerotier-cli -p0 info").is_err());
        assert!(parse("zerotier-cli join").is_err());
        assert!(parse("zerotier-cli").is_err());
    }
}
