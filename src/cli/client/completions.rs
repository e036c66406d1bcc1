//! `ztrs completions <bash|zsh|fish>`: shell completion scripts generated from the clap
//! definition of the whole `ztrs` command line, printed to stdout for the user to install.

use std::process::ExitCode;

use super::output;

/// The shells we generate completions for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Arguments of `ztrs completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to generate the completion script for
    shell: Shell,
}

/// The completion script for `command` (named `name`) in `shell`.
pub(crate) fn script(shell: Shell, command: &mut clap::Command, name: &str) -> String {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Generated into memory first: a closed stdout must not turn into a panic.
    let mut buffer = Vec::new();
    clap_complete::generate(generator, command, name, &mut buffer);
    String::from_utf8_lossy(&buffer).into_owned()
}

/// Prints the script for `args.shell`.
pub(crate) fn run(args: &CompletionsArgs, mut command: clap::Command) -> ExitCode {
    let name = command.get_name().to_owned();
    output::out(&script(args.shell, &mut command, &name));
    ExitCode::SUCCESS
}
