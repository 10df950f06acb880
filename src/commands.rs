//! What each subcommand does. `main` parses the command line and calls
//! [`run`]; every command returns its exit code.

use std::io::Read as _;
use std::path::Path;

use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::cli::{Cli, Command, EXIT_CONFIG, RosterCommand};
use crate::config::{Config, Env};
use crate::daemon::{self, StartOptions};
use crate::i18n::Locale;
use crate::telemetry;

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Demo { agents, speed, grpc, admin, start, seed, lang } => {
            crate::demo::driver::run_demo(crate::demo::driver::DemoOptions {
                agents,
                speed,
                grpc,
                admin,
                start,
                seed,
                lang,
            })
        }
        Command::CheckConfig { path } => check_config(&path),
        Command::Roster { command: RosterCommand::Check { file, lang, agents, time_zone, config } } => {
            roster_check(&file, &lang, agents.as_deref(), &time_zone, config.as_deref())
        }
        Command::Watch { addr, team, once, lang, token } => crate::watch::run_watch(&addr, team, once, &lang, &token),
        Command::HashToken => hash_token(),
    }
}

/// Builds the multi-threaded runtime every long-running command uses.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("floorwatch").build()
}

fn serve(path: &Path) -> i32 {
    let config = match Config::load(path, &Env::from_process()) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("floorwatch: invalid configuration, nothing started:\n{errors}");
            return EXIT_CONFIG;
        }
    };
    if let Err(e) = telemetry::init_tracing(config.telemetry.log_format, &config.telemetry.log_filter) {
        eprintln!("floorwatch: {e}");
        return EXIT_CONFIG;
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("floorwatch: cannot start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let options = StartOptions { notify_systemd: true, ..StartOptions::default() };
        let running = match daemon::start(config, options).await {
            Ok(running) => running,
            Err(e) => {
                error!(error = %format!("{e:#}"), "start-up failed");
                eprintln!("floorwatch: {e:#}");
                return 1;
            }
        };
        spawn_signal_handler(running.shutdown.clone());
        running.wait().await;
        0
    })
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
pub fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(e) => {
                error!(error = %e, "cannot listen for SIGTERM; stop with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                shutdown.cancel();
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
            _ = shutdown.cancelled() => return,
        }
        shutdown.cancel();
    });
}

fn check_config(path: &Path) -> i32 {
    let (report, ok) = crate::config::check_config_report(path, &Env::from_process());
    if ok {
        println!("{report}");
        0
    } else {
        eprintln!("{report}");
        1
    }
}

fn roster_check(file: &Path, lang: &str, agents: Option<&Path>, time_zone: &str, config: Option<&Path>) -> i32 {
    let Some(locale) = Locale::parse(lang) else {
        eprintln!("floorwatch: --lang {lang:?} is not supported; use nl or en");
        return EXIT_CONFIG;
    };
    let (tz, rules) = match config {
        Some(path) => match Config::load(path, &Env::from_process()) {
            Ok(config) => (config.site.time_zone, config.roster.labour_rules),
            Err(errors) => {
                eprintln!("floorwatch: invalid configuration:\n{errors}");
                return EXIT_CONFIG;
            }
        },
        None => match jiff::tz::TimeZone::get(time_zone) {
            Ok(tz) => (tz, crate::roster::LabourRules::default()),
            Err(e) => {
                eprintln!("floorwatch: --time-zone {time_zone:?} is not a known IANA time zone: {e}");
                return EXIT_CONFIG;
            }
        },
    };
    let directory = match agents {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => match crate::roster::parse_agents(&text, crate::roster::RosterFormat::from_path(path)) {
                Ok(agents) => Some(agents),
                Err(errors) => {
                    eprintln!("{}: {}", path.display(), errors.text(locale));
                    return 1;
                }
            },
            Err(e) => {
                eprintln!("floorwatch: cannot read {}: {e}", path.display());
                return 1;
            }
        },
        None => None,
    };

    let (report, problems) = crate::roster::check_file_report(file, &tz, directory.as_deref(), &rules, locale);
    print!("{report}");
    if problems == 0 { 0 } else { 1 }
}

fn hash_token() -> i32 {
    let mut token = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut token) {
        eprintln!("floorwatch: cannot read the token from standard input: {e}");
        return 1;
    }
    let token = token.trim();
    if token.is_empty() {
        eprintln!(
            "floorwatch: standard input is empty; pipe the token in, e.g. `printf %s \"$TOKEN\" | floorwatch hash-token`"
        );
        return 1;
    }
    println!("{}", crate::api::auth::hash_token(token));
    0
}
