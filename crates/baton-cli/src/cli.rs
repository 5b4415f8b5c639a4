use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Baton: a serverless platform that runs WebAssembly components and OpenFaaS-style process
/// functions, with cold starts in microseconds.
///
/// `baton up` runs a node; the other commands talk to a running node's HTTP API.
#[derive(Debug, Parser)]
#[command(name = "baton", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: gateway, control plane and worker in one process.
    Up(UpArgs),
    /// Deploy functions from a baton.toml manifest, an OpenFaaS stack.yml, or flags.
    Deploy(DeployArgs),
    /// Start a function from a template (python3-http, node20-http) and add it to a
    /// stack.yml, as `faas-cli new` does; `baton deploy --stack stack.yml` builds and deploys
    /// it.
    New(NewArgs),
    /// Call a function and print its response.
    Invoke(InvokeArgs),
    /// List the deployed functions.
    Ls(ListArgs),
    /// Show one function's settings and state.
    Describe(NameArgs),
    /// Remove functions.
    Rm(RemoveArgs),
    /// Print a function's recent output.
    Logs(LogsArgs),
    /// The node's objects: buckets of a namespace (a function's name or its baton.namespace
    /// label), their objects, the cache in front of the store.
    #[command(subcommand)]
    Objects(ObjectsCommand),
    /// This site's part in a federation of edge sites: its identity.
    #[command(subcommand)]
    Federation(FederationCommand),
    /// Run a cluster's control plane: registry, autoscaler, placement, failure detection
    /// (gRPC; gateways and workers connect to it).
    Control(ControlArgs),
    /// Run a cluster gateway: the HTTP API and data plane, fed by a control plane.
    Gateway(GatewayArgs),
    /// Run a cluster worker (or, with --count, several): sandboxes the control plane asks for.
    Worker(WorkerArgs),
    /// Measurement tools.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// Durations are like `500ms`, `2s`, `1m`.
