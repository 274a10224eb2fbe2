//! The `vgate` binary: everything lives in the `gateway` library; see `lib.rs`.

fn main() -> std::process::ExitCode {
    gateway::main()
}
