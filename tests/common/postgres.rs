//! A throwaway PostgreSQL server for the tests: a fresh cluster in a temporary
//! directory, on a free loopback port, run as the `postgres` user when the tests
//! run as root (PostgreSQL refuses root). Stopped and removed when dropped.
//!
//! The server binaries are found in `VOYADO_PG_BIN`, or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    durable: bool,
}

fn server_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("VOYADO_PG_BIN") {
        return bin.into();
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server found: install it (apt-get install postgresql) or set VOYADO_PG_BIN")
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// Runs a server program, as `postgres` when we are root.
fn run(program: &Path, args: &[&str]) -> std::process::Output {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn check(what: &str, output: std::process::Output) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Cluster {
    /// Creates and starts a cluster, with durability off: the tests stop it
    /// cleanly, and speed matters more to them than surviving a power cut.
    pub fn start() -> Cluster {
        Cluster::start_with(false)
    }

    /// Creates and starts a cluster that syncs every commit to disk (`fsync`
    /// and `synchronous_commit` on, PostgreSQL's defaults), as in production.
    pub fn start_durable() -> Cluster {
        Cluster::start_with(true)
    }

    fn start_with(durable: bool) -> Cluster {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let bin = server_bin();
        let dir = std::env::temp_dir().join(format!(
            "voyado-pg-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            check(
                "chown",
                Command::new("chown").arg("postgres").arg(&dir).output().unwrap(),
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.join("data");
        check(
            "initdb",
            run(
                &bin.join("initdb"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
        );
        let cluster = Cluster {
            bin,
            dir,
            port,
            durable,
        };
        cluster.start_again();
        cluster
    }

    /// The connection URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server again after [`stop`](Self::stop).
    pub fn start_again(&self) {
        let durability = match self.durable {
            true => "",
            false => " -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
        };
        let options = format!(
            "-p {} -h 127.0.0.1 -k {}{durability}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let data = self.dir.join("data");
        check(
            "pg_ctl start",
            run(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start",
                ],
            ),
        );
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        check(
            "pg_ctl stop",
            run(
                &self.bin.join("pg_ctl"),
                &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
            ),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run(
            &self.bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
