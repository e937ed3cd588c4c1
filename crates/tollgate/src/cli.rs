//! Command-line arguments.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Tollgate: a Kubernetes-native gateway for AI traffic.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub(crate) struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "TOLLGATE_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the Gateways declared in manifest files, reloading them when they change.
    Run(Box<RunArgs>),
    /// Serve one Gateway with the configuration a controller pushes (`tollgate controller`).
    Proxy(Box<PushProxyArgs>),
    /// Translate manifests into each Gateway's configuration and push it to the proxies
    /// that subscribe, over mutual TLS.
    Controller(Box<ControllerArgs>),
    /// Check manifest files and print what is wrong with them; exits non-zero on any error.
    Validate(FilesArgs),
    /// Print the CustomResourceDefinitions of Tollgate's resources as YAML.
    Crds(CrdsArgs),
    /// Work with audit logs.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Send a request the audit log captured (`--audit-capture-bodies`) through a gateway
    /// again; prints the answer's status to stderr and its body to stdout as it arrives.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The request's id (its `x-request-id`, as in the audit log).
    pub(crate) request_id: String,
    /// The audit log (its rotated files are searched too).
    #[arg(long, env = "TOLLGATE_AUDIT_LOG")]
    pub(crate) audit_log: PathBuf,
    /// The gateway to send it to, such as `http://127.0.0.1:8080`.
    #[arg(long)]
    pub(crate) url: String,
    /// The API key to send it with (the caller's own key is never captured).
    #[arg(long, env = "TOLLGATE_API_KEY", hide_env_values = true)]
    pub(crate) api_key: String,
}

/// `tollgate audit ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that audit log files form one unbroken hash chain; exits 1 and names the first
    /// line where it breaks (an edit, a deletion, a reordering, a cut-off line).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The files, oldest first (`audit.jsonl.2 audit.jsonl.1 audit.jsonl`). A single live
    /// log file is read together with its rotated files.
    #[arg(required = true, num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CrdsArgs {
    /// Write one file per CRD into this folder instead of printing them.
    #[arg(long)]
    pub(crate) output_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct FilesArgs {
    /// Manifest files or folders (searched recursively for .yaml, .yml and .json).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) files: FilesArgs,
    #[command(flatten)]
    pub(crate) proxy: ProxyArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PushProxyArgs {
    /// The controller serving configuration, `https://HOST:PORT`; its certificate must name HOST.
    #[arg(long, env = "TOLLGATE_CONTROLLER")]
    pub(crate) controller: String,
    /// The Gateway whose configuration this proxy serves, `NAMESPACE/NAME`.
    #[arg(long, env = "TOLLGATE_GATEWAY")]
    pub(crate) gateway: String,
    /// The CA bundle (PEM) the controller's certificate must chain to.
    #[arg(long, env = "TOLLGATE_PUSH_CA")]
    pub(crate) ca: PathBuf,
    /// This proxy's client certificate (PEM), signed by the controller's client CA.
    #[arg(long, env = "TOLLGATE_PUSH_CERT")]
    pub(crate) cert: PathBuf,
    /// The private key (PEM) of `--cert`.
    #[arg(long, env = "TOLLGATE_PUSH_KEY")]
    pub(crate) key: PathBuf,
    /// The name the controller lists this proxy under (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub(crate) proxy_name: Option<String>,
    #[command(flatten)]
    pub(crate) proxy: ProxyArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    /// Manifest files or folders to serve (searched recursively for .yaml, .yml and .json),
    /// reloaded when they change.
    /// Without any, the resources come from the Kubernetes API server (in-cluster config, or
    /// KUBECONFIG), with leader election among replicas.
    #[arg(short = 'f', long = "files", visible_alias = "filename", num_args = 1..)]
    pub(crate) files: Vec<PathBuf>,
    /// The namespace of the leader Lease (default: $POD_NAMESPACE, else the client's namespace).
    #[arg(long, env = "POD_NAMESPACE")]
    pub(crate) leader_election_namespace: Option<String>,
    /// The leader Lease's name.
    #[arg(long, default_value = "tollgate-controller")]
    pub(crate) leader_election_lease: String,
    /// This replica's name in the Lease (default: $POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    pub(crate) identity: Option<String>,
    /// Where proxies subscribe to their Gateway's configuration (HTTP/2, mutual TLS).
    #[arg(long, default_value = "0.0.0.0:9443", env = "TOLLGATE_PUSH_LISTEN")]
    pub(crate) push_listen: SocketAddr,
    /// The controller's certificate chain (PEM) for `--push-listen`.
    #[arg(long, env = "TOLLGATE_TLS_CERT")]
    pub(crate) tls_cert: PathBuf,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, env = "TOLLGATE_TLS_KEY")]
    pub(crate) tls_key: PathBuf,
    /// The CA bundle (PEM) that proxies' client certificates must chain to.
    #[arg(long, env = "TOLLGATE_CLIENT_CA")]
    pub(crate) client_ca: PathBuf,
    /// Address of the admin server (/healthz, /readyz, /metrics, /status).
    #[arg(
        long = "admin-addr",
        visible_alias = "admin",
        default_value = "0.0.0.0:9090",
        env = "TOLLGATE_ADMIN_ADDR"
    )]
    pub(crate) admin_addr: SocketAddr,
}

