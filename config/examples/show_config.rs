//! Prints the resolved configuration of a file (or the embedded default) as
//! `/api/v1/status/config` would: `cargo run -p strata-config --example show_config [FILE]`.

use std::process::ExitCode;

use strata_config::Config;

fn main() -> ExitCode {
    let cfg = match std::env::args().nth(1) {
        Some(path) => match Config::load(std::path::Path::new(&path)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default_embedded(9090),
    };
    match cfg.to_yaml() {
        Ok(y) => {
            print!("{y}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
