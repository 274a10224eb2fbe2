//! [`RedisServer`]: a redis-server of our own per test, on a free port, nothing saved to disk
//! (`--save '' --appendonly no`), killed on drop. Without redis-server a test skips and prints
//! `note: <test> skipped: ...`; with `CI` set it fails instead. `VGATE_TEST_REDIS` overrides
//! the path.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, skip_note, HANG_GUARD};

/// Where redis-server is, or None (after printing that the running test skips). With `CI`
/// set, a missing redis-server is a test failure.
pub fn redis_server_path() -> Option<PathBuf> {
    let candidates = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].map(PathBuf::from);
    crate::find_tool(
        "VGATE_TEST_REDIS",
        &candidates,
        "redis-server",
        "install it with apt-get install redis-server",
    )
}

/// A redis-server of our own, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    path: PathBuf,
}

impl RedisServer {
    /// Starts redis-server on a free port, or None when it is not installed (and CI is not set).
    pub fn start() -> Option<RedisServer> {
        let path = redis_server_path()?;
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn(&path, port) {
                return Some(RedisServer { child, port, path });
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: clients see their connections drop; nothing is saved).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again, empty, on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        for _ in 0..25 {
            if let Some(child) = spawn(&self.path, self.port) {
                self.child = child;
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("redis-server did not start again on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(path: &PathBuf, port: u16) -> Option<Child> {
    let mut child = Command::new(path)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let start = Instant::now();
    while start.elapsed() < HANG_GUARD {
        if child.try_wait().ok().flatten().is_some() {
            return None;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(30));
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A Redis Cluster of our own: three masters on free ports, slots spread over them
/// (`redis-cli --cluster create`), nothing saved, killed on drop.
pub struct RedisCluster {
    servers: Vec<Child>,
    pub ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl RedisCluster {
    /// Starts the cluster, or None without redis-server (and CI not set). Needs redis-cli.
    pub fn start() -> Option<RedisCluster> {
        let path = redis_server_path()?;
        let cli = Command::new("redis-cli")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !cli {
            if std::env::var_os("CI").is_some() {
                panic!("redis-cli is required in CI (CI is set) but was not found; it comes with redis-server (redis-tools)");
            }
            skip_note(&format!(
                "{} skipped: redis-cli not found (apt-get install redis-tools)",
                std::thread::current().name().unwrap_or("this test")
            ));
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut servers = Vec::new();
        let mut ports = Vec::new();
        for i in 0..3 {
            let port = free_port();
            let child = Command::new(&path)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--cluster-enabled",
                    "yes",
                ])
                .arg("--cluster-config-file")
                .arg(dir.path().join(format!("nodes-{i}.conf")))
                .arg("--dir")
                .arg(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            servers.push(child);
            ports.push(port);
        }
        for p in &ports {
            crate::wait_port(*p, HANG_GUARD);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let status = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli runs");
        assert!(status.success(), "redis-cli --cluster create failed");
        // Wait until every node agrees the cluster is up.
        let start = Instant::now();
        for p in &ports {
            loop {
                let out = Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .expect("redis-cli runs");
                if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < HANG_GUARD,
                    "the Redis Cluster did not come up"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some(RedisCluster {
            servers,
            ports,
            _dir: dir,
        })
    }

    /// `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` (vgate's Cluster URL form).
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.servers {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A Redis master watched by one Sentinel (master name `vgate`), both of our own on free
/// ports, killed on drop.
pub struct RedisSentinel {
    pub master: RedisServer,
    sentinel: Child,
    pub sentinel_port: u16,
    _dir: tempfile::TempDir,
}

impl RedisSentinel {
    /// Starts the master and the Sentinel, or None without redis-server (and CI not set).
    pub fn start() -> Option<RedisSentinel> {
        let master = RedisServer::start()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\nsentinel monitor vgate 127.0.0.1 {} 1\n",
                master.port
            ),
        )
        .expect("sentinel.conf");
        let sentinel = Command::new(&master.path)
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server --sentinel");
        crate::wait_port(port, HANG_GUARD);
        Some(RedisSentinel {
            master,
            sentinel,
            sentinel_port: port,
            _dir: dir,
        })
    }

    /// `redis+sentinel://127.0.0.1:{sentinel}/vgate` (vgate's Sentinel URL form).
    pub fn url(&self) -> String {
        format!("redis+sentinel://127.0.0.1:{}/vgate", self.sentinel_port)
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.sentinel.kill();
        let _ = self.sentinel.wait();
    }
}
