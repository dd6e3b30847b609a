//! Finding (and if need be building) the `dlm` command-line example, for tests that run it as a process.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The environment variable that, when set, names the `dlm` binary to use instead of the workspace's.
pub const DLM_BIN_ENV: &str = "DLM_BIN";

/// The workspace root (the directory above this package).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo profile directory the `dlm` example is looked for in (`…/target/debug`).
///
/// That is the directory of the running test executable when it sits in `<profile>/deps` (which honours any
/// target-dir setting), otherwise `$CARGO_TARGET_DIR/debug` (relative to the workspace root) or
/// `<workspace>/target/debug`.
pub fn profile_dir() -> PathBuf {
    let from_exe = env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
    });
    from_exe.unwrap_or_else(|| {
        let target = env::var_os("CARGO_TARGET_DIR")
            .map(|dir| workspace_root().join(dir))
            .unwrap_or_else(|| workspace_root().join("target"));
        target.join("debug")
    })
}

/// The path of the `dlm` example binary (`target/debug/examples/dlm`), or `$DLM_BIN` if that is set.
///
/// If the binary does not exist yet, runs `cargo build --example dlm -p dlm-examples` in the workspace root
/// once per process (`scripts/test` builds it before the tests, so this is for a bare `cargo test`).
///
/// # Panics
///
/// If the build fails or the binary is still missing after it.
pub fn dlm_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    example_binary("dlm", DLM_BIN_ENV, &BINARY)
}

/// The path of the example `name`, or the value of `override_env` when set; builds it once (per `cell`) when
/// missing.
///
/// # Panics
///
/// If the build fails or the binary is still missing after it.
pub fn example_binary(name: &str, override_env: &str, cell: &OnceLock<PathBuf>) -> PathBuf {
    if let Some(bin) = env::var_os(override_env) {
        return PathBuf::from(bin);
    }
    cell.get_or_init(|| {
        let bin = profile_dir()
            .join("examples")
            .join(format!("{name}{}", env::consts::EXE_SUFFIX));
        if !bin.is_file() {
            build_example(name);
        }
        assert!(
            bin.is_file(),
            "`cargo build --example {name} -p dlm-examples` succeeded but {} does not exist",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Environment variables the `dlm` binary (through dlm-http) reads proxies from; [`dlm_command`] removes them so
/// a developer's or CI's proxy settings never reach the test peers on 127.0.0.1.
pub const PROXY_ENV_VARS: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// A [`Command`] for the [`dlm_binary`] with the proxy variables ([`PROXY_ENV_VARS`]), `NETRC` and `DLM_LOG`
/// removed from its environment and standard input closed. Add `--no-netrc` to `get`/`info` as well.
pub fn dlm_command() -> Command {
    let mut cmd = Command::new(dlm_binary());
    for var in PROXY_ENV_VARS.iter().chain(&["NETRC", "DLM_LOG"]) {
        cmd.env_remove(var);
    }
    cmd.stdin(std::process::Stdio::null());
    cmd
}

fn build_example(name: &str) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the {name} example: cargo build --example {name} -p dlm-examples");
    let status = Command::new(&cargo)
        .args(["build", "--example", name, "-p", "dlm-examples"])
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", Path::new(&cargo).display()));
    assert!(
        status.success(),
        "`cargo build --example {name} -p dlm-examples` failed ({status})"
    );
}
