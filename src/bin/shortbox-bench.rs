//! `shortbox-bench`: the load generator and the benchmarks of `docs/benchmarks.md`.
//!
//! End-to-end benchmarks (B1, B2, B4, B5, B10) run the real engine as a child process
//! (`shortbox serve`, the binary next to this one) on a fresh data directory, so its CPU time
//! and peak memory are read apart from the generator's. In-process ones (B3, B9) call the
//! engine's store and throttle directly. Every run prints one JSON object on stdout and one
//! line for people on stderr. Traffic goes to 127.0.0.1 only; every loop is bounded.
//!
//! Build with `cargo build --release --bins`, then e.g. `target/release/shortbox-bench b1`.

mod bench;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use bench::child::{DataDir, EngineProcess, default_engine_binary};
use bench::load::{Audience, LoadSpec};
use bench::report::{LoadResult, Medians, emit, median};
use bench::world::World;

#[derive(Parser)]
#[command(
    name = "shortbox-bench",
    about = "Load generator and benchmarks for shortbox"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// B1: inbound end to end (webhook → route → commit → WebSocket clients) at a fixed rate.
    B1 {
        #[command(flatten)]
        load: LoadOpts,
        /// Messages per second offered.
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        /// Repeat the run and report the medians too.
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// B1 saturation: step the rate up until p99 passes the bound, something is lost, or the
    /// engine cannot keep the rate; report the highest rate that passed.
    Saturate {
        #[command(flatten)]
        load: LoadOpts,
        #[arg(long, default_value_t = 2000.0)]
        from: f64,
        #[arg(long, default_value_t = 2000.0)]
        step: f64,
        #[arg(long, default_value_t = 40000.0)]
        max_rate: f64,
        /// The p99 bound (end to end) in milliseconds.
        #[arg(long, default_value_t = 10.0)]
        p99_ms: f64,
        /// Bisection steps between the last pass and the first failure.
        #[arg(long, default_value_t = 2)]
        refine: u32,
        /// Runs at each rate: the rate passes if no run lost, duplicated or refused anything
        /// or fell behind, and the *median* p99 is within the bound (one disturbed run on a
        /// shared machine then does not end the search; 1: every run decides alone).
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// B2: durable ack cost. The same load with the data on disk (fsync) and on tmpfs (fsync
    /// is free), alternated; ack and end-to-end p99 compared.
    B2 {
        #[command(flatten)]
        load: LoadOpts,
        #[arg(long, default_value_t = 5000.0)]
        rate: f64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Where the non-durable variant keeps its data (must be tmpfs).
        #[arg(long, default_value = "/dev/shm")]
        volatile_root: PathBuf,
        /// Another engine binary for a third variant (e.g. one built with
        /// `--features ack-before-commit`), on the durable root.
        #[arg(long)]
        early_ack_engine: Option<PathBuf>,
    },
    /// B3: storage rows/s with the real schema at several batch sizes.
    B3 {
        #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
        batches: Vec<usize>,
        /// Time budget per batch size, seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 20_000)]
        conversations: u64,
        #[arg(long, default_value = "target/bench-data")]
        data_root: PathBuf,
        /// Also read a history page every N ms while writing (alternately with the writer's
        /// reader and with one of another process), and report their times.
        #[arg(long)]
        history_every_ms: Option<u64>,
    },
    /// B4: fan-out to 10 / 100 / 1000 clients of one tenant at a fixed delivery rate.
    B4 {
        #[command(flatten)]
        load: LoadOpts,
        #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
        clients: Vec<usize>,
        /// Deliveries per second (messages/s = deliveries / clients).
        #[arg(long, default_value_t = 100_000.0)]
        deliveries: f64,
    },
    /// B5: slow consumers. The same fan-out with and without a share of clients that stop
    /// reading; the others' p99 and the engine's memory compared.
    B5 {
        #[command(flatten)]
        load: LoadOpts,
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Slow clients per thousand.
        #[arg(long, default_value_t = 10)]
        slow_permille: usize,
        #[arg(long, default_value_t = 500.0)]
        rate: f64,
        #[arg(long, default_value_t = 1)]
        runs: usize,
    },
    /// B9: outbound throttle, 20 codes × 100 MPS (simulated clock, then 10 s of real time).
    B9 {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// B10: time from start to serving with many stored messages.
    B10 {
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        #[arg(long, default_value_t = 100_000)]
        conversations: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Reuse (or keep) this data directory instead of a temporary one.
        #[arg(long)]
        data: Option<PathBuf>,
        #[arg(long, default_value = "target/bench-data")]
        data_root: PathBuf,
        #[arg(long)]
        engine: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct LoadOpts {
    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    #[arg(long, default_value_t = 8)]
    tenants: usize,
    /// Agents (one tenant each, round-robin).
    #[arg(long, default_value_t = 16)]
    agents: usize,
    /// Ops principals (the `ops` stream).
    #[arg(long, default_value_t = 2)]
    ops: usize,
    /// Subscribers writing to tenants (after the warm-up most of them have a conversation).
    #[arg(long, default_value_t = 5_000)]
    subscribers: usize,
    /// HTTP keep-alive connections posting (requests in flight at most).
    #[arg(long, default_value_t = 256)]
    connections: usize,
    /// Seconds to wait for the last deliveries.
    #[arg(long, default_value_t = 10.0)]
    drain: f64,
    /// Where engine data directories are created (a real disk for durable figures).
    #[arg(long, default_value = "target/bench-data")]
    data_root: PathBuf,
    /// The engine binary (default: `shortbox` next to this binary).
    #[arg(long)]
    engine: Option<PathBuf>,
    #[arg(long, default_value_t = 4096)]
    connection_queue: usize,
    #[arg(long, default_value_t = 1024)]
    batch_max: usize,
    /// Before each run, wait up to this many seconds for the rest of the machine to go quiet
    /// (other processes below 0.25 cores over a second); 0: do not wait.
    #[arg(long, default_value_t = 0.0)]
    wait_quiet: f64,
}

impl LoadOpts {
    fn spec(&self, label: &str, rate: f64) -> LoadSpec {
        LoadSpec {
            world: World {
                tenants: self.tenants,
                subscribers: self.subscribers,
                connection_queue: self.connection_queue,
                batch_max: self.batch_max,
                ..World::default()
            },
            audience: Audience {
                agents: self.agents,
                ops: self.ops,
                stalled: 0,
                stall_after: Duration::ZERO,
                single_tenant: false,
            },
            rate,
            duration: Duration::from_secs_f64(self.duration),
            warmup: Duration::from_secs_f64(self.warmup),
            connections: self.connections,
            drain: Duration::from_secs_f64(self.drain),
            engine_bin: self.engine.clone().unwrap_or_else(default_engine_binary),
            data_root: self.data_root.clone(),
            label: label.to_string(),
            wait_quiet: Duration::from_secs_f64(self.wait_quiet),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(cli.command))
}

async fn one(spec: &LoadSpec) -> anyhow::Result<LoadResult> {
    std::fs::create_dir_all(&spec.data_root)
        .with_context(|| format!("cannot create {}", spec.data_root.display()))?;
    if spec.wait_quiet > Duration::ZERO {
        wait_quiet(spec.wait_quiet).await;
    }
    let result = bench::load::run(spec).await?;
    emit(&result, &result.human());
    Ok(result)
}

/// Waits (at most `limit`) until other processes use less than a quarter of a core.
async fn wait_quiet(limit: Duration) {
    use bench::child::{machine_busy_seconds, own_cpu_seconds};
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        let (b0, o0) = (machine_busy_seconds(), own_cpu_seconds());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let others = (machine_busy_seconds() - b0) - (own_cpu_seconds() - o0);
        if others < 0.25 {
            return;
        }
    }
    eprintln!("the machine did not go quiet within {limit:?}; running anyway");
}

async fn run(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::B1 { load, rate, runs } => {
            let mut results = Vec::new();
            for i in 0..runs.max(1) {
                results.push(one(&load.spec(&format!("B1 run {}", i + 1), rate)).await?);
            }
            if results.len() > 1 {
                let m = Medians::of("B1", &results);
                emit(&m, &m.human());
            }
        }
        Cmd::Saturate {
            load,
            from,
            step,
            max_rate,
            p99_ms,
            refine,
            runs,
        } => {
            let bound = Bound {
                p99_ms,
                runs: runs.max(1),
            };
            saturate(&load, from, step, max_rate, bound, refine).await?
        }
        Cmd::B2 {
            load,
            rate,
            runs,
            volatile_root,
            early_ack_engine,
        } => b2(&load, rate, runs, volatile_root, early_ack_engine).await?,
        Cmd::B3 {
            batches,
            seconds,
            messages,
            conversations,
            data_root,
            history_every_ms,
        } => {
            std::fs::create_dir_all(&data_root)?;
            let fsync = bench::storage::fsync_probe(&data_root, 200)?;
            emit(
                &serde_json::json!({ "fsync_4k": fsync, "dir": data_root }),
                &format!(
                    "fsync of 4 KiB in {}: {}",
                    data_root.display(),
                    fsync.line()
                ),
            );
            for batch in batches {
                let dir = DataDir::new(&data_root, "b3")?;
                let r = bench::storage::storage_run(
                    &dir.0,
                    batch.max(1),
                    messages,
                    Duration::from_secs(seconds),
                    conversations,
                    history_every_ms.map(Duration::from_millis),
                )?;
                emit(&r, &r.human());
            }
        }
        Cmd::B4 {
            load,
            clients,
            deliveries,
        } => {
            for n in clients {
                let rate = deliveries / n.max(1) as f64;
                let mut spec = load.spec(&format!("B4 {n} clients"), rate);
                spec.audience.agents = n;
                spec.audience.ops = 0;
                spec.audience.single_tenant = true;
                spec.world.ops_permille = 0;
                spec.world.dedicated_permille = 1000;
                spec.world.tenants = 1;
                one(&spec).await?;
            }
        }
        Cmd::B5 {
            load,
            clients,
            slow_permille,
            rate,
            runs,
        } => {
            let slow = (clients * slow_permille).div_ceil(1000);
            for i in 0..runs.max(1) {
                for stalled in [0, slow] {
                    let mut spec = load.spec(
                        &format!("B5 run {} {stalled} slow of {clients}", i + 1),
                        rate,
                    );
                    spec.audience.agents = clients;
                    spec.audience.ops = 0;
                    spec.audience.single_tenant = true;
                    spec.audience.stalled = stalled;
                    spec.audience.stall_after = Duration::from_secs_f64(load.warmup);
                    spec.world.ops_permille = 0;
                    spec.world.dedicated_permille = 1000;
                    spec.world.tenants = 1;
                    one(&spec).await?;
                }
            }
        }
        Cmd::B9 { seconds } => {
            for parts in [1, 3] {
                let r = bench::throttle::simulated(20, 100, parts, seconds);
                emit(&r, &r.human());
            }
            let r = bench::throttle::real_time(20, 100, 1, seconds).await;
            emit(&r, &r.human());
        }
        Cmd::B10 {
            messages,
            conversations,
            runs,
            data,
            data_root,
            engine,
        } => b10(messages, conversations, runs, data, data_root, engine).await?,
    }
    Ok(())
}

/// What a rate must show to pass in [`saturate`].
struct Bound {
    p99_ms: f64,
    runs: usize,
}

impl Bound {
    /// Runs the load `runs` times at `rate`; returns whether it passed and the run whose p99
    /// is the median (the only run when `runs` is 1).
    async fn try_rate(&self, load: &LoadOpts, rate: f64) -> anyhow::Result<(bool, LoadResult)> {
        let mut results = Vec::with_capacity(self.runs);
        for i in 0..self.runs {
            let label = if self.runs == 1 {
                format!("saturate {rate:.0}/s")
            } else {
                format!("saturate {rate:.0}/s run {}", i + 1)
            };
            results.push(one(&load.spec(&label, rate)).await?);
        }
        let (passed, sound, middle) = bench::report::judge(results, self.p99_ms);
        if self.runs > 1 {
            eprintln!(
                "saturate {rate:.0}/s: median p99 {:.2} ms of {} runs{}",
                middle.e2e.p99_ms,
                self.runs,
                if sound {
                    ""
                } else {
                    "; a run lost, refused or fell behind"
                }
            );
        }
        Ok((passed, middle))
    }
}

async fn saturate(
    load: &LoadOpts,
    from: f64,
    step: f64,
    max_rate: f64,
    bound: Bound,
    refine: u32,
) -> anyhow::Result<()> {
    let p99_ms = bound.p99_ms;
    let mut best: Option<LoadResult> = None;
    let mut failed_at = None;
    let mut rate = from;
    while rate <= max_rate {
        let (passed, r) = bound.try_rate(load, rate).await?;
        if passed {
            best = Some(r);
            rate += step;
        } else {
            failed_at = Some(rate);
            break;
        }
    }
    if let (Some(mut fail), Some(pass)) = (failed_at, best.as_ref().map(|b| b.offered_rate)) {
        let mut pass = pass;
        for _ in 0..refine {
            let mid = ((pass + fail) / 2.0 / 100.0).round() * 100.0;
            if mid <= pass || mid >= fail {
                break;
            }
            let (passed, r) = bound.try_rate(load, mid).await?;
            if passed {
                pass = mid;
                best = Some(r);
            } else {
                fail = mid;
            }
        }
        failed_at = Some(fail);
    }
    let summary = serde_json::json!({
        "saturation_rate": best.as_ref().map(|b| b.offered_rate),
        "p99_bound_ms": p99_ms,
        "runs_per_rate": bound.runs,
        "first_failing_rate": failed_at,
        "at_saturation": best,
    });
    let human = match &best {
        Some(b) => format!(
            "B1 saturation: {:.0} msg/s is the highest rate with {}p99 ≤ {p99_ms} ms and nothing lost (p99 {:.2} ms, {:.3} CPU-s/1000 msg); first failure at {}",
            b.offered_rate,
            if bound.runs > 1 {
                format!("a median (of {} runs) ", bound.runs)
            } else {
                String::new()
            },
            b.e2e.p99_ms,
            b.cpu_s_per_1000,
            failed_at.map_or("none up to the maximum".into(), |f| format!("{f:.0}/s"))
        ),
        None => format!("B1 saturation: even {from:.0}/s failed the bound of {p99_ms} ms"),
    };
    emit(&summary, &human);
    Ok(())
}

async fn b2(
    load: &LoadOpts,
    rate: f64,
    runs: usize,
    volatile_root: PathBuf,
    early_ack_engine: Option<PathBuf>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&load.data_root)?;
    let fsync_disk = bench::storage::fsync_probe(&load.data_root, 200)?;
    let fsync_tmpfs = bench::storage::fsync_probe(&volatile_root, 200)?;
    eprintln!(
        "fsync of 4 KiB: {} {}; {} {}",
        load.data_root.display(),
        fsync_disk.line(),
        volatile_root.display(),
        fsync_tmpfs.line()
    );
    let mut durable = Vec::new();
    let mut volatile = Vec::new();
    let mut early = Vec::new();
    for i in 0..runs.max(1) {
        durable.push(one(&load.spec(&format!("B2 run {} durable", i + 1), rate)).await?);
        let mut spec = load.spec(&format!("B2 run {} tmpfs", i + 1), rate);
        spec.data_root = volatile_root.clone();
        volatile.push(one(&spec).await?);
        if let Some(bin) = &early_ack_engine {
            let mut spec = load.spec(&format!("B2 run {} ack-before-commit", i + 1), rate);
            spec.engine_bin = bin.clone();
            early.push(one(&spec).await?);
        }
    }
    let ack_cost: Vec<f64> = durable
        .iter()
        .zip(&volatile)
        .map(|(d, v)| d.ack.p99_ms - v.ack.p99_ms)
        .collect();
    let e2e_cost: Vec<f64> = durable
        .iter()
        .zip(&volatile)
        .map(|(d, v)| d.e2e.p99_ms - v.e2e.p99_ms)
        .collect();
    let d = Medians::of("B2 durable", &durable);
    let v = Medians::of("B2 tmpfs", &volatile);
    let summary = serde_json::json!({
        "rate": rate,
        "fsync_4k_disk": fsync_disk,
        "fsync_4k_tmpfs": fsync_tmpfs,
        "durable": d,
        "tmpfs": v,
        "ack_before_commit": (!early.is_empty()).then(|| Medians::of("B2 ack-before-commit", &early)),
        "ack_p99_added_ms_per_run": ack_cost,
        "e2e_p99_added_ms_per_run": e2e_cost,
        "ack_p99_added_ms_median": median(&mut ack_cost.clone()),
        "e2e_p99_added_ms_median": median(&mut e2e_cost.clone()),
    });
    let human = format!(
        "B2 at {rate:.0}/s, median of {}: fsync adds {:.2} ms to ack p99 ({:.2} vs {:.2}) and {:.2} ms to end-to-end p99 ({:.2} vs {:.2})",
        durable.len(),
        median(&mut ack_cost.clone()),
        d.ack_p99_ms,
        v.ack_p99_ms,
        median(&mut e2e_cost.clone()),
        d.e2e_p99_ms,
        v.e2e_p99_ms,
    );
    emit(&summary, &human);
    Ok(())
}

async fn b10(
    messages: u64,
    conversations: u64,
    runs: usize,
    data: Option<PathBuf>,
    data_root: PathBuf,
    engine: Option<PathBuf>,
) -> anyhow::Result<()> {
    let world = World::default();
    std::fs::create_dir_all(&data_root)?;
    let temp;
    let dir = match data {
        Some(d) => d,
        None => {
            temp = DataDir::new(&data_root, "b10")?;
            temp.0.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("bench.toml");
    std::fs::write(&config_path, world.config_toml())?;
    let store_dir = dir.join("data");
    let marker = dir.join(format!("generated-{messages}-{conversations}"));
    if !marker.exists() {
        let t = std::time::Instant::now();
        bench::storage::generate_history(&store_dir, world.tenants, messages, conversations)?;
        eprintln!(
            "B10: generated {messages} messages in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        std::fs::write(&marker, "")?;
    }
    let db_bytes: u64 = std::fs::read_dir(&store_dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let bin = engine.unwrap_or_else(default_engine_binary);
    let mut serving = Vec::new();
    let mut healthy = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs.max(1) {
        let t = std::time::Instant::now();
        let engine =
            EngineProcess::start(&bin, &config_path, &store_dir, Duration::from_secs(300))?;
        serving.push(engine.started_in.as_secs_f64() * 1000.0);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(200) = bench::http::get_status(engine.addr, "/healthz").await {
                break;
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "/healthz did not answer 200 within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        healthy.push(t.elapsed().as_secs_f64() * 1000.0);
        rss.push(engine.peak_rss_mib());
        engine.stop(Duration::from_secs(10));
    }
    let summary = serde_json::json!({
        "messages": messages,
        "conversations": conversations,
        "database_mib": db_bytes as f64 / 1048576.0,
        "serving_ms": serving,
        "healthz_ms": healthy,
        "serving_ms_median": median(&mut serving.clone()),
        "healthz_ms_median": median(&mut healthy.clone()),
        "peak_rss_mib_median": median(&mut rss.clone()),
    });
    let human = format!(
        "B10: {messages} messages in {conversations} conversations ({:.0} MiB): serving after {:.0} ms, /healthz 200 after {:.0} ms (median of {}), peak RSS {:.0} MiB",
        db_bytes as f64 / 1048576.0,
        median(&mut serving),
        median(&mut healthy),
        healthy.len(),
        median(&mut rss),
    );
    emit(&summary, &human);
    Ok(())
}
