//! A real SMTP server (mailin-embedded) for the delivery tests, whose answer
//! to each message can be set: accept, fail temporarily, or refuse for good.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin_embedded::response::{OK, START_DATA};
use mailin_embedded::{Handler, Response, Server, SslConfig};

use crate::{eventually, Mail};

/// How the server answers a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Accept,
    /// `451` for the next N messages, then accept.
    FailTransiently(u32),
    /// `451` for every message.
    AlwaysFailTransiently,
    /// `550` for every message.
    RejectPermanently,
    /// Accept every message, taking this long over each.
    Slow(Duration),
}

struct State {
    behaviour: Behaviour,
    received: Vec<Vec<u8>>,
    refused: usize,
}

#[derive(Clone)]
struct Recorder {
    state: Arc<Mutex<State>>,
    data: Vec<u8>,
}

// Refusals are answered to DATA rather than after the message body: the
// server library resumes the session correctly only after the former.
impl Handler for Recorder {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.data.clear();
        let mut state = self.state.lock().unwrap();
        let temporary =
            || Response::custom(451, "Requested action aborted: try again later".into());
        match state.behaviour {
            Behaviour::FailTransiently(n) if n > 0 => {
                state.behaviour = Behaviour::FailTransiently(n - 1);
                state.refused += 1;
                temporary()
            }
            Behaviour::AlwaysFailTransiently => {
                state.refused += 1;
                temporary()
            }
            Behaviour::RejectPermanently => {
                state.refused += 1;
                Response::custom(
                    550,
                    "Requested action not taken: mailbox unavailable".into(),
                )
            }
            Behaviour::Accept | Behaviour::FailTransiently(_) | Behaviour::Slow(_) => START_DATA,
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let behaviour = self.state.lock().unwrap().behaviour;
        if let Behaviour::Slow(delay) = behaviour {
            std::thread::sleep(delay);
        }
        let mut state = self.state.lock().unwrap();
        state.received.push(std::mem::take(&mut self.data));
        OK
    }
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

/// A free loopback port, for a server that starts later.
pub fn reserve_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl SmtpServer {
    pub fn start(behaviour: Behaviour) -> SmtpServer {
        Self::start_at(reserve_addr(), behaviour)
    }

    /// Serves on `addr` from a background thread for the rest of the test process.
    pub fn start_at(addr: SocketAddr, behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind(addr).unwrap();
        let state = Arc::new(Mutex::new(State {
            behaviour,
            received: Vec::new(),
            refused: 0,
        }));
        let mut server = Server::new(Recorder {
            state: Arc::clone(&state),
            data: Vec::new(),
        });
        server
            .with_name("smtp.test")
            .with_num_threads(64)
            .with_tcp_listener(listener);
        server.with_ssl(SslConfig::None).unwrap();
        std::thread::spawn(move || {
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        SmtpServer { addr, state }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    pub fn url_at(addr: SocketAddr) -> String {
        format!("smtp://{addr}")
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    pub fn received(&self) -> Vec<Mail> {
        let raw = self.state.lock().unwrap().received.clone();
        raw.iter().map(|m| Mail::parse(m)).collect()
    }

    pub fn refused(&self) -> usize {
        self.state.lock().unwrap().refused
    }

    /// Waits until at least `n` messages were accepted; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let count = eventually(timeout, || async {
            let count = self.state.lock().unwrap().received.len();
            (count >= n).then_some(count)
        })
        .await;
        assert!(
            count.is_some(),
            "expected {n} message(s) at the SMTP server, got {}",
            self.state.lock().unwrap().received.len()
        );
        self.received()
    }
}
