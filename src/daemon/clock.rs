//! The daemon's clock: real time in production, or a compressed virtual
//! time for the demo.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

/// Source of "now" for everything the daemon stamps.
#[derive(Debug, Clone)]
pub enum Clock {
    Real,
    /// Virtual time that starts at `origin` when the daemon starts and runs
    /// `speed` times faster than real time.
    Scaled {
        started: Instant,
        origin: Timestamp,
        speed: f64,
    },
}

// === impl Clock ===

impl Clock {
    pub fn scaled(origin: Timestamp, speed: f64) -> Clock {
        Clock::Scaled { started: Instant::now(), origin, speed }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Real => Timestamp::now(),
            Clock::Scaled { started, origin, speed } => {
                let elapsed = started.elapsed().as_secs_f64() * speed;
                let elapsed = SignedDuration::from_secs_f64(elapsed);
                origin.checked_add(elapsed).unwrap_or(*origin)
            }
        }
    }

    /// Returns how many virtual seconds pass per real second.
    pub fn speed(&self) -> f64 {
        match self {
            Clock::Real => 1.0,
            Clock::Scaled { speed, .. } => *speed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster() {
        let origin: Timestamp = "2026-12-07T08:00:00Z".parse().unwrap();
        let clock = Clock::scaled(origin, 60.0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let elapsed = clock.now().duration_since(origin);
        assert!(elapsed >= SignedDuration::from_secs(3), "{elapsed:?}");
    }
}
