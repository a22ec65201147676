//! Plain TCP relays for tests: a port forwarder (a pooler as a client sees it) and an
//! HTTP CONNECT proxy that tunnels every request to one server on loopback, so a test can
//! prove a tool went through the proxy its environment names.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A relay on a port of its own that passes every connection on to `127.0.0.1:to`.
pub fn forward_port(to: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            if let Ok(server) = TcpStream::connect(("127.0.0.1", to)) {
                splice(client, server);
            }
        }
    });
    port
}

/// An HTTP proxy that answers every `CONNECT host:port` by tunnelling to `127.0.0.1:to`,
/// whatever host was asked for, and remembers the request lines it heard.
pub struct ConnectProxy {
    pub port: u16,
    heard: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start(to: u16) -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        let port = listener.local_addr().unwrap().port();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&heard);
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let log = Arc::clone(&log);
                std::thread::spawn(move || tunnel(client, to, &log));
            }
        });
        ConnectProxy { port, heard }
    }

    /// `http://127.0.0.1:PORT`, for `HTTPS_PROXY` / `HTTP_PROXY`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The request lines heard so far (`CONNECT host:port HTTP/1.1`).
    pub fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, to: u16, heard: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    heard.lock().unwrap().push(request_line.trim().to_string());
    let mut client = client;
    if !request_line.starts_with("CONNECT ") {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_ok()
    {
        splice(client, server);
    }
}

/// Copy both ways until each side closes.
fn splice(client: TcpStream, server: TcpStream) {
    let (mut client_in, mut server_out) =
        (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut client_out, mut server_in) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_in, &mut client_out);
        let _ = client_out.shutdown(std::net::Shutdown::Write);
    });
}
