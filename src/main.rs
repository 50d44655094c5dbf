//! The `shortbox` command: parse the command line, load the configuration, pick the mode, run.
//! The only place that wires an embedded engine next to the TUI client.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use shortbox::config::Config;
use shortbox::engine::{
    Engine, add_agent_offline, agents_table, list_agents_offline, revoke_agent_offline,
};
use shortbox::protocol::Role;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "shortbox",
    version,
    about = "A terminal inbox for live SMS conversations over short codes"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Configuration file (default: the user's config.toml if it exists, else the demo workspace).
    #[arg(long, global = true, env = "SHORTBOX_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default: engine.data_dir, else the user's data directory).
    #[arg(long, global = true, env = "SHORTBOX_DATA")]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the engine only, headless.
    Serve {
        /// Address to listen on (overrides engine.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Open the inbox against a remote engine.
    Connect {
        /// The engine's WebSocket URL, e.g. ws://host:7878/v1/ws (the path is added if missing).
        url: String,
        /// Bearer token (from `shortbox agent add`).
        #[arg(long, env = "SHORTBOX_TOKEN", hide_env_values = true)]
        token: String,
        /// A PEM file of a certificate authority to trust for wss:// besides the system's
        /// (repeat for several).
        #[arg(long = "ca-cert", value_name = "FILE")]
        ca_certs: Vec<PathBuf>,
    },
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCmd,
    },
}

#[derive(Subcommand)]
enum AgentCmd {
    /// Add an agent and print its token (shown once; only its hash is stored).
    Add {
        /// Tenant id (required for agent and admin; repeat for several).
        #[arg(long)]
        tenant: Vec<String>,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List the agents: id, name, role, tenants, when added and when revoked (never tokens).
    List,
    /// Revoke an agent: its token is refused from now on, and an engine running on the same
    /// data closes its open sessions (4401) within a few seconds.
    Revoke {
        /// The agent's id (ag_…), or its name if no other active agent has it.
        #[arg(value_name = "ID_OR_NAME")]
        agent: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Agent,
    Admin,
    Ops,
    Owner,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Agent => Role::Agent,
            RoleArg::Admin => Role::Admin,
            RoleArg::Ops => Role::Ops,
            RoleArg::Owner => Role::Owner,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shortbox: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "shortbox")
}

fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    if let Some(p) = path {
        return Ok(Config::load(p)?);
    }
    if let Some(d) = dirs() {
        let user = d.config_dir().join("config.toml");
        if user.exists() {
            return Ok(Config::load(&user)?);
        }
    }
    Ok(Config::demo())
}

fn data_dir(cli: Option<&Path>, config: &Config) -> anyhow::Result<PathBuf> {
    if let Some(d) = cli.or(config.engine.data_dir.as_deref()) {
        return Ok(d.to_path_buf());
    }
    let d = dirs().context("cannot find the user's data directory: pass --data DIR")?;
    Ok(d.data_dir().to_path_buf())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Some(Cmd::Agent {
            command: AgentCmd::Add { tenant, name, role },
        }) => {
            let config = load_config(cli.config.as_deref())?;
            let data = data_dir(cli.data.as_deref(), &config)?;
            let token = add_agent_offline(&config, &data, &name, role.into(), &tenant)?;
            println!("{token}");
            Ok(())
        }
        Some(Cmd::Agent {
            command: AgentCmd::List,
        }) => {
            let config = load_config(cli.config.as_deref())?;
            let data = data_dir(cli.data.as_deref(), &config)?;
            let agents = list_agents_offline(&data)?;
            if agents.is_empty() {
                println!(
                    "no agents in {}: add one with `shortbox agent add`",
                    data.display()
                );
            } else {
                print!("{}", agents_table(&agents));
            }
            Ok(())
        }
        Some(Cmd::Agent {
            command: AgentCmd::Revoke { agent },
        }) => {
            let config = load_config(cli.config.as_deref())?;
            let data = data_dir(cli.data.as_deref(), &config)?;
            println!("{}", revoke_agent_offline(&data, &agent)?);
            Ok(())
        }
        Some(Cmd::Serve { listen }) => {
            let config = load_config(cli.config.as_deref())?;
            let data = data_dir(cli.data.as_deref(), &config)?;
            let listen = listen.unwrap_or_else(|| config.engine.listen.clone());
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(serve(config, data, listen))
        }
        Some(Cmd::Connect {
            url,
            token,
            ca_certs,
        }) => {
            let log_dir = dirs().map(|d| d.data_local_dir().join("logs"));
            shortbox::client::run(shortbox::client::ClientOptions {
                url,
                token,
                bell: load_config(cli.config.as_deref())
                    .map(|c| c.client.bell)
                    .unwrap_or(true),
                log_dir,
                ca_certs,
            })
        }
        None => embedded(cli.config.as_deref(), cli.data.as_deref()),
    }
}

async fn serve(config: Config, data: PathBuf, listen: String) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| {
            format!("cannot listen on {listen}: is another engine running? (--listen ADDR)")
        })?;
    let addr = listener.local_addr()?;
    let engine = Engine::open(config, &data)
        .await
        .with_context(|| format!("cannot open the engine's data in {}", data.display()))?;
    tracing::info!(%addr, data = %data.display(), "shortbox engine serving: ws://{addr}/v1/ws");
    eprintln!(
        "shortbox engine serving on http://{addr} (WebSocket ws://{addr}/v1/ws), data in {}",
        data.display()
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    shortbox::server::serve(engine, listener, shutdown).await?;
    Ok(())
}

/// The engine and the TUI in one process; the TUI still talks to the engine over a real
/// WebSocket on loopback.
fn embedded(config_path: Option<&Path>, data: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(config_path)?;
    let data = data_dir(data, &config)?;
    let log_dir = data.join("logs");
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let appender = tracing_appender::rolling::never(&log_dir, "shortbox.log");
    let (writer, _guard) = tracing_appender::non_blocking(appender);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(writer)
        .with_ansi(false)
        .try_init();

    let bell = config.client.bell;
    let rt = tokio::runtime::Runtime::new()?;
    let (addr, token, stop) = rt.block_on(async {
        // The configured address if free (so carriers can reach it), else any loopback port.
        let listener = match tokio::net::TcpListener::bind(&config.engine.listen).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let addr = listener.local_addr()?;
        let engine = Engine::open(config, &data)
            .await
            .with_context(|| format!("cannot open the engine's data in {}", data.display()))?;
        let token = engine.local_owner_token().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(shortbox::server::serve(engine, listener, async {
            let _ = stopped.await;
        }));
        anyhow::Ok((addr, token, stop))
    })?;
    tracing::info!(%addr, "embedded engine serving");
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let result = shortbox::client::run(shortbox::client::ClientOptions {
        url: format!("ws://{host}:{}/v1/ws", addr.port()),
        token,
        bell,
        log_dir: Some(log_dir),
        ca_certs: Vec::new(),
    });
    let _ = stop.send(());
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}
