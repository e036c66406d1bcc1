//! A fault-injecting layer in front of the UDP socket, for tests and rigs: outbound datagrams
//! can be lost, duplicated, delayed and reordered, deterministically from a seed (the idea of
//! smoltcp's `FaultInjector`, at the underlay). This kernel has no `netem`, and `nft` can
//! drop but not reorder or duplicate, so the end-to-end tests impair our own transport.
//!
//! Off unless configured: the daemon reads `ZTRS_IMPAIR`, e.g.
//! `loss=0.02,duplicate=0.01,reorder=0.05,delay_ms=50,jitter_ms=10,reorder_ms=8,seed=7`.
//! Held datagrams are bounded ([`MAX_HELD`]); beyond it they are sent at once (counted),
//! never queued without bound. Every delay setting is at most [`MAX_DELAY_MS`].

use std::collections::VecDeque;
use std::net::SocketAddr;

/// Datagrams held back at most.
pub const MAX_HELD: usize = 8192;

/// The largest `delay_ms`, `jitter_ms` and `reorder_ms` accepted: a test impairment, not a
/// way to park datagrams for minutes.
pub const MAX_DELAY_MS: u64 = 10_000;

/// What to do to outbound datagrams (probabilities in 0..=1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Impairment {
    pub loss: f64,
    pub duplicate: f64,
    /// Share of datagrams given an extra delay of up to `reorder_ms`, so later ones overtake.
    pub reorder: f64,
    /// Delay of every datagram.
    pub delay_ms: u64,
    /// Extra delay of every datagram, uniform in `0..=jitter_ms` (datagrams whose draws
    /// differ by more than their spacing overtake each other, as on a jittery link).
    pub jitter_ms: u64,
    pub reorder_ms: u64,
    pub seed: u64,
}

impl Impairment {
    /// Parses `key=value` pairs separated by commas; unknown keys and bad values are errors.
    pub fn parse(text: &str) -> Result<Impairment, String> {
        let mut imp = Impairment {
            reorder_ms: 5,
            seed: 1,
            ..Impairment::default()
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or(format!("impairment {pair:?}: expected key=value"))?;
            let probability = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or(format!("impairment {key}: {value:?} is not a probability"))
            };
            let number = || -> Result<u64, String> {
                value
                    .parse::<u64>()
                    .map_err(|_| format!("impairment {key}: {value:?} is not a number"))
            };
            let milliseconds = || -> Result<u64, String> {
                let ms = number()?;
                if ms > MAX_DELAY_MS {
                    return Err(format!("impairment {key}: {ms} is over {MAX_DELAY_MS} ms"));
                }
                Ok(ms)
            };
            match key {
                "loss" => imp.loss = probability()?,
                "duplicate" => imp.duplicate = probability()?,
                "reorder" => imp.reorder = probability()?,
                "delay_ms" => imp.delay_ms = milliseconds()?,
                "jitter_ms" => imp.jitter_ms = milliseconds()?,
                "reorder_ms" => imp.reorder_ms = milliseconds()?,
                "seed" => imp.seed = number()?,
                _ => return Err(format!("impairment: unknown key {key:?}")),
            }
        }
        Ok(imp)
    }
}

/// Counts of what the layer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImpairCounters {
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub delayed: u64,
    /// Datagrams given a non-zero jitter draw.
    pub jittered: u64,
    /// Held queue full: sent at once instead.
    pub overflow_sent: u64,
}

/// The layer's state: a deterministic generator and the held datagrams.
pub struct Impairer {
    config: Impairment,
    state: u64,
    held: VecDeque<(u64, SocketAddr, Vec<u8>)>,
    pub counters: ImpairCounters,
}

impl Impairer {
    pub fn new(config: Impairment) -> Impairer {
        Impairer {
            config,
            state: config.seed | 1,
            held: VecDeque::new(),
            counters: ImpairCounters::default(),
        }
    }

