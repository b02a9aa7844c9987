//! `ruster`: start-up only. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    ruster::app::main(std::env::args_os().skip(1).collect())
}
