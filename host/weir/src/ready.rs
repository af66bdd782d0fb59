//! `/readyz`: ready for traffic once every listener is bound (plugins are loaded before the
//! first one is), not while draining after SIGTERM, and at an edge only while its upstream
//! answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The upstream's last health check: `Ok`, or why not.
pub type UpstreamHealth = Arc<Mutex<Result<(), String>>>;

pub struct Ready {
    listening: AtomicBool,
    draining: AtomicBool,
    upstream: Option<UpstreamHealth>,
}

impl Ready {
    pub fn new(upstream: Option<UpstreamHealth>) -> Self {
        Self {
            listening: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            upstream,
        }
    }

    /// Every listener is bound.
    pub fn listening(&self) {
        self.listening.store(true, Ordering::Release);
    }

    /// Shutting down: load balancers should stop sending new work.
    pub fn draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

impl weir_origin::Readiness for Ready {
    fn ready(&self) -> Result<(), String> {
        if self.draining.load(Ordering::Acquire) {
            return Err("shutting down".into());
        }
        if !self.listening.load(Ordering::Acquire) {
            return Err("starting: listeners not bound yet".into());
        }
        match &self.upstream {
            Some(u) => u.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use weir_origin::Readiness as _;

    use super::*;

    #[test]
    fn ready_after_listening_and_while_the_upstream_answers_never_while_draining() {
        let upstream: UpstreamHealth = Arc::new(Mutex::new(Err("unreachable".into())));
        let r = Ready::new(Some(upstream.clone()));
        assert!(r.ready().unwrap_err().contains("listeners"));
        r.listening();
        assert_eq!(r.ready(), Err("unreachable".into()));
        *upstream.lock().unwrap() = Ok(());
        assert_eq!(r.ready(), Ok(()));
        r.draining();
        assert_eq!(r.ready(), Err("shutting down".into()));
    }
}