#[derive(Debug, Args)]
pub struct ControlArgs {
    /// TOML config file: this role's flags as keys of its section (README "Configuration").
    #[arg(long, env = "BATON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once listening, write where to this file as JSON (`http`, `grpc`, `state_api`,
    /// `workers`): for scripts and tests that start Baton on port 0.
    #[arg(long, env = "BATON_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// gRPC address gateways and workers connect to (beyond loopback only with
    /// --cluster-token).
    #[arg(long, env = "BATON_CONTROL_LISTEN", default_value = "127.0.0.1:9090")]
    pub listen: String,
    /// Where the registry (redb), components and compiled code are kept [default:
    /// $XDG_DATA_HOME/baton-control or ~/.local/share/baton-control].
    #[arg(long, env = "BATON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Registry store: `redb` (a file in the data directory), a redb file path, or a
    /// `redis://host:port/db` URL.
    #[arg(long, env = "BATON_STORE", default_value = "redb")]
    pub store: String,
    /// Key prefix in Redis, so several clusters share one server.
    #[arg(long, env = "BATON_STORE_PREFIX", default_value = "baton")]
    pub store_prefix: String,
    /// Placement policy: random, round-robin or resource-fit.
    #[arg(long, env = "BATON_PLACEMENT", default_value = "round-robin")]
    pub placement: String,
    /// Keep-alive policy: `ttl` (an idle function goes to zero after its grace), `lru` or
    /// `greedy-dual` (an idle function keeps one sandbox until a creation needs its memory;
    /// then the least recently used, or the lowest Greedy-Dual-Size-Frequency priority, go).
    #[arg(long, env = "BATON_KEEP_ALIVE", default_value = "ttl")]
    pub keep_alive: String,
    /// How often workers heartbeat.
    #[arg(long, default_value = "1s")]
    pub heartbeat_interval: String,
    /// Missed heartbeats before a worker is declared dead and its sandboxes replaced.
    #[arg(long, default_value_t = 3)]
    pub missed_heartbeats: u32,
    /// How often the autoscaler decides.
    #[arg(long, default_value = "1s")]
    pub scaling_interval: String,
    /// Autoscaler stable window (Knative KPA).
    #[arg(long, default_value = "60s")]
    pub stable_window: String,
    /// Autoscaler panic window.
    #[arg(long, default_value = "6s")]
    pub panic_window: String,
    /// Idle time before a function scales to zero.
    #[arg(long, default_value = "30s")]
    pub scale_to_zero_grace: String,
    /// Shared secret of the cluster: every gRPC call carries it and every role requires it.
    /// Mandatory to listen beyond loopback.
    #[arg(long, env = "BATON_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "BATON_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// TOML config file: this role's flags as keys of its section (README "Configuration").
    #[arg(long, env = "BATON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once listening, write where to this file as JSON (`http`, `grpc`, `state_api`,
    /// `workers`): for scripts and tests that start Baton on port 0.
    #[arg(long, env = "BATON_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Address to serve HTTP on.
    #[arg(long, env = "BATON_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The control plane's gRPC URL.
    #[arg(long, env = "BATON_CONTROL", default_value = "http://127.0.0.1:9090")]
    pub control: String,
    /// This gateway's id among the control plane's gateways [default: gateway-<listen address>].
    #[arg(long, env = "BATON_GATEWAY_ID")]
    pub id: Option<String>,
    /// Load balancing: random, round-robin, least-in-flight, power-of-two or consistent-hash
    /// (requests with one `X-Baton-Affinity` value go to one worker; others least-in-flight).
    #[arg(long, env = "BATON_LOAD_BALANCING", default_value = "least-in-flight")]
    pub load_balancing: String,
    /// How often in-flight counts go to the autoscaler.
    #[arg(long, default_value = "1s")]
    pub metrics_interval: String,
    /// Shared secret of the cluster: every gRPC call carries it and every role requires it.
    /// Mandatory to listen beyond loopback.
    #[arg(long, env = "BATON_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Bearer token required on /system/*; mandatory when listening beyond loopback.
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "BATON_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Keep asynchronous calls in NATS JetStream at this server (e.g. `nats://127.0.0.1:4222`),
    /// shared by every gateway that names it: a call accepted by one runs on one, after a
    /// gateway's crash too. Without it each gateway keeps its calls in memory.
    #[arg(long, env = "BATON_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream of asynchronous calls.
    #[arg(long, env = "BATON_NATS_STREAM", default_value = "BATON_ASYNC")]
    pub nats_stream: String,
    /// How long a running call may go unacknowledged before JetStream hands it to another
    /// gateway (the gateway running it renews it every third of that).
    #[arg(long, default_value = "30s")]
    pub nats_ack_wait: String,
    /// Asynchronous calls that may wait; more get 429.
    #[arg(long, default_value_t = 1024)]
    pub async_queue: usize,
    /// Asynchronous calls this gateway runs at once.
    #[arg(long, default_value_t = 16)]
    pub async_concurrency: usize,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// TOML config file: this role's flags as keys of its section (README "Configuration").
    #[arg(long, env = "BATON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once listening, write where to this file as JSON (`http`, `grpc`, `state_api`,
    /// `workers`): for scripts and tests that start Baton on port 0.
    #[arg(long, env = "BATON_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// The control plane's gRPC URL.
    #[arg(long, env = "BATON_CONTROL", default_value = "http://127.0.0.1:9090")]
    pub control: String,
    /// gRPC address the control plane calls (port 0: any free port; beyond loopback only
    /// with --cluster-token).
    #[arg(long, env = "BATON_WORKER_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Address gateways send invocations to.
    #[arg(long, env = "BATON_WORKER_DATA_LISTEN", default_value = "127.0.0.1:0")]
    pub data_listen: String,
    /// Worker id, unique in the cluster [default: worker-<random>]; with --count, a
    /// `-N` suffix is added.
    #[arg(long, env = "BATON_WORKER_ID")]
    pub id: Option<String>,
    /// Where components and compiled code are cached [default: a `baton-worker-<id>`
    /// directory under $XDG_DATA_HOME or ~/.local/share].
    #[arg(long, env = "BATON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `real` (wasm components and processes) or `fake` (sandboxes that only echo, for
    /// simulating large clusters).
    #[arg(long, default_value = "real")]
    pub runtime: String,
    /// With --runtime fake: how long creating a sandbox takes.
    #[arg(long, default_value = "40ms")]
    pub fake_delay: String,
    /// Workers to run in this process, each with its own id and ports (cluster simulation).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// CPU cores offered to placement [default: the machine's].
    #[arg(long)]
    pub cpu: Option<f64>,
    /// Memory offered to placement, e.g. `16Gi` [default: the machine's, or its cgroup's
    /// limit when lower].
    #[arg(long)]
    pub memory: Option<String>,
    /// Shared secret of the cluster: every gRPC call carries it and every role requires it;
    /// state agents prove it to each other. Mandatory to listen beyond loopback.
    #[arg(long, env = "BATON_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Where the worker's state agent takes replication peers (the other workers' agents,
    /// learnt from the control plane). With --runtime real only.
    #[arg(long, env = "BATON_STATE_LISTEN", default_value = "127.0.0.1:0")]
    pub state_listen: String,
    /// Loopback address of the platform API that process functions reach as `BATON_API`.
    #[arg(long, env = "BATON_STATE_API", default_value = "127.0.0.1:0")]
    pub state_api: String,
    /// Run no state agent: functions get no `baton:platform/state` and no `BATON_API`.
    #[arg(long)]
    pub no_state: bool,
    /// When a state write is acknowledged: `durable` (after its fsync) or `async`.
    #[arg(long, env = "BATON_STATE_DURABILITY", default_value = "durable")]
    pub state_durability: String,
    /// The admin token of the worker's platform API (every namespace) [default: one made
    /// in the data directory, `admin-token`, mode 0600].
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The cluster gateway functions call each other through (`http://gateway:8080/function/…`
    /// from a function goes there) [default: none; such calls are refused].
    #[arg(long, env = "BATON_WORKER_GATEWAY")]
    pub gateway: Option<String>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "BATON_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Run a scenario file (benchmarks/*.toml): deploy what it needs, load, write results.
    Run(BenchRunArgs),
    /// Load any HTTP URL and report throughput and latency.
    Load(Box<BenchLoadArgs>),
    /// Azure Functions traces: generate synthetic ones, replay them.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Replicated state: MISO's allreduce on N local nodes against Redis, counter increments
    /// per second, convergence time, bytes per operation and memory.
    State(BenchStateArgs),
    /// Cluster mode: sandbox creations per second with fake workers, scale-from-zero latency
    /// with wasm, control-plane recovery.
    Cluster(BenchClusterArgs),
    /// Federation, after DFaaS's experiments: N sites on loopback (site 1 serves C requests a
    /// second, the others 3 C), one federated function, load per scenario; per strategy the
    /// share served each second and by which site, the time to converge (every second ≥ 99 %
    /// served) and the latency a forwarded hop adds.
    Federation(BenchFederationArgs),
    /// DeathStarBench's social network (apps/socialnet) on a node or a cluster: loads the
    /// socfb-Reed98 graph, seeds posts, then measures each request type alone (invocations
    /// and CPU per request), compose-post alone, and the mixed workload (60 % home timeline,
    /// 30 % user timeline, 10 % compose) open-loop at each rate: p50/p90/p99 per type.
    Socialnet(BenchSocialnetArgs),
    /// Serve a bare hyper hello-world (the baseline Baton's throughput is compared with).
    Baseline {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:9090")]
        listen: String,
    },
}

#[derive(Debug, Args)]
pub struct BenchStateArgs {
    /// Nodes to start (each a `baton up` on loopback, all peers of each other; with
    /// --cluster, workers).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Allreduce runs per system.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Redis for the side-by-side allreduce; `none` skips it.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis: String,
    /// Durability of the nodes' state writes: `async` (as Redis without AOF) or `durable`.
    #[arg(long, default_value = "async")]
    pub durability: String,
    /// Seconds of each counter-throughput measurement.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Writes timed for convergence.
    #[arg(long, default_value_t = 300)]
    pub writes: usize,
    /// Run on a cluster (control plane, gateway and --nodes workers, each worker with its
    /// state agent) instead of --nodes `baton up` peers.
    #[arg(long)]
    pub cluster: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchSocialnetArgs {
    /// Directory of the graph (`<name>.nodes`, `<name>.edges`), as DeathStarBench ships it
    /// in socialNetwork/datasets/social-graph/.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/socfb-Reed98"))]
    pub graph: PathBuf,
    /// Offered rates of the mixed workload, requests a second, comma-separated.
    #[arg(long, default_value = "100,500,1000")]
    pub rates: String,
    /// Offered rates of compose-post alone, comma-separated (empty for none).
    #[arg(long, default_value = "100")]
    pub compose_rates: String,
    /// Seconds measured at each rate.
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Posts seeded per user before measuring, on average (DeathStarBench's --compose: 10).
    #[arg(long, default_value_t = 10)]
    pub seed_posts: u32,
    /// Rate of the per-type runs that count invocations and CPU per request.
    #[arg(long, default_value_t = 100.0)]
    pub profile_rate: f64,
    /// Run on a cluster of this many workers (each with its state agent) behind one gateway
    /// balancing by the affinity header (`consistent-hash`), instead of one node.
    #[arg(long)]
    pub workers: Option<usize>,
    /// State writes `durable` (fsynced, the default of a node) or `async`.
    #[arg(long, default_value = "durable")]
    pub durability: String,
    /// Calls at once while loading the graph and seeding posts.
    #[arg(long, default_value_t = 32)]
    pub load_concurrency: usize,
    /// Write the JSON report and an SVG plot here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchFederationArgs {
    /// Sites to start.
    #[arg(long, default_value_t = 3)]
    pub sites: usize,
    /// Strategy to run (repeatable): `grant`, `dfaas-recalc`, `static`, `all-local`
    /// [default: all four].
    #[arg(long = "strategy")]
    pub strategies: Vec<String>,
    /// Scenario to run (repeatable): `paper` (5 C to site 1), `second-overloaded` (site 2 too)
    /// or `all-overloaded` (every site twice its capacity) [default: paper].
    #[arg(long = "scenario")]
    pub scenarios: Vec<String>,
    /// Requests a second site 1 serves (C).
    #[arg(long, default_value_t = 20.0)]
    pub capacity: f64,
    /// How long each run's load lasts.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// How long it lasts with `dfaas-recalc` (DFaaS's rounds are a minute).
    #[arg(long, default_value_t = 180)]
    pub recalc_seconds: u64,
    /// Rounds every this long instead of each strategy's own (500ms; dfaas-recalc 60s).
    #[arg(long)]
    pub period: Option<String>,
    /// Write one SVG plot per scenario here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Delay every exchange between two sites by this much each way (a delaying proxy in
    /// front of each site's federation listener), as DFaaS's emulated links did.
    #[arg(long)]
    pub link_delay: Option<String>,
    /// Print the report as JSON (per run: `served_fraction`, `converged_after_s`,
    /// `hop_latency_ms`, `per_second`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchClusterArgs {
    /// `creations`, `cold-starts` or `recovery`.
    pub scenario: String,
    /// Workers to start (in one `baton worker --count` process).
    #[arg(long, default_value_t = 100)]
    pub workers: usize,
    /// Functions to register (creations, recovery).
    #[arg(long, default_value_t = 100)]
    pub functions: usize,
    /// Sandboxes in total (creations, recovery).
    #[arg(long, default_value_t = 10_000)]
    pub sandboxes: usize,
    /// Repetitions (creations, recovery).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Cold starts per second, comma-separated (cold-starts).
    #[arg(long, default_value = "10,50,100")]
    pub rates: String,
    /// Seconds at each rate (cold-starts).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Longest wait after deploying for the workers to finish pre-compiling every function
    /// (until they report an idle CPU) (cold-starts).
    #[arg(long, default_value_t = 120)]
    pub settle: u64,
    /// cold-starts on one `baton up` (the same path in one process) instead of a cluster of
    /// processes; --workers is ignored.
    #[arg(long)]
    pub node: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchRunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Directory for JSON, CSV and SVG results [default: benchmarks/results/<scenario name>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchLoadArgs {
    /// Absolute http:// URL.
    pub url: String,
    /// Connections (closed loop), or most requests in flight (open loop).
    #[arg(long, short = 'c', default_value_t = 32)]
    pub connections: usize,
    /// Open loop at this many requests per second instead of a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// With --rate: Poisson arrivals instead of evenly spaced ones.
    #[arg(long, requires = "rate")]
    pub poisson: bool,
    /// Measured duration.
    #[arg(long, short = 'd', default_value = "10s")]
    pub duration: String,
    /// Unmeasured lead-in.
    #[arg(long, default_value = "1s")]
    pub warmup: String,
    /// Stop after this many measured requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body from a file.
    #[arg(long)]
    pub body_file: Option<PathBuf>,
    /// Request body rendered per request: `{{seq}}` is the request's number, `{{random}}` a
    /// random number.
    #[arg(long, conflicts_with_all = ["body", "body_file"])]
    pub body_template: Option<String>,
    /// Headers, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// HTTP/2 with prior knowledge (h2c).
    #[arg(long)]
    pub http2: bool,
    /// Deadline of one request.
    #[arg(long, default_value = "10s")]
    pub timeout: String,
    /// Write JSON, CSV and SVG results into this directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Settings of `baton up`; each flag overrides its environment variable, which overrides the
/// config file.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// TOML config file (see README "Configuration").
    #[arg(long, env = "BATON_CONFIG")]
    pub config: Option<PathBuf>,
    /// Once listening, write where to this file as JSON (`http`, `grpc`, `state_api`,
    /// `workers`): for scripts and tests that start Baton on port 0.
    #[arg(long, env = "BATON_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Address to serve HTTP on [default: 127.0.0.1:8080].
    #[arg(long, env = "BATON_LISTEN")]
    pub listen: Option<String>,
    /// Where registrations, components and compiled code are kept [default:
    /// $XDG_DATA_HOME/baton or ~/.local/share/baton].
    #[arg(long, env = "BATON_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Bearer token required on /system/*; mandatory when listening beyond loopback.
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Deploy the example functions (hello, echo, json-transform, python-classic,
    /// python-http) at start [default: true].
    #[arg(long, env = "BATON_EXAMPLES", num_args = 0..=1, default_missing_value = "true")]
    pub examples: Option<bool>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "BATON_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Address of the node-local platform API that process functions reach as `BATON_API`
    /// (state objects) [default: 127.0.0.1:0, an ephemeral port].
    #[arg(long, env = "BATON_STATE_API")]
    pub state_api: Option<String>,
    /// Address where peer nodes connect to replicate state [default: 127.0.0.1:0].
    #[arg(long, env = "BATON_STATE_LISTEN")]
    pub state_listen: Option<String>,
    /// Peer nodes' state addresses, comma-separated (host:port,host:port).
    #[arg(long, env = "BATON_STATE_PEERS", value_delimiter = ',')]
    pub state_peers: Option<Vec<String>>,
    /// Secret every node of the cluster holds; mandatory when peers listen beyond loopback.
    #[arg(long, env = "BATON_STATE_SECRET", hide_env_values = true)]
    pub state_secret: Option<String>,
    /// Take part in a federation of sites: where its peers connect (TLS with the site key,
    /// `baton federation id`) [default: not a site].
    #[arg(long, env = "BATON_FEDERATION_LISTEN")]
    pub federation_listen: Option<String>,
    /// Where peers reach this site's federation listener, when not where it listens (behind
    /// NAT or a proxy, or listening on 0.0.0.0).
    #[arg(long, env = "BATON_FEDERATION_ADVERTISE")]
    pub federation_advertise: Option<String>,
    /// Member sites to dial, comma-separated `SITE_ID@HOST:PORT`; their ids are members.
    #[arg(
        long,
        env = "BATON_FEDERATION_PEERS",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub federation_peers: Option<Vec<String>>,
    /// How excess load is shared: `grant` (asked for and granted, the default),
    /// `dfaas-recalc`, `static` or `all-local`.
    #[arg(long, env = "BATON_FEDERATION_STRATEGY")]
    pub federation_strategy: Option<String>,
    /// How often sites exchange load [default: 500ms; 60s for dfaas-recalc].
    #[arg(long, env = "BATON_FEDERATION_PERIOD")]
    pub federation_period: Option<String>,
}

/// Where a running node is.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The node's URL.
    #[arg(
        long,
        short = 'g',
        env = "BATON_GATEWAY",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub gateway: String,
    /// Bearer token for /system/*.
    #[arg(long, env = "BATON_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub target: Target,
    /// A baton.toml manifest (the default when nothing else is given: ./baton.toml).
    #[arg(long, short = 'f', conflicts_with_all = ["stack", "name"])]
    pub file: Option<PathBuf>,
    /// An OpenFaaS stack.yml of process functions: each sets `fprocess`, or names a template
    /// as `lang` (built into `build/<name>/` beside the file, as `faas-cli build` does).
    #[arg(long, conflicts_with = "name")]
    pub stack: Option<PathBuf>,
    /// Deploy one function by flags: its name.
    pub name: Option<String>,
    /// With NAME: a wasm component file to upload.
    #[arg(long, requires = "name", conflicts_with = "process")]
    pub wasm: Option<PathBuf>,
    /// With NAME: the command of a process function.
    #[arg(long, requires = "name")]
    pub process: Option<String>,
    /// With --process: watchdog mode, `http` or `classic`.
    #[arg(long, default_value = "http")]
    pub mode: String,
    /// With --process: working directory of the process (must exist on the node).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Timeout per invocation, e.g. `2s`.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Memory limit, e.g. `64Mi`.
    #[arg(long)]
    pub memory: Option<String>,
    /// Environment variables, `KEY=VALUE`; repeatable.
    #[arg(long = "env", short = 'e')]
    pub env: Vec<String>,
    /// Only deploy these functions of the manifest or stack.
    #[arg(long = "only")]
    pub only: Vec<String>,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The function's name; its handler goes in ./NAME.
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// The template: python3-http or node20-http.
    #[arg(long, required_unless_present = "list")]
    pub lang: Option<String>,
    /// List the templates and exit.
    #[arg(long)]
    pub list: bool,
    /// The stack file to add the function to (made if absent).
    #[arg(long, short = 'f', default_value = "stack.yml")]
    pub stack: PathBuf,
    /// The gateway a new stack file names (`provider.gateway`).
    #[arg(long, env = "BATON_GATEWAY", default_value = "http://127.0.0.1:8080")]
    pub gateway: String,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub target: Target,
    /// The function.
    pub name: String,
    /// Request body; without it and without --data-file, stdin is read when it is not a
    /// terminal.
    #[arg(long, short = 'd', conflicts_with = "data_file")]
    pub data: Option<String>,
    /// Read the request body from this file.
    #[arg(long)]
    pub data_file: Option<PathBuf>,
    /// HTTP method [default: POST with a body, GET without].
    #[arg(long, short = 'X')]
    pub method: Option<String>,
    /// Path and query passed to the function, e.g. `/items?limit=3`.
    #[arg(long, default_value = "")]
    pub path: String,
    /// Request headers, `Name: value`; repeatable.
    #[arg(long = "header", short = 'H')]
    pub headers: Vec<String>,
    /// Invoke asynchronously: print the call id and return at once.
    #[arg(long = "async")]
    pub asynchronous: bool,
    /// With --async: URL that receives the result.
    #[arg(long, requires = "asynchronous")]
    pub callback: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    /// List the cluster's workers (with their sandboxes and load) and gateways instead.
    #[arg(long)]
    pub nodes: bool,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    #[command(flatten)]
    pub target: Target,
    /// The function.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    pub target: Target,
    /// The functions to remove.
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub target: Target,
    /// The function.
    pub name: String,
    /// How many of the most recent lines (of each worker, in a cluster); 0 or less: all.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
    pub tail: i64,
    /// Keep printing new lines as the function prints them, until Ctrl-C.
    #[arg(short, long)]
    pub follow: bool,
    /// Only lines printed within this long, e.g. `10m`, `1h`.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the lines of one sandbox (the name in brackets in each line).
    #[arg(long)]
    pub instance: Option<String>,
}

/// A site's federation identity.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Print this site's id: the public half of its Ed25519 key pair (made at first use and
    /// kept in the data directory), which other sites list as a member to admit it.
    Id {
        /// The site's data directory [default: $XDG_DATA_HOME/baton or
        /// ~/.local/share/baton].
        #[arg(long, env = "BATON_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Print `{"id": …, "key_file": …}`.
        #[arg(long)]
        json: bool,
    },
    /// As an authority, admit a site: print a certificate (JSON) signed with this site's key
    /// for `SITE_ID`, valid for `--days`. Sites that list this one in `[federation]
    /// authorities` admit whoever shows it (`[federation] certificate` on the admitted site).
    Certify {
        /// The site to admit (its `baton federation id`; ids are URL-safe base64 and may
        /// begin with `-`).
        #[arg(allow_hyphen_values = true)]
        site: String,
        /// How long the certificate holds.
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// The authority's data directory [default: $XDG_DATA_HOME/baton or
        /// ~/.local/share/baton].
        #[arg(long, env = "BATON_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Show a running site's federation: its peers (up or not, round-trip time, headroom and
    /// grants each way) and its federated functions (capacity, demand, route).
    Status {
        #[command(flatten)]
        target: Target,
    },
}

/// Objects are named `NAMESPACE/BUCKET/KEY`, as functions see them.
#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// List a namespace's buckets (`NAMESPACE`) or a bucket's objects
    /// (`NAMESPACE/BUCKET[/PREFIX]`).
    Ls {
        #[command(flatten)]
        target: Target,
        /// `NAMESPACE` or `NAMESPACE/BUCKET[/PREFIX]`.
        path: String,
    },
    /// Write an object from a file (or standard input); makes the bucket if it is new.
    Put {
        #[command(flatten)]
        target: Target,
        /// `NAMESPACE/BUCKET/KEY`.
        path: String,
        /// The file to send; `-` or nothing: standard input.
        file: Option<PathBuf>,
    },
    /// Print an object (or write it to --output).
    Get {
        #[command(flatten)]
        target: Target,
        /// `NAMESPACE/BUCKET/KEY`.
        path: String,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Delete an object (`NAMESPACE/BUCKET/KEY`) or an empty bucket (`NAMESPACE/BUCKET`).
    Rm {
        #[command(flatten)]
        target: Target,
        /// `NAMESPACE/BUCKET/KEY` or `NAMESPACE/BUCKET`.
        path: String,
        /// With a bucket: delete its objects too.
        #[arg(long)]
        force: bool,
    },
    /// Make a bucket (`NAMESPACE/BUCKET`).
    Mb {
        #[command(flatten)]
        target: Target,
        /// `NAMESPACE/BUCKET`.
        path: String,
    },
    /// Put every acknowledged write-back object in the store now.
    Flush {
        #[command(flatten)]
        target: Target,
    },
    /// What the node's cache holds: bytes, capacity, dirty objects, flush lag, hits, misses.
    Stats {
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// Write a synthetic trace in the Azure 2019 format (invocations.csv, durations.csv,
    /// memory.csv): per-function rates log-uniform between --min-rate and --max-rate per
    /// minute, log-normal execution times around --median-duration-ms.
    Generate(TraceGenerateArgs),
    /// Replay a trace: deploy one synthetic function per traced function, send the arrivals,
    /// report per-function slowdown (response time / execution time), cold starts, failures.
    Replay(TraceReplayArgs),
}

#[derive(Debug, Args)]
pub struct TraceGenerateArgs {
    /// Directory to write into.
    #[arg(long)]
    pub out: PathBuf,
    /// Functions in the trace.
    #[arg(long, default_value_t = 50)]
    pub functions: usize,
    /// Minutes of arrivals.
    #[arg(long, default_value_t = 10)]
    pub minutes: usize,
    /// Lowest mean invocations per minute of a function.
    #[arg(long, default_value_t = 0.1)]
    pub min_rate: f64,
    /// Highest mean invocations per minute of a function.
    #[arg(long, default_value_t = 1000.0)]
    pub max_rate: f64,
    /// Median execution time across functions, in milliseconds.
    #[arg(long, default_value_t = 50.0)]
    pub median_duration_ms: f64,
    /// Random seed; the same seed writes the same trace.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Lowest median allocated memory of a function, MiB.
    #[arg(long, default_value_t = 128.0)]
    pub min_memory_mb: f64,
    /// Highest median allocated memory of a function, MiB: each function's is log-uniform
    /// between the two (equal: every function alike).
    #[arg(long, default_value_t = 128.0)]
    pub max_memory_mb: f64,
}

/// What each replayed function books (`limits.memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Booking {
    /// Every function `--max-memory-mb` + 32 MiB.
    Fixed,
    /// Each function the most the trace says it allocates (its 100th percentile, rounded up to
    /// 16 MiB), at least `--max-memory-mb` + 32 MiB: the sizes size-aware keep-alive weighs.
    Trace,
}

#[derive(Debug, Args)]
pub struct TraceReplayArgs {
    /// A directory with the Azure 2019 trio, or an Azure 2021 per-invocation CSV file.
    pub trace: PathBuf,
    /// `local` (start a node for the replay) or the URL of a running node.
    #[arg(long, default_value = "local")]
    pub target: String,
    /// Real time one trace minute takes; shorter compresses the trace.
    #[arg(long, default_value = "60s")]
    pub minute: String,
    /// Replay at most this many minutes.
    #[arg(long, default_value_t = 1440)]
    pub minutes: usize,
    /// Replay at most this many functions (the first ones of the trace).
    #[arg(long)]
    pub max_functions: Option<usize>,
    /// Cap on one invocation's execution time, so a replay fits the machine.
    #[arg(long, default_value = "2s")]
    pub max_duration: String,
    /// Cap on one invocation's memory, MiB.
    #[arg(long, default_value_t = 64)]
    pub max_memory_mb: u64,
    /// What each function books.
    #[arg(long, value_enum, default_value = "fixed")]
    pub booking: Booking,
    /// Deploy each function as an http-mode process running `python3 server.py` in this
    /// directory (`benchmarks/keep-alive` has one) instead of the busy wasm guest: functions
    /// whose starts cost what `--init-ms` says.
    #[arg(long)]
    pub process_dir: Option<PathBuf>,
    /// With --process-dir, each function's initialisation (`INIT_MS`), log-uniform over
    /// `MIN-MAX` milliseconds, drawn per function from --seed.
    #[arg(long, default_value = "100-3000")]
    pub init_ms: String,
    /// Most requests in flight.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
    /// Random seed of arrival times and sampled durations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the JSON and CSV results [default: benchmarks/results/trace-replay].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Site ids are URL-safe base64: one in 64 begins with `-`, and must still parse as the
    /// value it is rather than as a flag.
    #[test]
    fn site_ids_that_begin_with_a_hyphen_are_values() {
        let id = "-Xk3vQ9mZ0aBcDeFgHiJkLmNoPqRsTuVwXyZ012345";
        let cli = Cli::try_parse_from(["baton", "federation", "certify", id, "--days", "2"])
            .expect("certify takes a hyphenated id");
        match cli.command {
            Command::Federation(FederationCommand::Certify { site, days, .. }) => {
                assert_eq!((site.as_str(), days), (id, 2));
            }
            other => panic!("parsed as {other:?}"),
        }
        let peers = format!("{id}@127.0.0.1:7000,abc@127.0.0.1:7001");
        let cli = Cli::try_parse_from(["baton", "up", "--federation-peers", &peers])
            .expect("up takes hyphenated peer ids");
        match cli.command {
            Command::Up(up) => assert_eq!(
                up.federation_peers.unwrap(),
                [format!("{id}@127.0.0.1:7000"), "abc@127.0.0.1:7001".into()]
            ),
            other => panic!("parsed as {other:?}"),
        }
    }
}
