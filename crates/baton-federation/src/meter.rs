//! What a site measures of one federated function: its own users' arrivals, how long a request
//! takes, and the requests in flight here and at each peer. From them, each round, its
//! [`Load`] in slots: capacity is what the site may run at once; demand is its users' arrival
//! rate times the time a request takes (Little's law), so a site that refuses or forwards
//! still sees what its users want.

use crate::strategy::Load;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Arrivals are counted in buckets this long.
const BUCKET: Duration = Duration::from_millis(100);
/// Buckets kept: the last second.
const BUCKETS: usize = 10;
/// Weight of the newest duration in the running mean.
const SMOOTHING: f64 = 0.2;

/// The arrival rate, requests a second, from arrivals per bucket (oldest first, the bucket
/// still filling excluded): the highest rate over the last 2 to 5 buckets, so a rise is seen
/// within 200 ms and one quiet bucket does not hide a load.
pub fn arrival_rate(buckets: &[u64], bucket: Duration) -> f64 {
    (2..=5.min(buckets.len()))
        .map(|k| {
            let sum: u64 = buckets[buckets.len() - k..].iter().sum();
            sum as f64 / (k as f64 * bucket.as_secs_f64())
        })
        .fold(0.0, f64::max)
}

/// Demand in slots: `rate` requests a second that each take `service` seconds, and never less
/// than the users' requests in flight now (a burst within the current bucket, a backlog, or
/// before any request has finished).
pub fn demand_slots(rate: f64, service: Option<f64>, in_flight: u64) -> f64 {
    let steady = service.map_or(0.0, |service| rate * service);
    steady.max(in_flight as f64)
}

#[derive(Debug)]
struct State {
    /// Start of the newest bucket.
    current_start: Instant,
    /// Arrivals per bucket, oldest first; the last is the one filling.
    buckets: [u64; BUCKETS],
    /// Running mean of request durations, seconds.
    service: Option<f64>,
}

/// One function's measurements at this site.
#[derive(Debug)]
pub struct Meter {
    state: Mutex<State>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new(Instant::now())
    }
}

impl Meter {
    /// A meter whose first bucket starts at `start`.
    pub fn new(start: Instant) -> Meter {
        Meter {
            state: Mutex::new(State {
                current_start: start,
                buckets: [0; BUCKETS],
                service: None,
            }),
        }
    }
}

impl State {
    fn advance(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.current_start);
        let steps = (elapsed.as_nanos() / BUCKET.as_nanos()) as usize;
        if steps == 0 {
            return;
        }
        let shift = steps.min(BUCKETS);
        self.buckets.rotate_left(shift);
        for b in &mut self.buckets[BUCKETS - shift..] {
            *b = 0;
        }
        self.current_start += BUCKET * steps as u32;
    }
}

impl Meter {
    /// One of the site's own users' requests arrived.
    pub fn arrived(&self, now: Instant) {
        let mut state = self.state.lock().unwrap();
        state.advance(now);
        state.buckets[BUCKETS - 1] += 1;
    }

    /// A request was served in `took`.
    pub fn served(&self, took: Duration) {
        let mut state = self.state.lock().unwrap();
        let took = took.as_secs_f64();
        state.service = Some(match state.service {
            Some(mean) => mean + SMOOTHING * (took - mean),
            None => took,
        });
    }

    /// The users' arrival rate now, requests a second.
    pub fn rate(&self, now: Instant) -> f64 {
        let mut state = self.state.lock().unwrap();
        state.advance(now);
        arrival_rate(&state.buckets[..BUCKETS - 1], BUCKET)
    }

    /// The mean time a request takes, once one has been served.
    pub fn service(&self) -> Option<f64> {
        self.state.lock().unwrap().service
    }

    /// The load now: `capacity` slots, and the users' demand (`in_flight` of their requests
    /// in flight, here or at peers).
    pub fn load(&self, capacity: f64, in_flight: u64, now: Instant) -> Load {
        Load::new(
            capacity,
            demand_slots(self.rate(now), self.service(), in_flight),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_follows_a_rise_at_once_and_a_fall_slowly() {
        let b = Duration::from_millis(100);
        for (buckets, rate) in [
            (&[0, 0, 0, 0, 0, 0][..], 0.0),
            (&[10, 10, 10, 10, 10][..], 100.0),
            // A load that began 200 ms ago is seen at its rate.
            (&[0, 0, 0, 10, 10][..], 100.0),
            // One quiet bucket after a steady load: the load is still seen.
            (&[10, 10, 10, 10, 0][..], 80.0),
            (&[0, 0, 0, 0, 4][..], 20.0),
        ] {
            assert!(
                (arrival_rate(buckets, b) - rate).abs() < 1e-9,
                "{buckets:?}: {}",
                arrival_rate(buckets, b)
            );
        }
    }

    #[test]
    fn demand_is_rate_times_service_or_what_is_in_flight() {
        assert!((demand_slots(100.0, Some(0.1), 3) - 10.0).abs() < 1e-9);
        assert_eq!(demand_slots(100.0, None, 3), 3.0);
        // A burst not yet in the rate: what is in flight.
        assert_eq!(demand_slots(0.0, Some(0.1), 7), 7.0);
    }

    #[test]
    fn a_meter_counts_arrivals_into_the_last_second() {
        let start = Instant::now();
        let meter = Meter::new(start);
        for i in 0..20 {
            meter.arrived(start + Duration::from_millis(i * 10));
        }
        // 20 arrivals in 200 ms, seen once both buckets are complete.
        let rate = meter.rate(start + Duration::from_millis(250));
        assert!((rate - 100.0).abs() < 1e-9, "{rate}");
        // Two seconds later they are forgotten.
        assert_eq!(meter.rate(start + Duration::from_secs(3)), 0.0);
        meter.served(Duration::from_millis(100));
        meter.served(Duration::from_millis(200));
        assert!((meter.service().unwrap() - 0.12).abs() < 1e-9);
    }
}
