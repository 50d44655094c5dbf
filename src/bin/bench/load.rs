//! One open-loop run against a fresh engine process: messages are scheduled at a fixed rate
//! (message `n` at `n / rate` seconds, whatever happened to the ones before), posted to the
//! carrier-neutral webhook over a pool of keep-alive connections, and received by WebSocket
//! clients. Latency is measured from the *scheduled* time, so a stalled engine is charged for
//! the messages that queued behind the stall (no coordinated omission).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use shortbox::protocol::Role;
use tokio::sync::{Mutex, mpsc, watch};

use super::child::{DataDir, EngineProcess, load_average, machine_busy_seconds, own_cpu_seconds};
use super::http::HttpConn;
use super::report::{LoadResult, Summary};
use super::world::{SECRET, World};
use super::ws::{self, ClientSpec, RunClock};

/// Who receives the events.
#[derive(Debug, Clone)]
pub struct Audience {
    /// Agents, each following one tenant (spread round-robin over the tenants).
    pub agents: usize,
    /// Ops principals, following the `ops` stream.
    pub ops: usize,
    /// Agents that stop reading `stall_after` into the load (taken from `agents`).
    pub stalled: usize,
    pub stall_after: Duration,
    /// Put every agent on tenant 0 (fan-out benchmarks) instead of round-robin.
    pub single_tenant: bool,
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub world: World,
    pub audience: Audience,
    /// Messages per second offered.
    pub rate: f64,
    pub duration: Duration,
    /// Not in the histograms nor the CPU figure.
    pub warmup: Duration,
    /// HTTP connections (at most this many requests in flight).
    pub connections: usize,
    /// How long to wait for the last deliveries after the last acknowledgement.
    pub drain: Duration,
    pub engine_bin: PathBuf,
    /// Where the engine's data directory is created (a disk, or tmpfs for a non-durable run).
    pub data_root: PathBuf,
    pub label: String,
    /// Wait (at most this long) for the machine to go quiet before the run.
    pub wait_quiet: Duration,
}

struct Job {
    n: u64,
    t_ns: u64,
}

/// Counters the posting tasks share.
struct Posting {
    /// Bit `n` set when message `n` was acknowledged with 200.
    acked_bits: Vec<AtomicU64>,
    acked: AtomicU64,
    errors: AtomicU64,
    /// Deliveries the acknowledged messages must make (followers of their stream).
    expected: AtomicU64,
    last_ack_ns: AtomicU64,
}

