//! `zebrastream completions SHELL`: print a completion script to stdout.

use clap::Args;
use clap_complete::Shell;

use super::CmdResult;

/// Arguments of `zebrastream completions`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  zebrastream completions bash > ~/.local/share/bash-completion/completions/zebrastream
  zebrastream completions zsh > \"${fpath[1]}/_zebrastream\"
  zebrastream completions fish > ~/.config/fish/completions/zebrastream.fish")]
pub struct CompletionsArgs {
    /// The shell to generate the script for
    #[arg(value_enum)]
    shell: Shell,
}

/// Writes the completion script for `command` to stdout.
pub fn run(args: CompletionsArgs, mut command: clap::Command) -> CmdResult {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, name, &mut script);
    super::output::write_stdout_all(&script)
}
