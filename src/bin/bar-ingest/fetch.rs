//! `bar-ingest fetch`: arguments checked before any connection, bars of one or more symbols
//! streamed to stdout or to a file (written as `FILE.tmp`, then renamed) as CSV, JSON lines,
//! Parquet or an Arrow IPC stream.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono_tz::Tz;
use futures_util::{StreamExt, TryStreamExt};

use bar_ingest::config::Settings;
use bar_ingest::fetch::columnar::{self, BATCH_ROWS, BatchWriteError, BatchWriter, Columns};
use bar_ingest::fetch::output::{BarWriter, Clock};
use bar_ingest::fetch::range::{ArgError, RangeEnd, parse_time};
use bar_ingest::fetch::{ChunkStream, FetchError, FetchRequest, Fetcher, Interval, SessionFilter};
use bar_ingest::model::Symbol;

use crate::cli::{FetchArgs, OutputKind};
use crate::exit;

/// Output buffer size: few, large writes.
const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;

/// What the arguments ask for, checked: the request, and how to write it.
#[derive(Debug)]
struct Plan {
    request: FetchRequest,
    output: Output,
}

/// How the bars are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// CSV or JSON lines.
    Text {
        format: bar_ingest::fetch::output::Format,
        clock: Clock,
        symbol_column: bool,
    },
    /// Parquet or Arrow IPC.
    Batches {
        format: columnar::BatchFormat,
        columns: Columns,
    },
}

/// Runs `bar-ingest fetch`; returns the process exit code: 0 when every bar was written (none,
/// for an unknown symbol or an empty range), 2 for an unusable argument (printed to stderr).
pub async fn run(settings: Settings, args: FetchArgs) -> anyhow::Result<ExitCode> {
    let tz = settings.timezone;
    let plan = match plan_from_args(&args, tz) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(exit::code(exit::CANNOT_RUN));
        }
    };
    let fetcher = Fetcher::connect(&settings).await?;
    let Plan { request, output } = plan;

    match &args.output {
        None => {
            let out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, io::stdout());
            match write_output(&fetcher, request, output, out).await {
                Ok(_) => Ok(ExitCode::SUCCESS),
                // The reader went away (`| head`): what it wanted was written.
                Err(e) if e.is_broken_pipe() => Ok(ExitCode::SUCCESS),
                Err(e) => Err(e).context("writing to stdout"),
            }
        }
        Some(path) => {
            write_file(path, &fetcher, request, output).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The request and output the arguments describe, or the first unusable argument.
fn plan_from_args(args: &FetchArgs, tz: Tz) -> Result<Plan, ArgError> {
    let symbols = symbols_from_args(args)?;
    let from = parse_time(RangeEnd::From, &args.from, tz)?;
    let to = parse_time(RangeEnd::To, &args.to, tz)?;
    if from > to {
        return Err(ArgError {
            arg: "--from",
            value: args.from.clone(),
            reason: format!("is after --to `{}`", args.to),
        });
    }
    let (session, interval) = (
        SessionFilter::from(args.session),
        Interval::from(args.interval),
    );
    if interval == Interval::Day1 && session == SessionFilter::Extended {
        return Err(ArgError {
            arg: "--interval",
            value: Interval::Day1.name().into(),
            reason: "daily bars come from the regular session only; use --session regular or all"
                .into(),
        });
    }
    // Several symbols asked for (or a list of them): say which symbol each bar is.
    let symbol_column = symbols.len() > 1 || args.symbols_file.is_some();
    let output = match OutputKind::from(args.format) {
        OutputKind::Text(format) => Output::Text {
            format,
            clock: if args.utc {
                Clock::Utc
            } else {
                Clock::Exchange(tz)
            },
            symbol_column,
        },
        OutputKind::Batches(format) => {
            if args.output.is_none() && io::stdout().is_terminal() {
                return Err(ArgError {
                    arg: "--format",
                    value: format!("{:?}", args.format).to_lowercase(),
                    reason: "is binary and stdout is a terminal; write it with --output FILE or \
                             into a pipe"
                        .into(),
                });
            }
            Output::Batches {
                format,
                columns: Columns {
                    zone: args.exchange_time.then_some(tz),
                    symbol: symbol_column,
                },
            }
        }
    };
    let mut request = FetchRequest::symbols(symbols, from, to);
    request.session = session;
    request.interval = interval;
    request.concurrency = args.concurrency;
    Ok(Plan { request, output })
}

/// The symbols given as arguments and those of `--symbols-file`, each checked.
fn symbols_from_args(args: &FetchArgs) -> Result<Vec<Symbol>, ArgError> {
    let mut symbols = Vec::new();
    for raw in &args.symbols {
        symbols.push(parse_symbol("SYMBOL", raw, raw)?);
    }
    if let Some(path) = &args.symbols_file {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ArgError {
            arg: "--symbols-file",
            value: shown.clone(),
            reason: format!("cannot be read: {e}"),
        })?;
        let before = symbols.len();
        for (i, line) in text.lines().enumerate() {
            let entry = line.split('#').next().unwrap_or("").trim();
            if !entry.is_empty() {
                let at = format!("{shown}:{}", i + 1);
                symbols.push(parse_symbol("--symbols-file", &at, entry)?);
            }
        }
        if symbols.len() == before {
            return Err(ArgError {
                arg: "--symbols-file",
                value: shown,
                reason: "lists no symbol".into(),
            });
        }
    }
    Ok(symbols)
}

