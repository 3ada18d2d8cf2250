//! The man page and the shell completions, generated from the command line's definition (so
//! they never drift from `--help`).

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// Writes the manual page: `bar-ingest(1)` with every command's section appended.
pub fn man_page(out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    // One section per command here, rather than pages bar-ingest-run(1) ... that are not
    // installed.
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"COMMAND: {}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(format!("bar-ingest {name}"));
        let sub_man = clap_mangen::Man::new(sub);
        sub_man.render_synopsis_section(out)?;
        sub_man.render_description_section(out)?;
        sub_man.render_options_section(out)?;
    }
    man.render_version_section(out)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes the completion script of `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    clap_complete::generate(shell, &mut Cli::command(), "bar-ingest", out);
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
