//! The offline tools of `promtool` and `amtool`, built in: `strata check config FILE...`,
//! `strata check rules FILE...`, `strata test rules FILE...` and
//! `strata check alertmanager-config FILE...`, with promtool's output and
//! exit codes (0 success, 1 failure).

use std::path::PathBuf;

use strata_alerting::rules::{duplicate_rules, expand_globs, load_files, unittest};

use crate::flags::{Check, Command, Test};

/// Runs a tool; returns the process exit code.
pub(crate) fn run(cmd: Command) -> u8 {
    match cmd {
        Command::Check(Check::Config { files }) => check_config(&files),
        Command::Check(Check::Rules { files, lint_fatal }) => {
            let mut failed = false;
            for f in &files {
                failed |= !check_rules(&f.display().to_string(), lint_fatal);
            }
            u8::from(failed)
        }
        Command::Check(Check::AlertmanagerConfig { files }) => check_am_config(&files),
        Command::Test(Test::Rules { files }) => test_rules(&files),
        Command::Sql { query, dir, format } => crate::sql_cli::run(dir, query, format),
        Command::Compact(args) => crate::compact_cmd::run(args),
    }
}

fn check_config(files: &[PathBuf]) -> u8 {
    let mut failed = false;
    for f in files {
        println!("Checking {}", f.display());
        let cfg = match strata_config::Config::load(f) {
            Ok(c) => c,
            Err(e) => {
                println!("  FAILED: {e}\n");
                failed = true;
                continue;
            }
        };
        let rule_files = match expand_globs(&cfg.rule_files) {
            Ok(r) => r,
            Err(e) => {
                println!("  FAILED: {e}\n");
                failed = true;
                continue;
            }
        };
        if rule_files.is_empty() {
            println!("  SUCCESS: 0 rule files found");
        } else {
            println!("  SUCCESS: {} rule files found", rule_files.len());
        }
        println!(
            " SUCCESS: {} is valid prometheus config file syntax\n",
            f.display()
        );
        for r in &rule_files {
            failed |= !check_rules(r, false);
        }
    }
    u8::from(failed)
}

/// `amtool check-config`: each file loaded and validated, with a summary of what it holds.
fn check_am_config(files: &[PathBuf]) -> u8 {
    let mut failed = false;
    for f in files {
        println!("Checking '{}'", f.display());
        match strata_alerting::notifier::config::Config::load(f) {
            Ok(c) => {
                println!("  SUCCESS");
                println!("Found:");
                println!(" - global config");
                println!(" - route");
                println!(" - {} inhibit rules", c.inhibit_rules.len());
                println!(" - {} receivers", c.receivers.len());
                println!(" - {} templates", c.templates.len());
                println!();
            }
            Err(e) => {
                println!("  FAILED: {e}\n");
                failed = true;
            }
        }
    }
    u8::from(failed)
}

fn check_rules(path: &str, lint_fatal: bool) -> bool {
    println!("Checking {path}");
    match load_files(&[path.to_owned()]) {
        Ok(files) => {
            let n: usize = files
                .iter()
                .flat_map(|f| &f.groups)
                .map(|g| g.rules.len())
                .sum();
            let dups: Vec<(String, String)> = files.iter().flat_map(duplicate_rules).collect();
            if !dups.is_empty() {
                println!("{} duplicate rule(s) found.", dups.len());
                for (g, r) in &dups {
                    println!("Metric: {r}\nGroup: {g}");
                }
                println!("Might cause inconsistency while recording expressions.");
                if lint_fatal {
                    println!("  FAILED: lint error\n");
                    return false;
                }
            }
            println!("  SUCCESS: {n} rules found\n");
            true
        }
        Err(e) => {
            println!("  FAILED:\n{e}\n");
            false
        }
    }
}

fn test_rules(files: &[PathBuf]) -> u8 {
    let Some(rt) = runtime() else {
        return 1;
    };
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        match rt.block_on(unittest::run_file(f)) {
            Ok(failures) if failures.is_empty() => println!("  SUCCESS\n"),
            Ok(failures) => {
                failed = true;
                println!("  FAILED:");
                for m in failures {
                    println!("    {m}");
                }
                println!();
            }
            Err(e) => {
                failed = true;
                println!("  FAILED:\n    {e}\n");
            }
        }
    }
    u8::from(failed)
}

/// A multi-threaded runtime for the offline tools (the engine needs one), or `None` after
/// printing why it could not start.
pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("strata: cannot start the runtime: {e}");
            None
        }
    }
}
