//! A cluster started for one run: a control plane, worker processes (each with its state
//! agent, peers through the control plane) and one gateway, as the state and social-network
//! suites run them.

use super::start_role;
use crate::harness::Process;

/// What to start.
pub struct ClusterSpec<'a> {
    /// The `baton` binary.
    pub binary: &'a std::path::Path,
    /// Worker processes, one worker each (`w0`, `w1`, …).
    pub workers: usize,
    /// `durable` or `async`.
    pub durability: &'a str,
    /// The admin token of every worker's platform API and of the gateway.
    pub token: &'a str,
    /// Where the gateway listens (`127.0.0.1:0` for any port).
    pub gateway_listen: &'a str,
    /// Extra arguments of every worker.
    pub worker_args: &'a [&'a str],
    /// Extra arguments of the gateway.
    pub gateway_args: &'a [&'a str],
}

/// The running roles; stopped when dropped.
pub struct ClusterRoles {
    /// The control plane.
    pub control: Process,
    /// The worker processes, in id order.
    pub workers: Vec<Process>,
    /// The gateway.
    pub gateway: Process,
    /// Their data directories.
    pub dir: tempfile::TempDir,
}

/// Starts the control plane, then the workers, then the gateway, each once ready.
pub async fn start_cluster(spec: &ClusterSpec<'_>) -> anyhow::Result<ClusterRoles> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let control_url = format!("http://127.0.0.1:{port}");
    let path = |name: &str| dir.path().join(name).display().to_string();
    eprintln!(
        "starting a control plane, {} workers and a gateway",
        spec.workers
    );
    let (listen, control_dir) = (format!("127.0.0.1:{port}"), path("control"));
    let control = start_role(
        spec.binary,
        &["control", "--listen", &listen, "--data-dir", &control_dir],
        dir.path(),
    )
    .await?;
    let mut workers = Vec::new();
    for i in 0..spec.workers {
        let (id, data) = (format!("w{i}"), path(&format!("w{i}")));
        let mut args = vec![
            "worker",
            "--control",
            &control_url,
            "--id",
            &id,
            "--data-dir",
            &data,
            "--state-durability",
            spec.durability,
            "--token",
            spec.token,
        ];
        args.extend_from_slice(spec.worker_args);
        workers.push(start_role(spec.binary, &args, dir.path()).await?);
    }
    let mut args = vec![
        "gateway",
        "--control",
        &control_url,
        "--listen",
        spec.gateway_listen,
        "--token",
        spec.token,
    ];
    args.extend_from_slice(spec.gateway_args);
    let gateway = start_role(spec.binary, &args, dir.path()).await?;
    Ok(ClusterRoles {
        control,
        workers,
        gateway,
        dir,
    })
}
