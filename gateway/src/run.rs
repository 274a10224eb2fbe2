//! `vgate run`: start the bridge, the listeners and the HTTP server; stop gracefully.
//!
//! Start-up order: the log filter (a bad one is exit 2, naming `VGATE_LOG` or the file's
//! `log`), metrics recorder, MQTT bridge (embedded broker first when no external broker is
//! configured; a refusal by the broker is a clear error and exit 2), then every listener is
//! bound, the command queue opened and the HTTP listener bound. Only then, when start-up can
//! no longer fail, do the listeners start accepting and is each announced on stdout as
//! `listening <name> <addr>`, so a script that waits for those lines never sees one from a
//! vgate that then exits. On SIGTERM/SIGINT: (cluster mode: stop taking commands and store
//! those on their way), stop accepting, close every session (each publishes its vehicle
//! offline with reason `shutdown`), flush the bridge, exit 0.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use tokio::io::WriteHalf;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::auth::Authenticator;
use crate::config::{Config, ListenerKind, VehicleListener};
use crate::front::{FrontDoor, VStream};
use crate::registry::{LocalRegistry, Registry};
use crate::session::{self, Shared};
use crate::sink::Sink;
use crate::tls::{TlsReloader, TlsSlot};
use crate::Failure;

/// Cluster mode: how long a stopping node keeps storing the commands the broker sent it
/// before it unsubscribed (its inflight window: they arrive within a round trip or two).
const COMMAND_DRAIN: Duration = Duration::from_secs(1);

/// How long shutdown waits for sessions to publish their offline presence.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the gateway until a signal.
pub fn run(config: Option<PathBuf>) -> Result<(), Failure> {
    let cfg = Config::load(config.as_deref()).map_err(Failure::Usage)?;
    crate::logging::init(&cfg.log, cfg.log_format)
        .map_err(|e| Failure::Usage(anyhow!("{}: {e}", log_filter_source(config.as_deref()))))?;
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("vgate");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let env_override = std::env::var_os("TOKIO_WORKER_THREADS").is_some();
    let workers = cfg.runtime_workers(cores, env_override);
    if let Some(n) = workers {
        rt.worker_threads(n);
    }
    let rt = rt
        .build()
        .map_err(|e| Failure::Usage(anyhow!("starting the runtime: {e}")))?;
    info!(
        workers = workers.map_or_else(|| "tokio default".to_owned(), |n| n.to_string()),
        cores,
        broker_on_this_machine = cfg.broker_is_local(),
        "runtime"
    );
    rt.block_on(serve(cfg, config))
}

/// Where the log filter in force came from, for the error refusing it: `VGATE_LOG`
/// overrides the file's `log` (as in [`Config::load_with`]).
fn log_filter_source(file: Option<&Path>) -> String {
    match (std::env::var("VGATE_LOG").is_ok(), file) {
        (true, _) => "environment variable VGATE_LOG".to_owned(),
        (false, Some(p)) => format!("config file {}: log", p.display()),
        (false, None) => "log".to_owned(),
    }
}

/// A listener's accept loop, or the HTTP server, built but not started yet.
type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What start-up has bound, started only once nothing can fail any more.
#[derive(Default)]
struct Ready {
    /// `listening <name> <addr>` lines, in start-up order.
    announce: Vec<(String, SocketAddr)>,
    /// Accept loops, started on the session tracker.
    tracked: Vec<Task>,
    /// Other tasks (the HTTP server).
    detached: Vec<Task>,
    /// Each vehicle listener's frame rate limit, by name (a reload changes them).
    frame_limits: Vec<(String, Arc<session::LiveRate>)>,
}

impl Ready {
    /// Starts every task, then prints the `listening` lines.
    fn go(self, tracker: &TaskTracker) {
        for t in self.tracked {
            tracker.spawn(t);
        }
        for t in self.detached {
            tokio::spawn(t);
        }
        let mut out = std::io::stdout().lock();
        for (name, addr) in self.announce {
            let _ = writeln!(out, "listening {name} {addr}");
        }
        let _ = out.flush();
    }
}

