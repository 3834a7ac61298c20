//! Helpers shared by the process tests.

use std::sync::atomic::{AtomicU16, Ordering};

/// First port handed to test nodes; the range ends below Linux's default ephemeral range
/// (32768–60999), so no outgoing connection — of this test or of any other running beside
/// it — can be given one of these ports between our choosing it and the node binding it.
/// (Asking the OS for port 0 and releasing it has exactly that race, and it failed CI.)
const FIRST: u16 = 10_000;
/// Ports per test process: the process tests run one per process under nextest, so a
/// block chosen by pid keeps concurrent processes apart; threads of one process share the
/// block through [`NEXT`].
const BLOCK: u16 = 200;
const BLOCKS: u16 = (32_000 - FIRST) / BLOCK;

static NEXT: AtomicU16 = AtomicU16::new(0);

/// A loopback port not used by anything now and not handed out before by this process.
pub(crate) fn free_port() -> u16 {
    let base = FIRST + (std::process::id() % u32::from(BLOCKS)) as u16 * BLOCK;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(offset < BLOCK, "test process used more than {BLOCK} ports");
        let port = base + offset;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
