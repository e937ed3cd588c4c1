//! `tollgate`: the one binary. `run` serves manifests from files with the proxy in the same
//! process; `controller` pushes the configuration of manifests to the proxies that subscribe;
//! `proxy` serves one Gateway with what a controller pushes; `validate` checks manifests; `crds` prints the CustomResourceDefinitions; `audit
//! verify` checks an audit log's hash chain; `replay` resends a captured request.

mod cli;
mod controller;
mod controller_admin;
mod controller_metrics;
mod logging;
mod proxy_runtime;
mod push_metrics;
mod push_proxy;
mod run;

use clap::Parser;
use std::process::ExitCode;

/// Requests allocate many small, short-lived buffers on every thread; mimalloc serves them
/// from thread-local pages without the arena locks glibc's allocator takes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let result = match cli.command {
        cli::Command::Run(args) => run::run(*args),
        cli::Command::Proxy(args) => push_proxy::proxy(*args),
        cli::Command::Controller(args) => controller::controller(*args),
        cli::Command::Validate(args) => run::validate(&args),
        cli::Command::Crds(args) => crds(&args),
        cli::Command::Audit(cli::AuditCommand::Verify(args)) => verify_audit(&args),
        cli::Command::Replay(args) => run::replay(&args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

/// `tollgate audit verify`: one line saying the chain holds, or where it breaks.
fn verify_audit(args: &cli::VerifyArgs) -> anyhow::Result<ExitCode> {
    let files = match args.files.as_slice() {
        [live] if live.exists() => tollgate_audit::log_files(live),
        files => files.to_vec(),
    };
    match tollgate_audit::verify(&files) {
        Ok(report) => {
            println!(
                "ok: {} records in {} files, seq {} to {}",
                report.records,
                report.files,
                report.first_seq.map_or("-".into(), |s| s.to_string()),
                report.last_seq.map_or("-".into(), |s| s.to_string()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(broken) => {
            println!(
                "broken: {}:{}: {}",
                broken.file.display(),
                broken.line,
                broken.reason
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `tollgate crds`: prints the CRDs, or writes them into a folder (as `make crds` does).
fn crds(args: &cli::CrdsArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    use tollgate_api::crd;
    let Some(dir) = &args.output_dir else {
        print!("{}", crd::all_yaml());
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for definition in crd::definitions() {
        let path = dir.join(crd::file_name(&definition));
        std::fs::write(&path, crd::to_yaml(&definition))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
