//! Phase `network`: a private network namespace for the run, or — where the
//! OS refuses one, or `--no-isolation` — the host network, where runs that
//! use the same fixed port take turns.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OwnedMutexGuard;

use super::{Isolation, Plan};
use crate::rt::blocking;
use crate::sandbox::{NetNs, capture};
use crate::spec::Dur;

/// Where a run's servers and program talk.
#[derive(Debug)]
pub struct Network {
    netns: Option<Arc<NetNs>>,
    guards: Vec<OwnedMutexGuard<()>>,
    queued: Duration,
}

impl Network {
    /// The run's namespace, when it has one.
    pub fn namespace(&self) -> Option<&NetNs> {
        self.netns.as_deref()
    }

    /// A shared handle on the namespace, for the program's sandbox.
    pub fn shared(&self) -> Option<Arc<NetNs>> {
        self.netns.clone()
    }

    /// Releases the fixed ports for the next run; returns how long this run
    /// waited for them.
    pub fn leave(self) -> Duration {
        self.queued
    }
}

/// Per-port locks for runs on the host network.
static PORT_LOCKS: LazyLock<Mutex<HashMap<u16, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn port_lock(port: u16) -> Arc<tokio::sync::Mutex<()>> {
    PORT_LOCKS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(port)
        .or_default()
        .clone()
}

/// Enters the run's network: a fresh namespace when allowed, else the host
/// network after waiting for the lab's fixed ports.
pub async fn enter(plan: &Plan<'_>, notes: &mut Vec<String>) -> Network {
    let mut net = Network {
        netns: None,
        guards: Vec::new(),
        queued: Duration::ZERO,
    };
    if !plan.needs_network {
        return net;
    }
    if plan.opts.isolation == Isolation::Auto {
        let made = blocking(|| {
            let ns = NetNs::new()?;
            let local = capture::make_everything_local(&ns);
            Ok::<_, std::io::Error>((ns, local))
        })
        .await;
        match made {
            Ok((ns, local)) => {
                if let Err(e) = local {
                    notes.push(format!(
                        "hard-coded remote hosts cannot be reached in this run: making every address local failed ({e})"
                    ));
                }
                net.netns = Some(Arc::new(ns));
                return net;
            }
            Err(e) => notes.push(format!(
                "no private network for this run ({e}; network namespaces need root): ran on the host network, and runs using the same port waited for each other"
            )),
        }
    }
    let waited = Instant::now();
    for port in fixed_ports(plan) {
        net.guards.push(port_lock(port).lock_owned().await);
    }
    net.queued = waited.elapsed();
    if net.queued > Duration::from_millis(50) {
        notes.push(format!(
            "waited {} for the lab's port to be free",
            Dur(net.queued)
        ));
    }
    net
}

/// The ports a run on the host network holds for itself, in lock order.
/// Port 0 stands for "a student's server": those pick their own ports, so
/// on a shared network they take turns.
fn fixed_ports(plan: &Plan) -> Vec<u16> {
    let mut ports: Vec<u16> = plan
        .lab
        .servers
        .iter()
        .map(|s| s.port)
        .filter(|p| *p != 0)
        .collect();
    // Implicit-TLS listeners (SMTPS) bind ports of their own.
    ports.extend(plan.lab.servers.iter().filter_map(|s| s.tls_port));
    if plan.is_server() {
        ports.push(0);
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Options;

    #[tokio::test]
    async fn runs_on_the_host_network_take_turns_on_a_port() {
        let lab = crate::spec::load_builtin("udp-pinger").unwrap().unwrap();
        let opts = Options {
            isolation: Isolation::Off,
            ..Options::default()
        };
        let plan = Plan::new(&lab, std::path::Path::new("."), "s", &opts);
        assert_eq!(fixed_ports(&plan), vec![12000]);
        let mut notes = Vec::new();
        let first = enter(&plan, &mut notes).await;
        assert!(first.namespace().is_none());
        // A second run waits until the first leaves.
        let second = tokio::spawn(async move {
            let lab = crate::spec::load_builtin("udp-pinger").unwrap().unwrap();
            let opts = Options {
                isolation: Isolation::Off,
                ..Options::default()
            };
            let plan = Plan::new(&lab, std::path::Path::new("."), "s", &opts);
            let mut notes = Vec::new();
            enter(&plan, &mut notes).await.leave()
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!second.is_finished());
        first.leave();
        let waited = second.await.unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
    }
}
