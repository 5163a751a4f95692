//! Project automation, so that a fresh machine needs two commands:
//!
//! - `cargo xtask demo [ARGS]`: runs the demo against a real beanstalkd.
//! - `cargo xtask test`: every check CI runs, in CI's order.
//!
//! Both install beanstalkd with apt-get when it is missing (as root, or
//! through sudo), and otherwise say exactly what to install.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(args.get(1..).unwrap_or_default()),
        _ => {
            eprintln!("usage: cargo xtask test | cargo xtask demo [demo options]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, String>;

fn root() -> PathBuf {
    // xtask lives one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs a command in the workspace root, failing with its name on error.
fn run(program: &str, args: &[&str]) -> Result {
    run_with_env(program, args, &[])
}

fn run_with_env(program: &str, args: &[&str], vars: &[(&str, &str)]) -> Result {
    println!("\n==> {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .envs(vars.iter().copied())
        .current_dir(root())
        .status()
        .map_err(|error| format!("could not start {program}: {error}"))?;
    println!("    ({:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|status| status.success())
}

/// Makes sure a beanstalkd binary is available.
fn ensure_beanstalkd() -> Result {
    if env::var_os("BEANSTALKD_BIN").is_some() || have("beanstalkd") {
        return Ok(());
    }
    println!("beanstalkd is not installed; installing it with apt-get");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    let prefix: &[&str] = if is_root { &[] } else { &["sudo"] };
    let apt = |args: &[&str]| -> Result {
        let mut full: Vec<&str> = prefix.to_vec();
        full.push("apt-get");
        full.extend_from_slice(args);
        let (program, rest) = full.split_first().ok_or("empty command")?;
        run_with_env(program, rest, &[("DEBIAN_FRONTEND", "noninteractive")])
    };
    apt(&["update", "-qq"])
        .and_then(|()| apt(&["install", "-y", "-qq", "beanstalkd"]))
        .map_err(|error| {
            format!(
                "{error}\nbeanstalkd is needed: install it with `sudo apt-get install -y beanstalkd` \
                 (Debian/Ubuntu) or point BEANSTALKD_BIN at a beanstalkd binary"
            )
        })
}

fn ensure_cargo_fuzz() -> Result {
    let installed = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if installed {
        return Ok(());
    }
    run("cargo", &["install", "cargo-fuzz", "--locked"])
}

/// Runs `cargo` with whitespace-separated arguments.
fn cargo(args: &str) -> Result {
    run("cargo", &args.split_whitespace().collect::<Vec<_>>())
}

/// Every check, in the order CI runs them.
fn test() -> Result {
    let started = Instant::now();
    ensure_beanstalkd()?;
    ensure_cargo_fuzz()?;
    cargo("fmt --all -- --check")?;
    cargo("clippy --locked --workspace --all-targets --all-features -- -D warnings")?;
    // Private items too: module docs carry the reasons behind the code,
    // and their links must stay as checked as the public ones.
    run_with_env(
        "cargo",
        &[
            "doc",
            "--locked",
            "--workspace",
            "--no-deps",
            "--all-features",
            "--document-private-items",
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // Feature hygiene: the core without std, each runtime of the futures-io
    // adapter on its own, and every optional feature under test.
    cargo("build --locked -p beanstalk-proto --no-default-features")?;
    cargo("check --locked -p beanstalk-async-std --no-default-features")?;
    cargo("check --locked -p beanstalk-async-std --no-default-features --features smol")?;
    cargo("check --locked -p beanstalk-async-std --no-default-features --features async-std")?;
    no_tokio_in_async_std()?;
    cargo("test --locked --workspace")?;
    // The throughput runner is a benchmark, not a test: check that it builds
    // and that a tiny run of every case completes.
    cargo("run --locked --release -p beanstalk-bench -- --jobs 1000 --repeat 1")?;
    cargo(
        "run --locked --release -p beanstalk-bench -- --modes bursts --bursts 2 --burst 50 --repeat 1",
    )?;
    cargo("test --locked -p beanstalk-proto --all-features")?;
    run("bash", &["fuzz/run.sh"])?;
    // Every publishable crate must package (path dependencies carry versions).
    cargo(
        "package --locked --workspace --no-verify --allow-dirty \
         --exclude xtask --exclude beanstalk-test-support",
    )?;
    println!(
        "\nall checks passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The smol/async-std adapter must not pull tokio in, whatever its
/// features.
fn no_tokio_in_async_std() -> Result {
    for features in [
        "--all-features",
        "--no-default-features --features smol",
        "--no-default-features --features async-std",
    ] {
        let mut args = vec![
            "tree",
            "--locked",
            "-p",
            "beanstalk-async-std",
            "-e",
            "normal",
            "--prefix",
            "none",
        ];
        args.extend(features.split_whitespace());
        let output = Command::new("cargo")
            .args(&args)
            .current_dir(root())
            .output()
            .map_err(|error| format!("could not run cargo tree: {error}"))?;
        if !output.status.success() {
            return Err(format!("`cargo {}` failed", args.join(" ")));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        if let Some(line) = tree.lines().find(|line| line.starts_with("tokio")) {
            return Err(format!(
                "beanstalk-async-std ({features}) depends on {line}"
            ));
        }
    }
    println!("\n==> cargo tree: beanstalk-async-std has no tokio in any feature set");
    Ok(())
}

/// Runs the demo, passing its options through.
fn demo(args: &[String]) -> Result {
    ensure_beanstalkd()?;
    let mut full = vec![
        "run",
        "--release",
        "--locked",
        "-p",
        "beanstalk-tokio",
        "--example",
        "demo",
        "--",
    ];
    // `cargo xtask demo -- --jobs 5` and `cargo xtask demo --jobs 5` both work.
    let args = args.strip_prefix(&["--".to_owned()][..]).unwrap_or(args);
    full.extend(args.iter().map(String::as_str));
    run("cargo", &full)
}
