//! The manual stays true: every config key, every command and option and every metric is
//! documented, the example config parses, every relative link resolves, and the README stays a
//! front page. No database needed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use bar_ingest::config::{KEYS, Settings};

/// The README's budget of lines.
const README_MAX_LINES: usize = 300;

/// Pages other engineers are writing now: a link to one of them is accepted while it does not
/// exist yet (once it exists, it is checked like any other).
const EXPECTED_SOON: &[&str] = &[];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of a Markdown text outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push(line);
        }
    }
    out
}

/// The keys docs/configuration.md documents: a table row whose first cell is `key`, under a
/// heading naming its section as `[section]` (or `[[source]]`; a heading may name several
/// sections that share the table), or whose first cell is the whole `section.key`. A key
/// mentioned only in prose is not documented: a row says its type, default and meaning.
fn documented_keys(page: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut sections: Vec<String> = Vec::new();
    for line in prose_lines(page) {
        if line.starts_with('#') {
            sections = line
                .split("`[")
                .skip(1)
                .filter_map(|s| s.split(']').next())
                .map(|s| s.trim_start_matches('[').to_owned())
                .collect();
        } else if let Some(cell) = line.strip_prefix("| `") {
            let key = cell.split('`').next().unwrap_or_default();
            keys.insert(key.to_owned());
            keys.extend(sections.iter().map(|s| format!("{s}.{key}")));
        }
    }
    keys
}

#[test]
fn every_config_key_is_in_the_configuration_page() {
    let documented = documented_keys(&read("docs/configuration.md"));
    let missing: Vec<&str> = KEYS
        .iter()
        .copied()
        .filter(|k| !documented.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "config keys the parser accepts but docs/configuration.md does not document: {missing:?}"
    );
}

/// The built binary's help: its text, or a panic saying what failed.
fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .args(args)
        .arg("--help")
        .env_remove("BAR_INGEST_CONFIG")
        .env_remove("BAR_INGEST_CONTACT_POINTS")
        .output()
        .expect("run bar-ingest --help");
    assert!(out.status.success(), "bar-ingest {args:?} --help: {out:?}");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The subcommands a help text lists (its `Commands:` block), without clap's `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every `--long-option` a help text names.
fn long_options(help: &str) -> BTreeSet<String> {
    let mut options = BTreeSet::new();
    for (i, _) in help.match_indices("--") {
        let name: String = help[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
            options.insert(format!("--{name}"));
        }
    }
    options
}

/// Whether `text` names `option` whole (not as the start of a longer option).
fn names_option(text: &str, option: &str) -> bool {
    text.match_indices(option).any(|(i, _)| {
        let next = text[i + option.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

#[test]
fn every_command_and_option_is_in_the_command_reference() {
    let page = read("docs/commands.md");
    let top = help(&[]);
    let commands = subcommands(&top);
    assert!(commands.len() >= 8, "too few commands found in:\n{top}");
    let mut missing = Vec::new();
    let mut options = long_options(&top);
    for command in &commands {
        let heading = format!("## `{command}`");
        if !page.lines().any(|l| l.starts_with(&heading)) {
            missing.push(format!("a section `{heading}`"));
        }
        options.extend(long_options(&help(&[command])));
    }
    for option in options {
        if !names_option(&page, &option) {
            missing.push(option);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/commands.md lacks what `bar-ingest --help` lists: {missing:?}"
    );
}

/// The metric names of a Markdown table (rows whose first cell is `bar_ingest_...`).
fn metric_rows(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("| `bar_ingest_"))
        .filter_map(|rest| rest.split('`').next())
        .map(|name| format!("bar_ingest_{name}"))
        .collect()
}

/// deploy/README.md's metric table is checked against the code (src/telemetry/metrics.rs); the
/// operations page's table must list the same metrics.
#[test]
fn the_operations_page_lists_every_metric() {
    let checked = metric_rows(&read("deploy/README.md"));
    let listed = metric_rows(&read("docs/operations.md"));
    assert!(checked.len() > 20, "{checked:?}");
    let missing: Vec<_> = checked.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&checked).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/operations.md's metric table differs from deploy/README.md's: missing {missing:?}, \
         not a metric {unknown:?}"
    );
}

#[test]
fn the_example_config_parses() {
    let path = root().join("config/bar-ingest.example.toml");
    if let Err(e) = Settings::load(&path, None) {
        panic!("{e}");
    }
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown page's headings (a repeated heading gets `-1`, `-2`, ...).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for line in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let base = anchor(title.trim_start_matches('#'));
        let n = seen.entry(base.clone()).or_default();
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of a page's inline links `[text](target)`, outside code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        for (i, _) in line.match_indices("](") {
            if let Some(end) = line[i + 2..].find(')') {
                targets.push(line[i + 2..i + 2 + end].to_owned());
            }
        }
    }
    targets
}

/// What is wrong with one relative link of the page `page` (a path from the repository root).
fn broken(page: &str, target: &str) -> Option<String> {
    let (path, fragment) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        PathBuf::from(page)
    } else {
        let joined = Path::new(page).parent().unwrap_or(Path::new("")).join(path);
        normalize(&joined)
    };
    let shown = file.to_string_lossy().into_owned();
    if !root().join(&file).exists() {
        let soon = EXPECTED_SOON.contains(&shown.as_str());
        return (!soon).then(|| format!("{page}: `{target}`: {shown} does not exist"));
    }
    let is_page = shown.ends_with(".md") && root().join(&file).is_file();
    if fragment.is_empty() || !is_page || anchors(&read(&shown)).contains(fragment) {
        return None;
    }
    Some(format!(
        "{page}: `{target}`: {shown} has no heading `#{fragment}`"
    ))
}

/// `a/b/../c` as `a/c` (the repository root stays the base).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn manual_pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_owned()];
    for entry in std::fs::read_dir(root().join("docs")).expect("docs/") {
        let name = entry.expect("docs/ entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    pages.sort();
    pages
}

#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in manual_pages() {
        for target in link_targets(&read(&page)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            problems.extend(broken(&page, &target));
        }
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_readme_is_a_front_page() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: move detail into docs/"
    );
}
