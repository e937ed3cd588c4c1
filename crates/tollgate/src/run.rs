//! `tollgate run` and `tollgate validate`: the controller's translation and the proxy in one
//! process, reading manifests from files instead of the API server.

use prometheus_client::registry::Registry;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::sync::mpsc;
use tollgate_controller::{Diagnostic, TranslateOptions, Translation, Versions, files, translate};
use tollgate_proxy::Proxy;

use crate::cli::{FilesArgs, RunArgs};
use crate::proxy_runtime::{ProxyRuntime, shutdown_signal};

/// How long file events are coalesced before a reload.
pub(crate) const RELOAD_DEBOUNCE: Duration = Duration::from_millis(200);

fn options() -> TranslateOptions {
    TranslateOptions {
        implicit_gateway_class: Some("tollgate".into()),
    }
}

/// Loads and translates the files; load failures and parse errors become one translation.
pub(crate) fn load_and_translate(paths: &[PathBuf]) -> anyhow::Result<Translation> {
    let (resources, mut parse_diagnostics) = files::load(paths)?;
    let mut translation = translate(&resources, &options());
    parse_diagnostics.append(&mut translation.diagnostics);
    parse_diagnostics.sort_by_key(|d| d.severity);
    translation.diagnostics = parse_diagnostics;
    Ok(translation)
}

/// `tollgate validate`.
pub(crate) fn validate(args: &FilesArgs) -> anyhow::Result<ExitCode> {
    let translation = load_and_translate(&args.files)?;
    for diagnostic in &translation.diagnostics {
        println!("{diagnostic}");
    }
    for (gateway, config) in &translation.configs {
        println!(
            "gateway {gateway}: {} listener(s), {} provider(s), {} rule(s), {} MCP endpoint(s), {} Service rule(s), {} API key(s)",
            config.listeners.len(),
            config.providers.len(),
            config.routes.rules().len(),
            config.mcp.len(),
            config.service_routes.rules().len(),
            config.api_keys.len()
        );
    }
    if translation.has_errors() {
        let errors = translation
            .diagnostics
            .iter()
            .filter(|d| d.is_error())
            .count();
        println!("{errors} error(s)");
        return Ok(ExitCode::FAILURE);
    }
    if translation.configs.is_empty() {
        println!("no Gateway of class tollgate found: nothing would be served");
        return Ok(ExitCode::FAILURE);
    }
    println!("valid");
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn log_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        if d.is_error() {
            tracing::error!(kind = %d.kind, namespace = %d.namespace, name = %d.name, field = %d.field, reason = d.reason, "{}", d.message);
        } else {
            tracing::warn!(kind = %d.kind, namespace = %d.namespace, name = %d.name, field = %d.field, reason = d.reason, "{}", d.message);
        }
    }
}

/// `tollgate run`.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let runtime = crate::proxy_runtime::control_runtime()?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> anyhow::Result<ExitCode> {
    let paths = args.files.files.clone();
    // Watched before they are first read, so that no change made after that read (while the
    // listeners and the admin server start, say) goes unseen; a path that cannot be read is
    // reported by the read, whose error says more.
    let (changed_tx, mut changed) = mpsc::channel(1);
    let watcher = files::watch(&paths, RELOAD_DEBOUNCE, changed_tx);
    let translation = load_and_translate(&paths)?;
    let _watcher = watcher?;
    log_diagnostics(&translation.diagnostics);
    if translation.has_errors() {
        anyhow::bail!("the manifests have errors (listed above); nothing was started");
    }
    if translation.configs.is_empty() {
        anyhow::bail!(
            "no Gateway with gatewayClassName `tollgate` in the manifests: nothing to serve"
        );
    }

    let mut registry = Registry::default();
    let mut runtime = ProxyRuntime::start(&args.proxy, &mut registry)?;
    let proxy = runtime.proxy.clone();
    let mut versions = Versions::default();
    proxy.apply(&versions.publish(translation.configs)).await?;
    proxy.spawn_budget_gauges(args.proxy.budget_gauge_interval);
    runtime.serve_admin(args.proxy.admin_addr, registry).await?;

    let shutdown = shutdown_signal()?;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(()) = changed.recv() => reload(&paths, &proxy, &mut versions).await,
            () = &mut shutdown => break,
        }
    }
    runtime.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Why a changed translation must not replace the last good configuration, if it must not.