/// What every vehicle listener is started with: one way to bind, authenticate, accept and
/// announce, whatever the protocol, plain or TLS, however many listeners a protocol has.
struct Listeners<'a> {
    ready: &'a mut Ready,
    tracker: &'a TaskTracker,
    shutdown: &'a CancellationToken,
    data_dir: &'a Path,
    shared: &'a Shared,
    tls: &'a TlsReloader,
    /// Cluster mode: auth codes are shared through Redis.
    cluster: Option<&'a crate::cluster::Cluster>,
}

impl Listeners<'_> {
    /// Binds the listener `vl` (errors name its configuration key), builds the state its
    /// sessions share (authenticator, front door with its TLS configuration), and queues its
    /// accept loop: each connection passes the front door ([`FrontDoor::admit`]), then runs
    /// the session driver with protocol `P` over the plain or TLS stream, on the session
    /// tracker.
    async fn spawn<P>(&mut self, vl: &VehicleListener, cfg: P::Config) -> Result<(), Failure>
    where
        P: session::Protocol<WriteHalf<VStream>>,
        P::Config: session::SessionConfig,
    {
        use session::SessionConfig;
        let (device_offset_secs, limits) = (cfg.device_offset_secs(), cfg.limits());
        let key = &vl.key;
        let Some(addr) = vl.listen().addr() else {
            return Ok(());
        };
        // Listener names label metrics for the process's lifetime: a handful, leaked once.
        let name: &'static str = Box::leak(vl.name.clone().into_boxed_str());
        let front_cfg = vl.front();
        let listener = crate::listener::bind_with(addr, front_cfg.reuse_port)
            .map_err(|e| Failure::Usage(anyhow!("{key}.listen: {e:#}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::Usage(e.into()))?;
        let shared_codes = self
            .cluster
            .map(|c| crate::cluster::codes::RedisCodes::new(c.redis.clone(), &c.ns, name));
        let auth = Authenticator::new_shared(name, vl.auth(), self.data_dir, shared_codes)
            .await
            .map_err(|e| Failure::Usage(e.context(format!("{key}.auth"))))?;
        let tls = match vl.tls() {
            None => None,
            Some(t) => {
                let slot = TlsSlot::new(name, format!("{key}.tls"), t.clone())
                    .map_err(|e| Failure::Usage(anyhow!("{key}.tls.{}: {}", e.key, e.reason)))?;
                self.tls.add(slot.clone());
                Some(slot)
            }
        };
        let front = Arc::new(FrontDoor::new(name, &front_cfg, tls));
        self.ready
            .frame_limits
            .push((name.to_owned(), limits.max_frames_per_s.clone()));
        let l = Arc::new(session::Listener {
            name,
            cfg,
            auth,
            shared: self.shared.clone(),
            device_offset_secs,
            limits,
            front: front.clone(),
            span: session::session_span(name),
        });
        let t = self.tracker.clone();
        self.ready
            .tracked
            .push(Box::pin(crate::listener::accept_loop(
                name,
                listener,
                self.shutdown.clone(),
                move |stream, peer| {
                    // Refused at once when the listener is full (counted by `permit`).
                    let permit = front.permit(peer);
                    let stream = permit.is_ok().then_some(stream);
                    let (front, l) = (front.clone(), l.clone());
                    t.track_future(async move {
                        let (Some(stream), Ok(permit)) = (stream, permit) else {
                            return;
                        };
                        let Some(a) = front.admit(stream, peer).await else {
                            return;
                        };
                        session::driver::run_with::<VStream, P>(a.stream, a.peer, l, a.names).await;
                        drop((permit, a.slot));
                    })
                },
            )));
        self.ready.announce.push((name.to_owned(), local));
        Ok(())
    }
}

async fn serve(cfg: Config, config_file: Option<PathBuf>) -> Result<(), Failure> {
    let prometheus =
        crate::metrics::install().map_err(|e| Failure::Usage(anyhow!("metrics: {e}")))?;
    let node: Arc<str> = Arc::from(cfg.node_id());
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("data_dir {}: cannot create it", cfg.data_dir.display()))
        .map_err(Failure::Usage)?;
    crate::traces::start_configured(&crate::traces::dir(&cfg.data_dir), &cfg.traces, &[]);

    let mut mqtt = cfg.mqtt.clone();
    if mqtt.spool.dir.is_none() {
        mqtt.spool.dir = Some(cfg.data_dir.join("spool"));
    }
    // Cluster mode (contract §7): Redis first (a node that cannot share state must not act
    // alone), then commands through the shared subscription.
    let cluster = match cfg.cluster.redis_url() {
        None => None,
        Some(url) => {
            let c = crate::cluster::Cluster::connect(
                &cfg.cluster,
                url,
                &cfg.topic_prefix,
                node.clone(),
            )
            .await
            .map_err(|e| Failure::Usage(anyhow!("cluster.redis_url: {e}")))?;
            info!(redis = %crate::cluster::redis::redact(url), incarnation = %c.incarnation, "cluster mode");
            mqtt.share_group = Some(crate::cluster::SHARE_GROUP.to_owned());
            Some(c)
        }
    };
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut bridge = mqtt_bridge::Bridge::start(&mqtt, &node, &cfg.topic_prefix)
        .await
        .map_err(|e| Failure::Usage(anyhow!("MQTT: {e}")))?;
    let mut ready = Ready::default();
    if let Some(addr) = bridge.embedded_addr() {
        ready.announce.push(("mqtt".to_owned(), addr));
    }

    let sink = Sink::Mqtt(bridge.publisher());
    let local = LocalRegistry::new();
    let mut cluster_registry = None;
    let registry: Arc<dyn Registry> = match &cluster {
        Some(c) => {
            let inbox = crate::cluster::inbox::Inbox::new(c.redis.clone(), c.ns.clone());
            tokio::spawn(inbox.clone().listen(
                node.clone(),
                c.keys(),
                local.clone(),
                sink.clone(),
                shutdown.clone(),
            ));
            let r = crate::cluster::presence::ClusterRegistry::start(
                local,
                c.redis.clone(),
                c.keys(),
                inbox,
                sink.clone(),
                node.clone(),
                shutdown.clone(),
            );
            cluster_registry = Some(r.clone());
            r
        }
        None => crate::stale::JournaledRegistry::start(
            local,
            &cfg.data_dir,
            sink.clone(),
            node.clone(),
            Duration::from_secs(cfg.cluster.restart_grace_s),
        )
        .with_context(|| {
            format!(
                "presence journal {}",
                cfg.data_dir.join(crate::stale::JOURNAL).display()
            )
        })
        .map_err(Failure::Usage)?,
    };
    let queue_path = cfg.data_dir.join("commands.redb");
    let limits = crate::queue::QueueLimits {
        per_vehicle: cfg.commands.max_per_vehicle,
        global: cfg.commands.max_total,
        ..Default::default()
    };
    let queue: Arc<dyn crate::queue::CommandQueue> = match &cluster {
        Some(c) => Arc::new(crate::cluster::queue::RedisQueue::new(
            c.redis.clone(),
            &c.ns,
            limits,
            tokio::runtime::Handle::current(),
        )),
        None => Arc::new(
            tokio::task::spawn_blocking(move || crate::queue::RedbQueue::open(&queue_path, limits))
                .await
                .map_err(|e| Failure::Usage(anyhow!("opening the command queue: {e}")))?
                .with_context(|| {
                    format!(
                        "command queue {}",
                        cfg.data_dir.join("commands.redb").display()
                    )
                })
                .map_err(Failure::Usage)?,
        ),
    };
    let (seen_tx, seen_rx) = tokio::sync::mpsc::channel(crate::commands::SEEN_CAPACITY);
    tokio::spawn(crate::commands::remember_seen(queue.clone(), seen_rx));
    let settle = crate::commands::settle::Settler::spawn(
        queue.clone(),
        Some(crate::commands::ResultPublisher::new(
            node.clone(),
            sink.clone(),
        )),
    );
    let packages = crate::packages::Packages::open(
        cfg.data_dir.join("packages"),
        cfg.commands.upgrade.clone(),
    )
    .context("upgrade package store")
    .map_err(Failure::Usage)?;
    let commands = Arc::new(crate::commands::Commands {
        cfg: cfg.commands.clone(),
        queue,
        sink: sink.clone(),
        node: node.clone(),
        seen_tx,
        settle,
        packages: Arc::new(packages),
        upgrades: Default::default(),
    });
    if let Some(rx) = bridge.take_commands() {
        let d = crate::commands::Dispatcher {
            commands: commands.clone(),
            registry: registry.clone(),
        };
        tokio::spawn(d.run(rx));
    }
    tokio::spawn(crate::commands::sweep_expired(
        commands.clone(),
        shutdown.clone(),
    ));
    let shared = Shared {
        node: node.clone(),
        sink,
        registry: registry.clone(),
        alarms: Arc::new(crate::alarms::LocalAlarms::new()),
        media: crate::media::open(&cfg.media, &cfg.data_dir)
            .context("media store")
            .map_err(Failure::Usage)?,
        commands,
        vehicle_keys: Arc::new(crate::vehicle_keys::VehicleKeys::new(
            cfg.gbt32960.security.clone(),
            &cfg.data_dir,
        )),
        shutdown: shutdown.clone(),
    };

    let tls = TlsReloader::default();
    let mut listeners = Listeners {
        ready: &mut ready,
        tracker: &tracker,
        shutdown: &shutdown,
        data_dir: &cfg.data_dir,
        shared: &shared,
        tls: &tls,
        cluster: cluster.as_ref(),
    };
    let vehicle_listeners = cfg
        .vehicle_listeners()
        .map_err(|e| Failure::Usage(anyhow!("{e}")))?;
    for vl in &vehicle_listeners {
        match &vl.kind {
            ListenerKind::Jt808(c) => {
                listeners
                    .spawn::<session::jt808::Session<_>>(vl, c.clone())
                    .await?
            }
            ListenerKind::Gbt32960(c) => {
                listeners
                    .spawn::<session::gbt32960::Session<_>>(vl, c.clone())
                    .await?
            }
            ListenerKind::Raw(c) => {
                listeners
                    .spawn::<session::raw::Session<_>>(vl, c.clone())
                    .await?
            }
        }
    }

    let mut api = None;
    if let Some(addr) = cfg.http.listen.addr() {
        let listener = crate::listener::bind(addr)
            .map_err(|e| Failure::Usage(anyhow!("http.listen: {e:#}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::Usage(e.into()))?;
        let state = operator_api(
            &cfg,
            config_file,
            &shared,
            &bridge,
            &ready,
            prometheus,
            &tls,
            cluster.as_ref().map(|c| c.redis.clone()),
        )?;
        api = Some(state.clone());
        let sd = shutdown.clone();
        ready.detached.push(Box::pin(async move {
            if let Err(e) = crate::http::serve(listener, state, sd).await {
                warn!(error = %e, "http server stopped");
            }
        }));
        ready.announce.push(("http".to_owned(), local));
    }

    // The signal handlers are in place before anyone is told vgate is ready: a SIGTERM sent
    // right after the `listening` lines is a clean shutdown, not the default action (death).
    let stop = stop_signal();
    reload_on_hangup(tls.clone(), api);
    // Nothing can fail from here on: accept, then say where.
    ready.go(&tracker);
    info!(node = %node, "vgate running");
    stop.await;
    if let Some(registry) = &cluster_registry {
        // Drain: no new command for this node (the broker gives them to the other nodes of
        // the shared group), and the ones already on their way are stored and acknowledged
        // before the sessions close; the vehicles then reconnect to the other nodes, where
        // their queued commands wait for them, and their presence goes over without an
        // offline in between (docs/deploy.md, rolling restart).
        info!("draining: taking no more commands");
        if let Err(e) = bridge.stop_commands().await {
            warn!(error = %e, "could not unsubscribe from the command topics");
        }
        tokio::time::sleep(COMMAND_DRAIN).await;
        registry.drain().await;
    }
    info!("shutting down: closing sessions");
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            open = tracker.len(),
            "sessions still open after the drain timeout"
        );
    } else if cluster.is_none() {
        // Every session published its own offline: nothing stale to clear next start.
        crate::stale::JournaledRegistry::clean_stop(&cfg.data_dir);
    }
    if let Err(e) = bridge.shutdown().await {
        warn!(error = %e, "MQTT bridge did not flush everything before stopping");
    }
    info!("stopped");
    Ok(())
}

/// Installs the SIGHUP handler: each SIGHUP re-reads every TLS listener's certificate, key,
/// CA bundle and CRLs ([`TlsReloader::reload`]; new handshakes use them, established
/// sessions keep theirs, a bad file keeps the old configuration and is logged), then, with
/// the HTTP listener on, the configuration keys that can change live, as
/// `POST /api/v1/reload` does ([`crate::api::stats::reload_now`]).
fn reload_on_hangup(tls: TlsReloader, api: Option<crate::api::State>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        info!("SIGHUP: reloading TLS files");
                        let t = tls.clone();
                        let _ = tokio::task::spawn_blocking(move || t.reload()).await;
                        if let Some(api) = &api {
                            if let Err(e) = crate::api::stats::reload_now(api, false).await {
                                warn!(error = %e.message, "SIGHUP: configuration not reloaded; it is unchanged");
                            }
                        }
                    }
                });
            }
            Err(e) => warn!(error = %e, "no SIGHUP handler: TLS files cannot be reloaded"),
        }
    }
    #[cfg(not(unix))]
    drop((tls, api));
}