pub async fn run(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    let dir = DataDir::new(&spec.data_root, &spec.label)?;
    let config_path = dir.0.join("bench.toml");
    let data = dir.0.join("data");
    std::fs::write(&config_path, spec.world.config_toml())?;
    let config = shortbox::config::Config::load(&config_path)?;
    for number in spec.world.sample_numbers() {
        shortbox::domain::Msisdn::parse(&number)
            .map_err(|e| anyhow::anyhow!("bench subscriber {number}: {e}"))?;
    }

    // Principals, added before the engine starts (as `shortbox agent add` would).
    let mut clients = Vec::new();
    let a = &spec.audience;
    for i in 0..a.agents {
        let tenant = if a.single_tenant {
            0
        } else {
            i % spec.world.tenants
        };
        let id = super::world::tenant_id(tenant);
        let token = shortbox::engine::add_agent_offline(
            &config,
            &data,
            &format!("bench agent {i}"),
            Role::Agent,
            &[id],
        )?;
        clients.push(ClientSpec {
            token,
            streams: vec![super::world::tenant_stream(tenant)],
            stall_after: (i < a.stalled).then_some(a.stall_after),
        });
    }
    for i in 0..a.ops {
        let token = shortbox::engine::add_agent_offline(
            &config,
            &data,
            &format!("bench ops {i}"),
            Role::Ops,
            &[],
        )?;
        clients.push(ClientSpec {
            token,
            streams: vec!["ops".into()],
            stall_after: None,
        });
    }

    let mut engine = EngineProcess::start(
        &spec.engine_bin,
        &config_path,
        &data,
        Duration::from_secs(60),
    )?;
    let addr = engine.addr;

    // Followers per stream index, for the expected deliveries of each acknowledged message.
    let streams = spec.world.tenants + 1;
    let mut followers = vec![0u64; streams];
    // Stalled clients are not expected to receive everything (they are cut off).
    for c in clients.iter().filter(|c| c.stall_after.is_none()) {
        for s in &c.streams {
            let index = (0..streams)
                .find(|i| spec.world.stream_name(*i) == *s)
                .context("a known stream")?;
            followers[index] += 1;
        }
    }

    let total = (spec.rate * (spec.warmup + spec.duration).as_secs_f64()).round() as u64;
    let clock = Arc::new(RunClock {
        epoch: Instant::now(),
        warmup_ns: spec.warmup.as_nanos() as u64,
        total,
        received: AtomicU64::new(0),
    });

    // Connect everyone before the load starts.
    let mut sockets = Vec::new();
    for chunk in clients.chunks(64) {
        let connecting: Vec<_> = chunk
            .iter()
            .map(|c| {
                let c = c.clone();
                tokio::spawn(async move { ws::ready(addr, &c).await })
            })
            .collect();
        for task in connecting {
            sockets.push(task.await??);
        }
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let receivers: Vec<_> = sockets
        .into_iter()
        .zip(clients.iter().cloned())
        .map(|(socket, spec)| {
            tokio::spawn(ws::receive(socket, spec, clock.clone(), stop_rx.clone()))
        })
        .collect();

    // The posting pool.
    let (job_tx, job_rx) = mpsc::unbounded_channel::<Job>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let posting = Arc::new(Posting {
        acked_bits: (0..total.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
        acked: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        expected: AtomicU64::new(0),
        last_ack_ns: AtomicU64::new(0),
    });
    let run_id = format!("{}-{}", spec.label, std::process::id());
    let mut posters = Vec::new();
    for _ in 0..spec.connections.max(1) {
        let job_rx = job_rx.clone();
        let posting = posting.clone();
        let world = spec.world.clone();
        let clock = clock.clone();
        let followers = followers.clone();
        let run_id = run_id.clone();
        posters.push(tokio::spawn(async move {
            let mut conn = HttpConn::new(addr);
            let mut ack_us =
                Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
            let mut lag_us =
                Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).expect("valid bounds");
            let mut first_error = None;
            loop {
                let job = { job_rx.lock().await.recv().await };
                let Some(job) = job else { break };
                if job.t_ns >= clock.warmup_ns {
                    let now_ns = clock.epoch.elapsed().as_nanos() as u64;
                    let _ = lag_us.record((now_ns.saturating_sub(job.t_ns) / 1000).max(1));
                }
                let body = world.inbound_json(&run_id, job.n, job.t_ns);
                match conn.post("/v1/carriers/sim/inbound", SECRET, &body).await {
                    Ok((200, _)) => {
                        let now_ns = clock.epoch.elapsed().as_nanos() as u64;
                        posting.acked.fetch_add(1, Ordering::Relaxed);
                        posting.acked_bits[(job.n / 64) as usize]
                            .fetch_or(1 << (job.n % 64), Ordering::Relaxed);
                        posting
                            .expected
                            .fetch_add(followers[world.stream_index(job.n)], Ordering::Relaxed);
                        posting.last_ack_ns.fetch_max(now_ns, Ordering::Relaxed);
                        if job.t_ns >= clock.warmup_ns {
                            let _ = ack_us.record((now_ns.saturating_sub(job.t_ns) / 1000).max(1));
                        }
                    }
                    Ok((status, body)) => {
                        posting.errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| {
                            format!("{status} {}", String::from_utf8_lossy(&body))
                        });
                    }
                    Err(e) => {
                        posting.errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (ack_us, lag_us, first_error)
        }));
    }

    // The schedule: a plain thread, so it keeps time even when the runtime is busy.
    let rate = spec.rate;
    let lead = Duration::from_millis(20);
    let start_ns = clock.epoch.elapsed() + lead;
    let warmup_end = clock.epoch + start_ns + spec.warmup;
    let clock_s = clock.clone();
    let scheduler = std::thread::spawn(move || {
        let start = clock_s.epoch + start_ns;
        let period = Duration::from_secs_f64(1.0 / rate);
        let step = period.max(Duration::from_micros(200));
        let mut n = 0u64;
        while n < total {
            let now = Instant::now();
            let due = if now < start {
                0
            } else {
                (((now - start).as_secs_f64() * rate) as u64 + 1).min(total)
            };
            while n < due {
                let t = start_ns + period.mul_f64(n as f64);
                let _ = job_tx.send(Job {
                    n,
                    t_ns: t.as_nanos() as u64,
                });
                n += 1;
            }
            std::thread::sleep(step);
        }
    });

    // CPU is counted from the end of the warm-up to the end of the drain.
    let wait_warmup = warmup_end.saturating_duration_since(Instant::now());
    tokio::time::sleep(wait_warmup).await;
    let cpu0 = engine.cpu_seconds();
    let own0 = own_cpu_seconds();
    let busy0 = machine_busy_seconds();
    let acked0 = posting.acked.load(Ordering::Relaxed);
    let measure_start = Instant::now();
    // The engine's own latency histograms, to subtract the warm-up from the end's counts.
    let metrics0 = super::http::get(addr, "/metrics")
        .await
        .map(|(_, text)| text)
        .unwrap_or_default();

    let _ = tokio::task::spawn_blocking(move || scheduler.join()).await;
    let mut ack_us = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut lag_us = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut first_error = None;
    let post_deadline = Instant::now() + spec.drain + Duration::from_secs(30);
    for p in posters {
        let left = post_deadline.saturating_duration_since(Instant::now());
        if let Ok(Ok((h, lag, e))) = tokio::time::timeout(left, p).await {
            ack_us.add(&h)?;
            lag_us.add(&lag)?;
            if first_error.is_none() {
                first_error = e;
            }
        }
    }
    let sent_window = measure_start.elapsed();
    let acked_window = posting.acked.load(Ordering::Relaxed) - acked0;

    // Wait for the deliveries of everything acknowledged (bounded).
    let drain_deadline = Instant::now() + spec.drain;
    while Instant::now() < drain_deadline {
        if clock.received.load(Ordering::Relaxed) >= posting.expected.load(Ordering::Relaxed) {
            break;
        }
        if let Some(why) = engine.exited() {
            anyhow::bail!("the engine exited during the run: {why}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu1 = engine.cpu_seconds();
    let own1 = own_cpu_seconds();
    let busy1 = machine_busy_seconds();
    let window = measure_start.elapsed().as_secs_f64();
    let metrics = super::http::get(addr, "/metrics")
        .await
        .map(|(_, text)| text)
        .unwrap_or_default();
    let slow_consumers =
        super::http::metric(&metrics, "shortbox_slow_consumers_total").unwrap_or(f64::NAN);
    let hops = super::report::HOPS
        .iter()
        .filter_map(|name| super::report::Hop::between(name, &metrics0, &metrics))
        .collect();
    let peak_rss = engine.peak_rss_mib();
    let rss_end = engine.rss_mib();
    let _ = stop_tx.send(true);

    let mut e2e = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut e2e_stalled = Histogram::<u64>::new_with_bounds(1, 120_000_000, 3)?;
    let mut lost = 0u64;
    let mut duplicates = 0u64;
    let mut delivered = 0u64;
    let mut stalled_lost = 0u64;
    let mut closes = Vec::new();
    // The acknowledged messages of each stream.
    let mut acked_by_stream: Vec<Vec<u64>> = vec![Vec::new(); streams];
    for n in 0..total {
        if posting.acked_bits[(n / 64) as usize].load(Ordering::Relaxed) & (1 << (n % 64)) != 0 {
            acked_by_stream[spec.world.stream_index(n)].push(n);
        }
    }
    for r in receivers {
        let report = r.await?;
        // Every acknowledged message of its streams must have arrived.
        let mut missing = 0u64;
        for s in &report.streams {
            let Some(index) = (0..streams).find(|i| spec.world.stream_name(*i) == *s) else {
                continue;
            };
            for &n in &acked_by_stream[index] {
                if report.received[(n / 64) as usize] & (1 << (n % 64)) == 0 {
                    missing += 1;
                }
            }
        }
        duplicates += report.duplicates;
        delivered += report
            .received
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum::<u64>();
        if report.stalled {
            stalled_lost += missing;
            e2e_stalled.add(&report.latency_us)?;
            closes.push(report.close);
        } else {
            lost += missing;
            e2e.add(&report.latency_us)?;
        }
    }
    let engine_start_ms = engine.started_in.as_secs_f64() * 1000.0;
    engine.stop(Duration::from_secs(5));
    drop(dir);

    let acked = posting.acked.load(Ordering::Relaxed);
    let engine_cpu = cpu1 - cpu0;
    Ok(LoadResult {
        label: spec.label.clone(),
        offered_rate: spec.rate,
        duration_s: spec.duration.as_secs_f64(),
        scheduled: total,
        acked,
        errors: posting.errors.load(Ordering::Relaxed),
        first_error,
        achieved_rate: acked_window as f64 / sent_window.as_secs_f64(),
        deliveries: delivered,
        deliveries_per_s: e2e.len() as f64 / sent_window.as_secs_f64(),
        lost,
        duplicates,
        stalled_lost,
        stalled_closes: closes,
        e2e: Summary::of(&e2e),
        e2e_stalled: (spec.audience.stalled > 0).then(|| Summary::of(&e2e_stalled)),
        ack: Summary::of(&ack_us),
        post_lag: Summary::of(&lag_us),
        engine_cpu_s: engine_cpu,
        cpu_s_per_1000: engine_cpu / (acked_window.max(1) as f64 / 1000.0),
        bench_cpu_s: own1 - own0,
        others_cores: ((busy1 - busy0) - engine_cpu - (own1 - own0)) / window,
        load_average: load_average(),
        peak_rss_mib: peak_rss,
        rss_end_mib: rss_end,
        slow_consumers,
        hops,
        engine_start_ms,
        clients: clients.len(),
    })
}
