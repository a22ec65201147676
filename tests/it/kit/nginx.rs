//! nginx as a child of the test: `daemon off;` so the master is our child (its pid is the one
//! a graceful QUIT goes to, and we reap it), a free port on 127.0.0.1, everything it writes in
//! a temp folder, optionally a reverse proxy to an upstream (the demo service's `/slow` plays a
//! long request). Killed and reaped on drop.

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Nginx {
    child: Option<Child>,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    /// Whether nginx is installed (`kit::require`: skip locally, fail under CI=true).
    pub fn available() -> bool {
        super::require("nginx")
    }

    /// nginx answering `/nginx-ok` itself and passing everything else to `upstream`
    /// (`HOST:PORT`), when given.
    pub fn start(upstream: Option<&str>) -> Nginx {
        let mut last_error = String::new();
        // A free port may be taken between our probe and nginx's bind: try a few.
        for _ in 0..5 {
            match Nginx::try_start(upstream) {
                Ok(nginx) => return nginx,
                Err(e) => last_error = e,
            }
        }
        panic!("nginx did not start: {last_error}");
    }

    fn try_start(upstream: Option<&str>) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("ngx")
            .tempdir()
            .expect("a temp folder");
        let port = super::free_port();
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, config_text(&dir, port, upstream)).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx {
            child: Some(child),
            dir,
            port,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if let Some(status) = nginx.child.as_mut().unwrap().try_wait().unwrap() {
                nginx.child = None;
                return Err(format!("exited with {status}: {}", nginx.log()));
            }
            // The master listens before it forks its worker: ready once a worker answers.
            let probe = format!("http://127.0.0.1:{port}/nginx-ok");
            if nginx.pidfile().exists() && super::load::get_url(&probe) == Ok(200) {
                return Ok(nginx);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("not listening after 10 s: {}", nginx.log()))
    }

    /// The master's pid (the process QUIT goes to).
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id().cast_signed())
    }

    /// The pid file nginx writes.
    pub fn pidfile(&self) -> PathBuf {
        self.dir.path().join("nginx.pid")
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Reap the master once it exits; its status, or `None` while it still runs after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A killed master leaves its workers running (and holding the port): TERM makes it
        // stop them first. KILL only when it does not exit in time.
        if let Some(mut child) = self.child.take() {
            super::signal(child.id().cast_signed(), libc::SIGTERM);
            let until = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config_text(dir: &tempfile::TempDir, port: u16, upstream: Option<&str>) -> String {
    let dir = dir.path().display();
    // As root, workers would switch to `nobody`, who cannot write the temp folders here.
    let user = if rustix::process::geteuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    let proxy = upstream.map_or_else(String::new, |up| {
        format!(
            "    location / {{ proxy_pass http://{up}; proxy_read_timeout 120s; proxy_buffering off; }}\n"
        )
    });
    format!(
        "daemon off;\n{user}worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log info;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {dir}/access.log;\n\
         \x20 client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
         \x20 fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         \x20 server {{\n    listen 127.0.0.1:{port};\n\
         \x20   location = /nginx-ok {{ return 200 \"ok\\n\"; }}\n{proxy}  }}\n}}\n"
    )
}