/// The operator API's state: what its handlers reach (registry, commands, the bridge's
/// health, the vehicle listeners bound so far, Redis in cluster mode) and its tokens.
#[allow(clippy::too_many_arguments)]
fn operator_api(
    cfg: &Config,
    config_file: Option<PathBuf>,
    shared: &Shared,
    bridge: &mqtt_bridge::Bridge,
    ready: &Ready,
    prometheus: metrics_exporter_prometheus::PrometheusHandle,
    tls: &TlsReloader,
    redis: Option<crate::cluster::redis::Redis>,
) -> Result<crate::api::State, Failure> {
    let tls = tls.clone();
    let tls_files: crate::api::Reloader = Arc::new(move || {
        tls.reload()
            .into_iter()
            .map(|o| (o.listener, o.error))
            .collect()
    });
    let tokens = crate::api::auth::Tokens::load(&cfg.http)
        .map_err(|e| Failure::Usage(anyhow!("http.tokens_file: {e}")))?;
    Ok(Arc::new(crate::api::Api {
        node: shared.node.clone(),
        prometheus,
        registry: shared.registry.clone(),
        commands: shared.commands.clone(),
        dispatcher: crate::commands::Dispatcher {
            commands: shared.commands.clone(),
            registry: shared.registry.clone(),
        },
        broker: bridge.health(),
        redis,
        listeners: ready
            .announce
            .iter()
            .filter(|(name, _)| name != "mqtt")
            .cloned()
            .collect(),
        shutdown: shared.shutdown.clone(),
        tokens: std::sync::RwLock::new(Arc::new(tokens)),
        config_file,
        config: std::sync::Mutex::new(cfg.clone()),
        started: std::time::Instant::now(),
        rates: Default::default(),
        frame_limits: ready.frame_limits.clone(),
        data_dir: cfg.data_dir.clone(),
        // Every TLS listener's certificate, key, CA bundle and CRLs, as on SIGHUP.
        reloaders: vec![tls_files],
    }))
}

/// Installs the SIGTERM / SIGINT handlers now and returns what resolves on the first signal.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