/// `tollgate run` and `tollgate controller --files` follow the same rules.
pub(crate) fn reload_refusal(translation: &Translation) -> Option<&'static str> {
    if translation.has_errors() {
        return Some(
            "the changed manifests have errors (listed above); keeping the last good configuration",
        );
    }
    if translation.configs.is_empty() {
        // An emptied or half-written file must not take every listener down.
        return Some(
            "the changed manifests hold no Gateway of class tollgate; keeping the last good configuration",
        );
    }
    None
}

/// Loads and translates the files, and logs what is wrong with them, on a thread of its own
/// that runs only when a core has nothing else to do (see [`yield_to_traffic`]): reading and
/// checking thousands of resources takes tens of milliseconds of CPU, which would otherwise be
/// taken from the workers serving traffic, a latency spike at every reload.
async fn translate_yielding(paths: Vec<PathBuf>) -> anyhow::Result<Translation> {
    let (done, translated) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("tg-translate".into())
        .spawn(move || {
            yield_to_traffic();
            let translated = load_and_translate(&paths);
            if let Ok(translation) = &translated {
                log_diagnostics(&translation.diagnostics);
            }
            let _ = done.send(translated);
        })?;
    translated
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("translation failed: its thread panicked")))
}

/// Moves the calling thread to Linux's `SCHED_IDLE` policy: the scheduler preempts it as soon
/// as any other thread wakes on its core, and places woken threads on its core as on an idle
/// one. A lower nice value alone does neither, and a reload still cost the requests around
/// it milliseconds. On a machine whose every core is busy with traffic, the thread still gets
/// a sliver of CPU, so a reload is slow there rather than stuck. Where the policy cannot be
/// set, the thread keeps its priority, which only costs latency.
fn yield_to_traffic() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
        set_thread_priority_and_policy, thread_native_id,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(error) =
        set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
    {
        tracing::debug!(?error, "cannot lower the translating thread's priority");
    }
}

/// Re-reads the files and applies them, or keeps the last good configuration.
async fn reload(paths: &[PathBuf], proxy: &Proxy, versions: &mut Versions) {
    let translated = translate_yielding(paths.to_vec()).await;
    let translation = match translated {
        Ok(translation) => translation,
        Err(error) => {
            tracing::error!(%error, "cannot read the manifests; keeping the last good configuration");
            proxy.count_reload(false);
            return;
        }
    };
    if let Some(refusal) = reload_refusal(&translation) {
        tracing::error!("{refusal}");
        proxy.count_reload(false);
        return;
    }
    match proxy.apply(&versions.publish(translation.configs)).await {
        Ok(()) => {
            let versions: Vec<String> = proxy
                .snapshots()
                .iter()
                .map(|s| format!("{}@{}", s.config.gateway, s.version))
                .collect();
            tracing::info!(?versions, "configuration reloaded");
            proxy.count_reload(true);
        }
        Err(error) => {
            tracing::error!(%error, "cannot apply the changed manifests; keeping the last good configuration");
            proxy.count_reload(false);
        }
    }
}

/// `tollgate replay`: sends a captured request again and streams the answer to stdout.
pub(crate) fn replay(args: &crate::cli::ReplayArgs) -> anyhow::Result<ExitCode> {
    use http_body_util::BodyExt;
    use std::io::Write;
    let files = tollgate_audit::log_files(&args.audit_log);
    let request = tollgate_proxy::replay::find_captured(&files, &args.request_id)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = tollgate_proxy::replay::send(&request, &args.url, &args.api_key).await?;
        let status = response.status();
        eprintln!("{} {} -> {status}", request.method, request.path);
        let mut body = response.into_body();
        let mut stdout = std::io::stdout().lock();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                stdout.write_all(&data)?;
                stdout.flush()?;
            }
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, thread_schedule_policy,
    };

    #[test]
    fn the_translating_thread_yields_and_the_others_do_not() {
        let before = thread_schedule_policy().unwrap();
        let lowered = std::thread::spawn(|| {
            yield_to_traffic();
            thread_schedule_policy().unwrap()
        })
        .join()
        .unwrap();
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        assert_eq!(lowered, idle);
        assert_eq!(thread_schedule_policy().unwrap(), before);
        assert_ne!(before, idle);
    }
}
