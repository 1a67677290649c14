//! `strata compact`: the bucket's compactor (see `strata_storage::bucket::compactor`), a
//! separate process as Thanos's compactor is. Exit status: 0 done, 1 failed, 3 another
//! compactor holds the bucket's lease. Prints what the pass did as one JSON line.

use std::path::PathBuf;
use std::time::Duration;

use strata_storage::bucket::compactor::{CompactOptions, run_once};
use strata_storage::error::StorageError;

use crate::flags::Flags;

/// Flags of `strata compact` (Thanos compactor's names where it has them).
#[derive(Debug, clap::Args)]
pub(crate) struct CompactArgs {
    /// Object storage configuration (Thanos's format).
    #[arg(long = "objstore.config-file")]
    objstore_config_file: PathBuf,
    /// How long raw samples are kept in the bucket (0: forever).
    #[arg(long = "retention.resolution-raw", default_value = "0s")]
    retention_raw: String,
    /// How long a replaced block stays readable before it is deleted (nodes and queriers
    /// may still be reading it).
    #[arg(long = "delete-delay", default_value = "48h")]
    delete_delay: String,
    /// How long the lease lasts without renewal (a compactor that dies blocks others this long).
    #[arg(long = "compact.lease-duration", default_value = "5m")]
    lease_duration: String,
    /// Keep running: a pass every --wait-interval (a held lease is waited out).
    #[arg(long = "wait")]
    wait: bool,
    /// Time between passes with --wait.
    #[arg(long = "wait-interval", default_value = "5m")]
    wait_interval: String,
    /// Log level.
    #[arg(long = "log.level", default_value = "info")]
    log_level: String,
}

/// Runs the compactor; returns the exit status.
pub(crate) fn run(args: CompactArgs) -> u8 {
    crate::init_tracing(&args.log_level, true);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strata compact: cannot start the runtime: {e}");
            return 1;
        }
    };
    match rt.block_on(compact(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata compact: {e}");
            1
        }
    }
}

async fn compact(args: CompactArgs) -> Result<u8, String> {
    let ms = |name: &str, v: &str| Flags::duration_ms(name, v);
    let retention = ms("retention.resolution-raw", &args.retention_raw)?;
    let opts = CompactOptions {
        retention_raw_ms: (retention > 0).then_some(retention),
        delete_delay_ms: ms("delete-delay", &args.delete_delay)?,
        lease_duration: Duration::from_millis(
            ms("compact.lease-duration", &args.lease_duration)?.max(1000) as u64,
        ),
        holder: format!(
            "{}-{}-{}",
            hostname(),
            std::process::id(),
            ulid::Ulid::new()
        ),
    };
    let wait_every = Duration::from_millis(ms("wait-interval", &args.wait_interval)?.max(1) as u64);
    let bucket = crate::open_bucket(&args.objstore_config_file, 64 << 20)?;
    loop {
        match run_once(&bucket, &opts).await {
            Ok(report) => {
                println!(
                    "{}",
                    serde_json::to_string(&report).map_err(|e| e.to_string())?
                );
                if !args.wait {
                    return Ok(0);
                }
            }
            Err(StorageError::LeaseHeld { holder, until_ms }) => {
                let msg = format!(
                    "another compactor ({holder}) holds the bucket's lease until {}",
                    strata_api::rfc3339(until_ms, false)
                );
                if !args.wait {
                    eprintln!("strata compact: {msg}");
                    return Ok(3);
                }
                tracing::info!("{msg}; waiting");
            }
            Err(e) if args.wait => tracing::error!(error = %e, "compaction pass failed"),
            Err(e) => return Err(e.to_string()),
        }
        tokio::time::sleep(wait_every).await;
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "strata".into())
}
