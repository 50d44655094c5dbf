//! The engine under test, as a child process (`shortbox serve`), so that its CPU time and peak
//! memory can be read from `/proc/<pid>` apart from the load generator's.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The line `shortbox serve` prints once it is serving.
const SERVING: &str = "serving on http://";

pub struct EngineProcess {
    child: Child,
    pub addr: SocketAddr,
    /// From spawn to the "serving" line.
    pub started_in: Duration,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// The `shortbox` binary next to this one (target/release/shortbox for a release bench).
pub fn default_engine_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("shortbox")))
        .unwrap_or_else(|| PathBuf::from("target/release/shortbox"))
}

impl EngineProcess {
    /// Starts `bin serve` on a free loopback port and waits (at most `timeout`) until it serves.
    pub fn start(
        bin: &Path,
        config: &Path,
        data: &Path,
        timeout: Duration,
    ) -> anyhow::Result<EngineProcess> {
        if !bin.exists() {
            bail!(
                "no engine binary at {}: run `cargo build --release --bins` first (or pass --engine)",
                bin.display()
            );
        }
        let spawned = Instant::now();
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stderr = child.stderr.take().context("the engine's stderr")?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, rx) = mpsc::channel();
        {
            let tail = tail.clone();
            std::thread::spawn(move || {
                let mut tx = Some(tx);
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(at) = line.find(SERVING)
                        && let Some(tx) = tx.take()
                    {
                        let addr = line[at + SERVING.len()..]
                            .split(|c: char| c.is_whitespace())
                            .next()
                            .and_then(|a| a.parse::<SocketAddr>().ok());
                        let _ = tx.send(addr);
                    }
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == 20 {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let addr = match rx.recv_timeout(timeout) {
            Ok(Some(addr)) => addr,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                bail!(
                    "the engine did not serve within {timeout:?} ({}); its last lines:\n{}",
                    if other.is_ok() {
                        "unreadable address"
                    } else {
                        "no serving line"
                    },
                    tail.iter().cloned().collect::<Vec<_>>().join("\n")
                );
            }
        };
        Ok(EngineProcess {
            child,
            addr,
            started_in: spawned.elapsed(),
            tail,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the engine has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(&format!("/proc/{}/stat", self.pid())).unwrap_or(f64::NAN)
    }

    /// Peak resident set (VmHWM) in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        status_kib(self.pid(), "VmHWM:").map_or(f64::NAN, |k| k as f64 / 1024.0)
    }

    /// Current resident set (VmRSS) in MiB.
    pub fn rss_mib(&self) -> f64 {
        status_kib(self.pid(), "VmRSS:").map_or(f64::NAN, |k| k as f64 / 1024.0)
    }

    /// Whether the process has exited (and its last stderr lines if so).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{status}; last lines: {}", self.tail_text())),
            _ => None,
        }
    }

    pub fn tail_text(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join(" | ")
    }

    /// Asks the engine to stop (SIGINT, its graceful shutdown) and waits up to `timeout`, then
    /// kills it.
    pub fn stop(mut self, timeout: Duration) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of a `/proc/…/stat` file, in seconds.
pub fn cpu_seconds_of(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may hold spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    // Fields 14 and 15 of stat(5); here index 11 and 12 (field 3 is index 0).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// CPU seconds all processes of the machine have used so far (busy time of every core, from
/// `/proc/stat`): with the engine's and the generator's own, it tells how much the rest of the
/// machine took during a run.
pub fn machine_busy_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return f64::NAN;
    };
    let Some(line) = stat.lines().next() else {
        return f64::NAN;
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return f64::NAN;
    }
    // user nice system idle iowait irq softirq steal …: busy = all − idle − iowait.
    (v.iter().sum::<f64>() - v[3] - v[4]) / clock_ticks()
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// This process's CPU seconds.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds_of("/proc/self/stat").unwrap_or(f64::NAN)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// A fresh directory under `root` for one engine's data, removed on drop.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new(root: &Path, label: &str) -> anyhow::Result<DataDir> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // A label such as "saturate 9000/s run 1" names one directory, not a path.
        let label: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let dir = root.join(format!("shortbox-bench-{}-{label}-{n}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(DataDir(dir))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::DataDir;

    /// A run's label with a slash in it ("saturate 9000/s run 1") makes one directory under
    /// the root, and nothing is left once the run is done.
    #[test]
    fn a_data_dir_is_one_directory_and_goes_away() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path(), "saturate 9000/s run 1").unwrap();
        assert_eq!(dir.0.parent(), Some(root.path()));
        assert!(dir.0.is_dir());
        drop(dir);
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