    /// xorshift64*: plenty for test impairment, and reproducible from the seed. 53 bits.
    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }

    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        (self.next() as f64 / (1u64 << 53) as f64) < p
    }

    /// A uniform draw in `0..=max` (0 without drawing when `max` is 0, so configurations
    /// without jitter keep their sequences).
    fn up_to(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        self.next() % (max + 1)
    }

    /// Takes one outbound datagram: appends to `now_out` what goes out now, holds the rest.
    pub fn process(
        &mut self,
        now_ms: u64,
        remote: SocketAddr,
        data: Vec<u8>,
        now_out: &mut VecDeque<(SocketAddr, Vec<u8>)>,
    ) {
        if self.chance(self.config.loss) {
            self.counters.lost += 1;
            return;
        }
        if self.chance(self.config.duplicate) {
            self.counters.duplicated += 1;
            self.hold_or_send(now_ms, remote, data.clone(), now_out);
        }
        self.hold_or_send(now_ms, remote, data, now_out);
    }

    fn hold_or_send(
        &mut self,
        now_ms: u64,
        remote: SocketAddr,
        data: Vec<u8>,
        now_out: &mut VecDeque<(SocketAddr, Vec<u8>)>,
    ) {
        let mut delay = self.config.delay_ms;
        let jitter = self.up_to(self.config.jitter_ms);
        if jitter > 0 {
            self.counters.jittered += 1;
            delay += jitter;
        }
        if self.chance(self.config.reorder) {
            self.counters.reordered += 1;
            delay += 1 + (self.state % self.config.reorder_ms.max(1));
        }
        if delay == 0 {
            now_out.push_back((remote, data));
            return;
        }
        if self.held.len() >= MAX_HELD {
            self.counters.overflow_sent += 1;
            now_out.push_back((remote, data));
            return;
        }
        self.counters.delayed += 1;
        let due = now_ms.saturating_add(delay);
        // Keep the queue ordered by due time (insertion from the back: delays are short).
        let at = self
            .held
            .iter()
            .rposition(|(d, _, _)| *d <= due)
            .map_or(0, |i| i + 1);
        self.held.insert(at, (due, remote, data));
    }

    /// Moves every held datagram that is due into `out`.
    pub fn release(&mut self, now_ms: u64, out: &mut VecDeque<(SocketAddr, Vec<u8>)>) {
        while self.held.front().is_some_and(|(due, _, _)| *due <= now_ms) {
            if let Some((_, remote, data)) = self.held.pop_front() {
                out.push_back((remote, data));
            }
        }
    }

    /// When the next held datagram is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.held.front().map(|(due, _, _)| *due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn parse_and_refuse() {
        let imp =
            Impairment::parse("loss=0.02, duplicate=0.01,reorder=0.1,delay_ms=3,seed=9").unwrap();
        assert_eq!(imp.loss, 0.02);
        assert_eq!(imp.delay_ms, 3);
        assert_eq!(imp.seed, 9);
        assert!(Impairment::parse("loss=2").is_err());
        assert!(Impairment::parse("jitter=1").is_err());
        assert_eq!(Impairment::parse("jitter_ms=20").unwrap().jitter_ms, 20);
        assert!(Impairment::parse("jitter_ms=10001").is_err());
        assert!(Impairment::parse("delay_ms=-1").is_err());
        assert!(Impairment::parse("loss").is_err());
    }

    #[test]
    fn rates_are_roughly_honoured_and_everything_is_released_in_due_order() {
        let mut imp = Impairer::new(
            Impairment::parse("loss=0.1,duplicate=0.1,reorder=0.2,reorder_ms=10,seed=3").unwrap(),
        );
        let mut out = VecDeque::new();
        for i in 0..10_000u32 {
            imp.process(
                u64::from(i / 10),
                addr(),
                i.to_be_bytes().to_vec(),
                &mut out,
            );
            imp.release(u64::from(i / 10), &mut out);
        }
        imp.release(u64::MAX, &mut out);
        let c = imp.counters;
        assert!((800..1200).contains(&c.lost), "{c:?}");
        assert!((700..1100).contains(&c.duplicated), "{c:?}");
        assert!(c.reordered > 1000, "{c:?}");
        assert_eq!(out.len() as u64, 10_000 - c.lost + c.duplicated);
        // Some datagrams overtook others.
        let seq: Vec<u32> = out
            .iter()
            .map(|(_, d)| u32::from_be_bytes(d[..4].try_into().unwrap()))
            .collect();
        assert!(seq.windows(2).any(|w| w[1] < w[0]));
        assert!(imp.poll_timeout().is_none());
    }

    #[test]
    fn jitter_is_uniform_bounded_reorders_and_is_reproducible() {
        let config = Impairment::parse("delay_ms=50,jitter_ms=20,seed=5").unwrap();
        let run = || {
            let mut imp = Impairer::new(config);
            let mut out = VecDeque::new();
            let mut sent_at = Vec::new();
            let mut arrivals = Vec::new();
            for i in 0..4_000u32 {
                let now = u64::from(i / 4);
                sent_at.push(now);
                imp.process(now, addr(), i.to_be_bytes().to_vec(), &mut out);
                // Release each millisecond and note when each datagram left.
                imp.release(now, &mut out);
                for (_, d) in out.drain(..) {
                    arrivals.push((u32::from_be_bytes(d[..4].try_into().unwrap()), now));
                }
            }
            for now in 1_000..1_100 {
                imp.release(now, &mut out);
                for (_, d) in out.drain(..) {
                    arrivals.push((u32::from_be_bytes(d[..4].try_into().unwrap()), now));
                }
            }
            (imp.counters, sent_at, arrivals)
        };
        let (counters, sent_at, arrivals) = run();
        assert_eq!(arrivals.len(), 4_000, "nothing lost or duplicated");
        let delays: Vec<u64> = arrivals
            .iter()
            .map(|&(i, at)| at - sent_at[i as usize])
            .collect();
        assert!(delays.iter().all(|d| (50..=70).contains(d)), "{delays:?}");
        // Roughly uniform: both halves of the jitter range are well used, both ends reached.
        let low = delays.iter().filter(|&&d| d < 60).count();
        assert!(
            (1_600..2_400).contains(&low),
            "{low} of 4000 below the middle"
        );
        assert!(delays.contains(&50) && delays.contains(&70));
        assert!(counters.jittered > 3_500, "{counters:?}");
        // Jitter alone reorders.
        assert!(arrivals.windows(2).any(|w| w[1].0 < w[0].0));
        // Same seed, same schedule.
        assert_eq!(run().2, arrivals);
    }
}
