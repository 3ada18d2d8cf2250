//! `bar-ingest fetch`: arguments checked before any connection, bars streamed to stdout or to a
//! file (written as `FILE.tmp`, then renamed).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono_tz::Tz;
use futures_util::TryStreamExt;

use bar_ingest::config::Settings;
use bar_ingest::fetch::output::{BarWriter, Clock, Format};
use bar_ingest::fetch::range::{ArgError, RangeEnd, parse_time};
use bar_ingest::fetch::{BarStream, FetchError, FetchRequest, Fetcher, Interval, SessionFilter};
use bar_ingest::model::Symbol;
use bar_ingest::store::{self, Schema};

use crate::cli::FetchArgs;
use crate::exit;

/// Output buffer size: few, large writes.
const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;

/// Runs `bar-ingest fetch`; returns the process exit code: 0 when every bar was written (none,
/// for an unknown symbol or an empty range), 2 for an unusable argument (printed to stderr).
pub async fn run(settings: Settings, args: FetchArgs) -> anyhow::Result<ExitCode> {
    let tz = settings.timezone;
    let request = match request_from_args(&args, tz) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(exit::code(exit::CANNOT_RUN));
        }
    };
    let session = Arc::new(store::connect(&settings).await?);
    let schema = Schema::from_config(&settings.database);
    let user = settings.database.user();
    store::check_access(&session, &schema, store::Access::Fetch, user).await?;
    let fetcher = Fetcher::prepare(session, &schema, tz).await?;
    let bars = fetcher.fetch(request)?;
    let clock = if args.utc {
        Clock::Utc
    } else {
        Clock::Exchange(tz)
    };

    let format = Format::from(args.format);
    match &args.output {
        None => {
            let out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, io::stdout());
            match write_bars(bars, BarWriter::new(out, format, clock)).await {
                Ok(_) => Ok(ExitCode::SUCCESS),
                // The reader went away (`| head`): what it wanted was written.
                Err(WriteFailure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e).context("writing to stdout"),
            }
        }
        Some(path) => {
            write_file(path, bars, format, clock).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The request the arguments describe, or the first unusable argument.
fn request_from_args(args: &FetchArgs, tz: Tz) -> Result<FetchRequest, ArgError> {
    let symbol = Symbol::new(args.symbol.trim()).ok_or_else(|| ArgError {
        arg: "SYMBOL",
        value: args.symbol.clone(),
        reason: format!(
            "not a symbol (1 to {} ASCII letters, digits, `.` or `-`, starting with a letter \
             or digit)",
            Symbol::MAX_LEN
        ),
    })?;
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
    Ok(FetchRequest {
        symbol,
        from,
        to,
        session,
        interval,
        concurrency: args.concurrency,
    })
}

/// Why writing the output stopped.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Streams every bar into `writer`, header first; returns the flushed inner writer.
async fn write_bars<W: Write>(
    mut bars: BarStream,
    mut writer: BarWriter<W>,
) -> Result<W, WriteFailure> {
    writer.header()?;
    while let Some(bar) = bars.try_next().await? {
        writer.bar(&bar)?;
    }
    Ok(writer.finish()?)
}

/// Writes `FILE.tmp`, syncs it, and renames it to `FILE`; removes the temporary file on failure,
/// so `FILE` is either complete or untouched.
async fn write_file(
    path: &Path,
    bars: BarStream,
    format: Format,
    clock: Clock,
) -> anyhow::Result<()> {
    let tmp = tmp_path(path);
    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
    let result = async {
        let out = write_bars(bars, BarWriter::new(out, format, clock)).await?;
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
        assert_eq!(Format::from(a.format), Format::Csv);
        assert_eq!(Interval::from(a.interval), Interval::Minute1);
        assert_eq!(a.concurrency, DEFAULT_CONCURRENCY);
        let r = request_from_args(&a, New_York).unwrap();
        assert_eq!(r.symbol.as_str(), "AAPL");
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
        let err = |argv: &[&str]| request_from_args(&args(argv), New_York).unwrap_err();
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
    fn temporary_file_sits_next_to_the_output() {
        assert_eq!(
            tmp_path(Path::new("/x/bars.csv")),
            PathBuf::from("/x/bars.csv.tmp")
        );
    }
}
