//! A local S3 emulator for the media store's tests: moto's `moto_server` on a free port.
//!
//! moto is a Python package (`pip install "moto[s3,server]"`); `.ci/run` installs it in a
//! virtualenv and points `VGATE_TEST_MOTO` at its `moto_server`. Without it a test skips
//! (with a note), and fails under `CI`.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{free_port, wait_port};

/// Where `moto_server` is: `VGATE_TEST_MOTO`, else on the `PATH`.
pub fn moto_path() -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("moto_server"))
                .collect()
        })
        .unwrap_or_default();
    crate::find_tool(
        "VGATE_TEST_MOTO",
        &on_path,
        "moto_server",
        "pip install \"moto[s3,server]\"",
    )
}

/// A running S3 emulator, killed on drop.
pub struct S3Emulator {
    child: Child,
    pub port: u16,
}

impl S3Emulator {
    /// Starts `moto_server` on a free port, or None when it is not installed (outside CI).
    pub fn start() -> Option<S3Emulator> {
        let path = moto_path()?;
        let port = free_port();
        let child = Command::new(path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn moto_server");
        wait_port(port, Duration::from_secs(30));
        Some(S3Emulator { child, port })
    }

    /// The endpoint URL (path-style, plain HTTP).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates bucket `name` (moto takes an unsigned request).
    pub fn create_bucket(&self, name: &str) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        let req = format!(
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        s.write_all(req.as_bytes()).expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "create bucket: {answer}"
        );
    }
}

impl Drop for S3Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
