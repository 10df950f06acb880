//! The `floorwatch` binary: parses the command line and hands over to the
//! library. An error becomes one line on standard error and a non-zero exit.

use clap::Parser;

fn main() {
    let cli = floorwatch::cli::Cli::parse();
    let code = floorwatch::commands::run(cli);
    std::process::exit(code);
}
