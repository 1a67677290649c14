//! `strata sql`: SQL against a data directory without a server — read-only, so it can run
//! beside a server writing the same directory (it reads the blocks and replays the WAL in
//! memory, changing nothing on disk). With a query argument it prints the answer and
//! exits; without one it is an interactive prompt (one statement per line, `\q` quits).

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;

use strata_engine::{Engine, EngineOptions};
use strata_storage::{Db, Options};

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum SqlFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per row.
    Json,
}

/// Runs the subcommand; returns the exit code.
pub(crate) fn run(dir: PathBuf, query: Option<String>, format: SqlFormat) -> u8 {
    let Some(rt) = crate::tools::runtime() else {
        return 1;
    };
    rt.block_on(async move {
        let mut opts = Options::new(&dir);
        opts.read_only = true;
        opts.retention_time_ms = None;
        let db = match Db::open(opts).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("strata sql: {}: {e}", dir.display());
                return 1;
            }
        };
        let engine = Arc::new(Engine::new(db, EngineOptions::default()));
        match query {
            Some(q) => u8::from(!one(&engine, &q, format).await),
            None => {
                prompt(&engine, format).await;
                0
            }
        }
    })
}

/// Runs one statement and prints the answer; false on error.
async fn one(engine: &Engine, q: &str, format: SqlFormat) -> bool {
    match engine.sql(q, None).await {
        Ok(out) => {
            let text = match format {
                SqlFormat::Table => {
                    datafusion::arrow::util::pretty::pretty_format_batches(&out.batches)
                        .map(|t| t.to_string())
                        .map_err(|e| e.to_string())
                }
                SqlFormat::Csv => {
                    let mut buf = Vec::new();
                    let r = {
                        let mut w = datafusion::arrow::csv::WriterBuilder::new()
                            .with_header(true)
                            .build(&mut buf);
                        out.batches.iter().try_for_each(|b| w.write(b))
                    };
                    r.map(|()| String::from_utf8_lossy(&buf).into_owned())
                        .map_err(|e| e.to_string())
                }
                SqlFormat::Json => {
                    let mut buf = Vec::new();
                    let r = {
                        let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut buf);
                        let refs: Vec<&_> = out.batches.iter().collect();
                        w.write_batches(&refs).and_then(|()| w.finish())
                    };
                    r.map(|()| String::from_utf8_lossy(&buf).into_owned())
                        .map_err(|e| e.to_string())
                }
            };
            match text {
                Ok(t) => {
                    println!("{}", t.trim_end());
                    true
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    false
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            false
        }
    }
}

async fn prompt(engine: &Engine, format: SqlFormat) {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        print!("strata> ");
        let _ = std::io::stdout().flush();
        let Some(Ok(line)) = lines.next() else {
            println!();
            return;
        };
        let q = line.trim().trim_end_matches(';');
        match q {
            "" => continue,
            "\\q" | "quit" | "exit" => return,
            _ => {
                one(engine, q, format).await;
            }
        }
    }
}