/// One symbol, or an error naming the argument and where the text came from.
fn parse_symbol(arg: &'static str, at: &str, raw: &str) -> Result<Symbol, ArgError> {
    Symbol::new(raw.trim()).ok_or_else(|| ArgError {
        arg,
        value: if at == raw {
            raw.to_owned()
        } else {
            format!("{at}: {raw}")
        },
        reason: format!(
            "not a symbol (1 to {} ASCII letters, digits, `.` or `-`, starting with a letter \
             or digit)",
            Symbol::MAX_LEN
        ),
    })
}

/// Why writing the output stopped.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Batches(#[from] BatchWriteError),
}

impl WriteFailure {
    /// True when the reader of stdout went away.
    fn is_broken_pipe(&self) -> bool {
        match self {
            Self::Io(e) => e.kind() == io::ErrorKind::BrokenPipe,
            Self::Batches(e) => e.is_broken_pipe(),
            Self::Fetch(_) => false,
        }
    }
}

/// Fetches `request` and streams every bar into `out` as `output` says; returns the flushed
/// writer.
async fn write_output<W: Write + Send>(
    fetcher: &Fetcher,
    request: FetchRequest,
    output: Output,
    out: W,
) -> Result<W, WriteFailure> {
    match output {
        Output::Text {
            format,
            clock,
            symbol_column,
        } => {
            let mut writer = BarWriter::new(out, format, clock);
            if symbol_column {
                writer = writer.with_symbol_column();
            }
            write_text(fetcher.fetch_chunks(request)?, writer).await
        }
        Output::Batches { format, columns } => {
            let mut writer = BatchWriter::new(out, format, &columns.schema())?;
            let mut batches = fetcher.record_batches(request, columns, BATCH_ROWS)?;
            while let Some(batch) = batches.next().await {
                writer.write(&batch?)?;
            }
            let mut out = writer.finish()?;
            out.flush()?;
            Ok(out)
        }
    }
}

/// Streams every chunk into `writer`, header first; returns the flushed inner writer.
async fn write_text<W: Write>(
    mut chunks: ChunkStream,
    mut writer: BarWriter<W>,
) -> Result<W, WriteFailure> {
    writer.header()?;
    while let Some(chunk) = chunks.try_next().await? {
        writer.chunk(&chunk)?;
    }
    Ok(writer.finish()?)
}

