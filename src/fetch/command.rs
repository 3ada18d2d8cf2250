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

use super::output::{BarWriter, Clock, Format};
use super::range::{ArgError, RangeEnd, parse_time};
use super::{
    BarStream, DEFAULT_CONCURRENCY, FetchRequest, Fetcher, Interval, MAX_CONCURRENCY, SessionFilter,
};
use crate::config::Settings;
use crate::model::Symbol;
use crate::store::{self, Schema};

/// Exit code for an unusable argument (as clap uses for its own usage errors).
const EXIT_USAGE: u8 = 2;
/// Output buffer size: few, large writes.
const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;

/// Arguments of `bar-ingest fetch`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Times: YYYY-MM-DD (--from: start of that day; --to: the whole day), \
    \"YYYY-MM-DD HH:MM[:SS]\" in exchange time (input.timezone), or RFC 3339 with an offset \
    (2024-03-08T14:30:00Z). Both ends are inclusive."
)]
pub struct FetchArgs {
    /// Ticker symbol, as in the file names (AAPL, BRK.B).
    #[arg(value_name = "SYMBOL")]
    pub symbol: String,

    /// First bar time included.
    #[arg(long, value_name = "T")]
    pub from: String,

    /// Last bar time included.
    #[arg(long, value_name = "T")]
    pub to: String,

    /// Which bars of each day: the regular session (09:30 to 16:00, 13:00 on half days, trading
    /// days only), extended hours (trading days outside it), or all.
    #[arg(long, value_enum, default_value_t = SessionFilter::All)]
    pub session: SessionFilter,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,

    /// Bar length: one-minute bars as stored, or aggregated (intraday bins aligned to 09:30;
    /// 1d from the regular session only).
    #[arg(long, value_enum, default_value_t = Interval::Minute1)]
    pub interval: Interval,

    /// Timestamps in UTC (RFC 3339) instead of exchange time.
    #[arg(long)]
    pub utc: bool,

    /// Write to FILE (via FILE.tmp, renamed when complete) instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Month buckets queried at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
}

fn parse_concurrency(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!("expected a number from 1 to {MAX_CONCURRENCY}")),
    }
}

/// Runs `bar-ingest fetch`; returns the process exit code: 0 when every bar was written (none,
/// for an unknown symbol or an empty range), 2 for an unusable argument (printed to stderr).
pub async fn cli_main(settings: Settings, args: FetchArgs) -> anyhow::Result<ExitCode> {
    let tz = settings.timezone;
    let request = match request_from_args(&args, tz) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bar-ingest: error: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let session = Arc::new(store::connect(&settings).await?);
    let schema = Schema::from_config(&settings.database);
    let fetcher = Fetcher::prepare(session, &schema, tz).await?;
    let bars = fetcher.fetch(request)?;
    let clock = if args.utc {
        Clock::Utc
    } else {
        Clock::Exchange(tz)
    };

    match &args.output {
        None => {
            let out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, io::stdout());
            match write_bars(bars, BarWriter::new(out, args.format, clock)).await {
                Ok(_) => Ok(ExitCode::SUCCESS),
                // The reader went away (`| head`): what it wanted was written.
                Err(WriteFailure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Err(e).context("writing to stdout"),
            }
        }
        Some(path) => {
            write_file(path, bars, args.format, clock).await?;
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
    if args.interval == Interval::Day1 && args.session == SessionFilter::Extended {
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
        session: args.session,
        interval: args.interval,
        concurrency: args.concurrency,
    })
}

/// Why writing the output stopped.
#[derive(Debug, thiserror::Error)]
enum WriteFailure {
    #[error(transparent)]
    Fetch(#[from] super::FetchError),
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
        assert_eq!(a.session, SessionFilter::All);
        assert_eq!(a.format, Format::Csv);
        assert_eq!(a.interval, Interval::Minute1);
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
        assert_eq!(a.interval, Interval::Minutes15);
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
