//! The `ztrs` binary: every role behind one command line (see `ztrs --help`).

fn main() -> std::process::ExitCode {
    ztrs::cli::main()
}