/// Writes `FILE.tmp`, syncs it, and renames it to `FILE`; removes the temporary file on failure,
/// so `FILE` is either complete or untouched.
async fn write_file(
    path: &Path,
    fetcher: &Fetcher,
    request: FetchRequest,
    output: Output,
) -> anyhow::Result<()> {
    let tmp = tmp_path(path);
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
    let result = async {
        let out = write_output(fetcher, request, output, out).await?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok::<_, WriteFailure>(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    Ok(())
}

/// `FILE.tmp` next to `FILE`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bar_ingest::fetch::DEFAULT_CONCURRENCY;
    use chrono_tz::America::New_York;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Harness {
        #[command(flatten)]
        args: FetchArgs,
    }

    fn args(argv: &[&str]) -> FetchArgs {
        Harness::try_parse_from(std::iter::once("fetch").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn defaults_and_parsing() {
        let a = args(&["aapl", "--from", "2024-01-02", "--to", "2024-01-31"]);
        assert_eq!(SessionFilter::from(a.session), SessionFilter::All);
        assert_eq!(
            OutputKind::from(a.format),
            OutputKind::Text(bar_ingest::fetch::output::Format::Csv)
        );
        assert_eq!(Interval::from(a.interval), Interval::Minute1);
        assert_eq!(a.concurrency, DEFAULT_CONCURRENCY);
        let p = plan_from_args(&a, New_York).unwrap();
        assert_eq!(p.request.symbols, [Symbol::new("AAPL").unwrap()]);
        assert!(matches!(
            p.output,
            Output::Text {
                symbol_column: false,
                ..
            }
        ));
        let a = args(&[
            "X",
            "--from",
            "2024-01-02",
            "--to",
            "2024-01-02",
            "--interval",
            "15m",
            "--session",
            "regular",
            "--format",
            "jsonl",
            "--concurrency",
            "1",
        ]);
        assert_eq!(Interval::from(a.interval), Interval::Minutes15);
        assert_eq!(a.concurrency, 1);
    }

    #[test]
    fn unusable_arguments_are_named() {
        let err = |argv: &[&str]| plan_from_args(&args(argv), New_York).unwrap_err();
        assert_eq!(
            err(&["X", "--from", "2024-02-30", "--to", "2024-03-01"]).arg,
            "--from"
        );
        assert_eq!(
            err(&["X", "--from", "2024-02-01", "--to", "soon"]).arg,
            "--to"
        );
        let e = err(&["X", "--from", "2024-02-02", "--to", "2024-02-01"]);
        assert_eq!(e.arg, "--from");
        assert!(e.to_string().contains("after --to"), "{e}");
        assert_eq!(
            err(&["A B", "--from", "2024-02-01", "--to", "2024-02-01"]).arg,
            "SYMBOL"
        );
        let e = err(&[
            "X",
            "--from",
            "2024-02-01",
            "--to",
            "2024-02-01",
            "--interval",
            "1d",
            "--session",
            "extended",
        ]);
        assert_eq!(e.arg, "--interval");
        assert!(
            Harness::try_parse_from([
                "fetch",
                "X",
                "--from",
                "a",
                "--to",
                "b",
                "--concurrency",
                "0"
            ])
            .is_err()
        );
    }

    #[test]
    fn several_symbols_and_a_symbols_file_add_the_symbol_column() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("symbols.txt");
        std::fs::write(&list, "# the desk's list\nmsft\n\n  BRK.B  # Berkshire\n").unwrap();
        let list_arg = list.to_str().unwrap();
        let range = ["--from", "2024-01-02", "--to", "2024-01-03"];
        let plan =
            |argv: &[&str]| plan_from_args(&args(&[argv, &range[..]].concat()), New_York).unwrap();
        let p = plan(&["AAPL", "--symbols-file", list_arg, "--format", "jsonl"]);
        let names: Vec<&str> = p.request.symbols.iter().map(Symbol::as_str).collect();
        assert_eq!(names, ["AAPL", "MSFT", "BRK.B"]);
        assert!(matches!(
            p.output,
            Output::Text {
                symbol_column: true,
                ..
            }
        ));
        // A file alone, even of one symbol, still says which symbol each bar is.
        let one = dir.path().join("one.txt");
        std::fs::write(&one, "AAPL\n").unwrap();
        let p = plan(&["--symbols-file", one.to_str().unwrap()]);
        assert!(matches!(
            p.output,
            Output::Text {
                symbol_column: true,
                ..
            }
        ));
        let p = plan(&["AAPL", "MSFT", "--format", "parquet", "-o", "x.parquet"]);
        assert_eq!(
            p.output,
            Output::Batches {
                format: columnar::BatchFormat::Parquet,
                columns: Columns {
                    zone: None,
                    symbol: true
                },
            }
        );
        let p = plan(&["AAPL", "--format", "arrow", "-o", "x", "--exchange-time"]);
        assert_eq!(
            p.output,
            Output::Batches {
                format: columnar::BatchFormat::ArrowIpc,
                columns: Columns {
                    zone: Some(New_York),
                    symbol: false
                },
            }
        );
    }

    #[test]
    fn a_bad_symbols_file_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let range = ["--from", "2024-01-02", "--to", "2024-01-03"];
        let err = |argv: &[&str]| {
            plan_from_args(&args(&[argv, &range[..]].concat()), New_York).unwrap_err()
        };
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, "AAPL\nnot a symbol\n").unwrap();
        let e = err(&["--symbols-file", bad.to_str().unwrap()]);
        assert_eq!(e.arg, "--symbols-file");
        assert!(e.to_string().contains("bad.txt:2: not a symbol"), "{e}");
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# nothing\n\n").unwrap();
        let e = err(&["--symbols-file", empty.to_str().unwrap()]);
        assert!(e.to_string().contains("lists no symbol"), "{e}");
        let e = err(&[
            "--symbols-file",
            dir.path().join("missing").to_str().unwrap(),
        ]);
        assert!(e.to_string().contains("cannot be read"), "{e}");
        // Neither a SYMBOL nor a file: clap refuses.
        assert!(Harness::try_parse_from(["fetch", "--from", "a", "--to", "b"]).is_err());
    }

    #[test]
    fn temporary_file_sits_next_to_the_output() {
        assert_eq!(
            tmp_path(Path::new("/x/bars.csv")),
            PathBuf::from("/x/bars.csv.tmp")
        );
    }
}
