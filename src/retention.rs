//! `storage.tsdb.downsample` and `storage.tsdb.retention_rules` of the configuration file
//! as storage options (read at start; see the README's "Downsampling and retention").

use strata_storage::{DownsampleOptions, Options, RetentionRule};

/// Sets `opts.downsample` and `opts.retention_rules` from `config`; errors name the field.
pub(crate) fn apply(config: &strata_config::Config, opts: &mut Options) -> Result<(), String> {
    let Some(tsdb) = config.storage.tsdb.as_ref() else {
        return Ok(());
    };
    let ms = |d: strata_config::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if let Some(d) = &tsdb.downsample {
        let after = ms(d.after);
        // A block that old gets no more data: out-of-order samples reach back at most
        // the window, and the head holds a block range and a half.
        let floor = opts.ooo_window_ms.max(0) + 2 * opts.block_range_ms;
        if after < floor {
            return Err(format!(
                "storage.tsdb.downsample.after: {} is less than the out-of-order window plus two block ranges ({}h): blocks that young may still change",
                d.after,
                floor / 3_600_000
            ));
        }
        if let Some(ret) = opts.retention_time_ms
            && after >= ret
        {
            tracing::warn!(
                after = %d.after,
                "storage.tsdb.downsample.after is not less than --storage.tsdb.retention.time: raw blocks are deleted before they are downsampled"
            );
        }
        opts.downsample = Some(DownsampleOptions {
            after_ms: after,
            retention_5m_ms: d.retention_5m.map(ms),
            retention_1h_ms: d.retention_1h.map(ms),
        });
    }
    for (i, r) in tsdb.retention_rules.iter().enumerate() {
        let selectors = r
            .matchers
            .iter()
            .map(|s| {
                strata_api::parse_selector(s)
                    .map_err(|e| format!("storage.tsdb.retention_rules[{i}].matchers: {s:?}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        opts.retention_rules.push(RetentionRule {
            selectors,
            raw_ms: r.raw.map(ms),
            retention_5m_ms: r.retention_5m.map(ms),
            retention_1h_ms: r.retention_1h.map(ms),
        });
    }
    Ok(())
}

/// Checks the sections of a reloaded `config`; they act from the next start, so a change
/// is warned about.
pub(crate) fn check_reload(
    config: &strata_config::Config,
    running: &Options,
) -> Result<(), String> {
    let mut next = running.clone();
    next.downsample = None;
    next.retention_rules = Vec::new();
    apply(config, &mut next)?;
    let seen = |o: &Options| format!("{:?} {:?}", o.downsample, o.retention_rules);
    if seen(&next) != seen(running) {
        tracing::warn!(
            "storage.tsdb.downsample and storage.tsdb.retention_rules changed: they take effect at the next start"
        );
    }
    Ok(())
}
