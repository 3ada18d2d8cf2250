//! `bar-ingest migrate`: arguments into options, the connection, the schema and permission
//! checks, the run (Ctrl-C/SIGTERM stop it between partitions), the summary and the exit code.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use bar_ingest::cell::Compression;
use bar_ingest::config::Settings;
use bar_ingest::migrate::{self as lib, MigrateError, MigrateOptions, Summary};
use bar_ingest::model::Symbol;
use bar_ingest::store::{self, Access, Schema};
use tokio_util::sync::CancellationToken;

use crate::cli::MigrateArgs;
use crate::exit;

/// Runs `migrate` as `args` say and returns its exit code.
pub async fn run(settings: Settings, args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let options = options(&args)?;
    let db = &settings.database;
    let user = db.user();
    let session = store::connect(&settings).await?;
    let schema = Schema::from_config(db);
    store::ensure_schema(&session, &schema, db.manage_schema, user).await?;
    let left = store::check_schema(&session, &schema).await?;
    if let Some(problem) = left.first() {
        anyhow::bail!(
            "{problem}: migrate needs the bars table and the day table \
             (`bar-ingest init-schema` creates them; `bar-ingest schema` prints the CQL)"
        );
    }
    store::check_access(&session, &schema, Access::Migrate, user).await?;
    let cancel = CancellationToken::new();
    let stop = crate::stop_signals().context("cannot listen for stop signals")?;
    let on_stop = cancel.clone();
    tokio::spawn(async move {
        stop.await;
        eprintln!("bar-ingest migrate: stopping after the partitions in progress");
        on_stop.cancel();
    });
    let verb = if options.verify_only {
        "verifying"
    } else {
        "migrating"
    };
    eprintln!(
        "bar-ingest migrate: {verb} {} into {}",
        schema.bars(),
        schema.days()
    );
    let done = lib::run(
        &session,
        &schema,
        settings.timezone,
        &options,
        db.manage_schema,
        &cancel,
    )
    .await;
    Ok(report(done, &args))
}

/// Prints the summary or the failure; the exit code.
fn report(done: Result<Summary, MigrateError>, args: &MigrateArgs) -> ExitCode {
    match done {
        Ok(s) => {
            print_summary(&s, args.verify_only);
            if s.interrupted {
                let how = if args.restart {
                    "run it again without --restart"
                } else {
                    "run the same command again"
                };
                eprintln!(
                    "bar-ingest migrate: interrupted; {how} to resume (finished partitions are \
                     skipped)"
                );
                exit::code(exit::INTERRUPTED)
            } else {
                exit::code(exit::OK)
            }
        }
        Err(MigrateError::Mismatch(m)) => {
            eprintln!("bar-ingest migrate: {m}");
            exit::code(exit::MISMATCH)
        }
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            exit::code(exit::CANNOT_RUN)
        }
    }
}

fn print_summary(s: &Summary, verify_only: bool) {
    let what = if verify_only {
        "verified"
    } else {
        "migrated and verified"
    };
    println!(
        "{what}: {} partitions ({} selected, {} already done), {} days, {} bars in {:.1} s \
         ({:.0} bars/s); {} days left as they were (a newer cell); {} days emptied by a later \
         delivery",
        s.partitions,
        s.selected,
        s.skipped,
        s.days,
        s.bars,
        s.elapsed.as_secs_f64(),
        s.bars_per_second(),
        s.newer_days,
        s.emptied_days
    );
}

/// The library's options from the arguments.
fn options(args: &MigrateArgs) -> anyhow::Result<MigrateOptions> {
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    let symbols = if args.all {
        None
    } else {
        Some(symbols(&args.symbols, args.symbols_file.as_deref())?)
    };
    Ok(MigrateOptions {
        symbols,
        from: args.from,
        to: args.to,
        verify_only: args.verify_only,
        restart: args.restart,
        concurrency: args.concurrency,
        stop_after: args.stop_after,
        compression: if args.zstd_cells {
            Compression::Zstd { level: 3 }
        } else {
            bar_ingest::cell::DEFAULT_COMPRESSION
        },
    })
}

/// The symbols named, then those of the file (blank lines and `#` comments skipped).
fn symbols(named: &[String], file: Option<&Path>) -> anyhow::Result<Vec<Symbol>> {
    let parse = |raw: &str, at: &str| {
        Symbol::new(raw).with_context(|| format!("{at}: `{raw}` is not a symbol"))
    };
    let mut out = Vec::new();
    for raw in named {
        out.push(parse(raw, "SYMBOL")?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--symbols-file {}", path.display()))?;
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if !entry.is_empty() {
                out.push(parse(entry, &format!("{}:{}", path.display(), i + 1))?);
            }
        }
    }
    anyhow::ensure!(!out.is_empty(), "no symbol named");
    Ok(out)
}
