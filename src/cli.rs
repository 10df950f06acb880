//! The command line: `serve`, `demo`, `check-config`, `roster check`,
//! `watch` and `hash-token`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit code for an invalid configuration or command line (EX_USAGE from
/// sysexits.h).
pub const EXIT_CONFIG: i32 = 64;

/// Live adherence for contact centers whose agents work from home.
#[derive(Debug, Parser)]
#[command(name = "floorwatch", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon with a configuration file.
    Serve {
        /// Path of the TOML configuration.
        #[arg(long, short, default_value = "/etc/floorwatch/floorwatch.toml")]
        config: PathBuf,
    },
    /// Run the daemon on a simulated site of about 160 agents, with no files
    /// needed; prints the addresses and an admin token.
    Demo {
        /// Number of simulated agents.
        #[arg(long, default_value_t = 163)]
        agents: usize,
        /// Virtual seconds per real second.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Address of the gRPC API.
        #[arg(long, default_value = "127.0.0.1:50051")]
        grpc: SocketAddr,
        /// Address of the admin endpoint (/metrics, /healthz, /readyz);
        /// port 0 picks a free one.
        #[arg(long, default_value = "127.0.0.1:0")]
        admin: SocketAddr,
        /// Local time of day the simulated day starts at, HH:MM.
        #[arg(long, default_value = "09:50")]
        start: String,
        /// Seed of the simulation; the same seed gives the same day.
        #[arg(long, default_value_t = 20261204)]
        seed: u64,
        /// Language of texts on the floor: nl or en.
        #[arg(long, default_value = "nl")]
        lang: String,
    },
    /// Validate a configuration file and list every problem.
    CheckConfig {
        /// Path of the TOML configuration.
        path: PathBuf,
    },
    /// Roster tools.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Show the floor live in the terminal, from the gRPC stream. Reads the
    /// bearer token from FLOORWATCH_TOKEN.
    Watch {
        /// gRPC address of the daemon.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Only this team (repeatable).
        #[arg(long)]
        team: Vec<String>,
        /// Print one table once the snapshot is in, then exit.
        #[arg(long)]
        once: bool,
        /// Language of the table: nl or en.
        #[arg(long, default_value = "nl")]
        lang: String,
        #[arg(long, env = "FLOORWATCH_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Print the SHA-256 of a bearer token read from standard input, for
    /// `[[auth.token]] sha256` in the configuration.
    HashToken,
}

#[derive(Debug, Subcommand)]
pub enum RosterCommand {
    /// Check a roster file (CSV or JSON) against the labour rules; exit 1 if
    /// any rule is broken.
    Check {
        /// Roster file.
        file: PathBuf,
        /// Language of the report: nl or en.
        #[arg(long, default_value = "nl")]
        lang: String,
        /// Agent directory file with contract hours (CSV or JSON).
        #[arg(long)]
        agents: Option<PathBuf>,
        /// IANA time zone the local times in the file are read in.
        #[arg(long, default_value = "Europe/Amsterdam")]
        time_zone: String,
        /// Configuration whose labour rules and time zone to use.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}
