//! `tollgate-gateway`: a LOCAL STAND-IN for PostgREST. Run with `--help` for its options.

use std::process::ExitCode;
use tollgate_gateway::config::{Config, Parsed, HELP};

fn main() -> ExitCode {
    let cfg = match Config::from_env_and_args() {
        Ok(Parsed::Run(cfg)) => cfg,
        Ok(Parsed::Help) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tollgate-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tollgate_gateway::serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tollgate-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