/// The proxy's own settings, shared by `run` and `proxy`.
#[derive(Debug, Args)]
pub(crate) struct ProxyArgs {
    /// Threads that serve Gateway traffic, each accepting and serving its own connections
    /// from start to end; 0 means one per CPU. Configuration changes, the audit writer,
    /// exporters and the admin server run on one thread more.
    #[arg(long, default_value_t = 0, env = "TOLLGATE_WORKER_THREADS")]
    pub(crate) worker_threads: usize,
    /// Address of the admin server (/healthz, /readyz, /metrics, /config, /budgets).
    #[arg(long, default_value = "127.0.0.1:9901", env = "TOLLGATE_ADMIN_ADDR")]
    pub(crate) admin_addr: SocketAddr,
    /// Address Gateway listeners bind to; their ports come from the Gateway. Use 0.0.0.0 to
    /// accept connections from other machines.
    #[arg(long, default_value = "127.0.0.1", env = "TOLLGATE_LISTEN_ADDRESS")]
    pub(crate) listen_address: IpAddr,
    /// Largest request body accepted, in bytes; larger requests get 413.
    #[arg(long, default_value_t = 10 * 1024 * 1024, env = "TOLLGATE_MAX_REQUEST_BYTES")]
    pub(crate) max_request_bytes: usize,
    /// How long a request body may take to arrive.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) body_timeout: Duration,
    /// On SIGTERM, how long requests and streams in flight may take to finish.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "TOLLGATE_DRAIN_TIMEOUT")]
    pub(crate) drain_timeout: Duration,
    /// Where budget counts live: `memory` (this process only), or a Redis URL
    /// (`redis://[:password@]host:port[/db]`, `rediss://` for TLS) shared by every proxy
    /// that should count together.
    #[arg(long, default_value = "memory", env = "TOLLGATE_BUDGET_STORE")]
    pub(crate) budget_store: String,
    /// The longest a budget store call may take before the request goes on as each policy's
    /// `failureMode` says.
    #[arg(long, default_value = "250ms", value_parser = parse_duration, env = "TOLLGATE_BUDGET_STORE_TIMEOUT")]
    pub(crate) budget_store_timeout: Duration,
    /// How often `tollgate_budget_used` and `tollgate_budget_remaining` are read from the
    /// budget store.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub(crate) budget_gauge_interval: Duration,
    /// A prefix for this deployment's keys in a shared Redis.
    #[arg(long, default_value = "", env = "TOLLGATE_BUDGET_STORE_NAMESPACE")]
    pub(crate) budget_store_namespace: String,
    /// Where to export traces over OTLP (`http://collector:4317` for gRPC,
    /// `http://collector:4318` with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`). The standard
    /// `OTEL_EXPORTER_OTLP_*` variables work too; with neither, no traces are made.
    #[arg(long)]
    pub(crate) otlp_endpoint: Option<String>,
    /// The OTLP transport: `grpc` (the default) or `http/protobuf`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL")]
    pub(crate) otlp_protocol: Option<String>,
    /// Record every request in this append-only, hash-chained JSON-lines file (rotated by
    /// size into `FILE.1`, `FILE.2`, ...; check it with `tollgate audit verify`).
    #[arg(long, env = "TOLLGATE_AUDIT_LOG")]
    pub(crate) audit_log: Option<PathBuf>,
    /// Size at which the audit log is rotated.
    #[arg(long, default_value_t = 100 * 1024 * 1024)]
    pub(crate) audit_max_bytes: u64,
    /// Rotated audit files kept (older ones are deleted).
    #[arg(long, default_value_t = 10)]
    pub(crate) audit_max_files: usize,
    /// Also send every audit record as an OTLP log record (event `tollgate.request`, the
    /// record's JSON as its body) to the OTLP endpoint.
    #[arg(long)]
    pub(crate) audit_otlp: bool,
    /// Put each request's and response's body (redacted, cut at `--audit-capture-max-bytes`)
    /// into its audit record, which lets `tollgate replay` resend it. Off by default: prompts
    /// and answers often hold personal data.
    #[arg(long)]
    pub(crate) audit_capture_bodies: bool,
    /// Put each request's and response's body (redacted and cut as for the audit log) into
    /// its span, as `gen_ai.input.messages` and `gen_ai.output.messages`. Off by default.
    #[arg(long)]
    pub(crate) trace_content: bool,
    /// The most bytes of each body a record (or span) keeps.
    #[arg(long, default_value_t = 64 * 1024)]
    pub(crate) audit_capture_max_bytes: usize,
    /// A regular expression whose matches are replaced by `[REDACTED]` in captured bodies
    /// (repeatable), such as `sk-[A-Za-z0-9]+` or a card number pattern.
    #[arg(long = "audit-redact", value_parser = parse_regex)]
    pub(crate) audit_redact: Vec<regex::Regex>,
    /// Audit records that may wait to be written; past it they are refused, counted in
    /// `tollgate_audit_records_dropped_total` and logged as errors.
    #[arg(long, default_value_t = 8192)]
    pub(crate) audit_buffer: usize,
    /// Finished spans that may wait for export; past it they are dropped and counted in
    /// `tollgate_trace_spans_dropped_total`.
    #[arg(long, default_value_t = 4096, env = "TOLLGATE_TRACE_QUEUE")]
    pub(crate) trace_queue: usize,
}

/// Parses a redaction pattern.
fn parse_regex(text: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(text).map_err(|e| e.to_string())
}

/// Parses `500ms`, `30s`, `2m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" | "" => Ok(Duration::from_secs(number)),
        "m" => Ok(Duration::from_secs(number * 60)),
        _ => Err(format!("{text:?} has an unknown unit; use ms, s or m")),
    }
}
