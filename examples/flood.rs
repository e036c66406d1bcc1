//! Flood bench: a private lab (root + controller, two members on 127.0.0.1) measures the TCP
//! throughput member 0 -> member 1 without and with a hostile flood (every `ztrs::flood`
//! kind at member 0 and at the root), alternating, in the same run, and prints
//!   flood_throughput_ratio=<median flooded / median unflooded>
//! with the resident memory and what the flood sent and the targets counted.
//!
//! `cargo run --release --example flood -- [--mib 256] [--rate 10000] [--runs 5] [--kinds all]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{sleep, timeout};
use ztrs::flood::{CounterSnapshot, Flood, Kind, Target, kernel_receive_drops, resident_bytes};
use ztrs::lab::{Lab, LabOptions};
use ztrs::service::ServiceHandle;

type Error = Box<dyn std::error::Error>;

const BOUND: Duration = Duration::from_secs(120);

struct Settings {
    mib: usize,
    rate: u32,
    runs: usize,
    kinds: Vec<Kind>,
}

fn settings() -> Result<Settings, Error> {
    let mut s = Settings {
        mib: 256,
        rate: 10_000,
        runs: 5,
        kinds: Kind::ALL.to_vec(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--mib" => s.mib = value.parse()?,
            "--rate" => s.rate = value.parse()?,
            "--runs" => s.runs = value.parse()?,
            "--kinds" => s.kinds = Kind::parse_list(&value)?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(s)
}

/// Member 0 sends `len` bytes to member 1; returns Mbit/s from connect to the last byte read.
async fn transfer(lab: &Lab, port: u16, len: usize) -> Result<f64, Error> {
    let (a, b) = (&lab.members[0], &lab.members[1]);
    let to = SocketAddr::new(b.ipv4().ok_or("member 1 has no IPv4")?.into(), port);
    let listener = b.netstack.bind_tcp(to)?;
    let sink = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = vec![0; 65536];
        let mut total = 0usize;
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<usize, std::io::Error>(total);
            }
            total += n;
        }
    });
    let data = vec![0x5au8; 1 << 20];
    let started = Instant::now();
    let mut stream = a.netstack.connect(to).await?;
    timeout(BOUND, async {
        for _ in 0..len >> 20 {
            stream.write_all(&data).await?;
        }
        stream.shutdown().await
    })
    .await??;
    let received = timeout(BOUND, sink).await???;
    let secs = started.elapsed().as_secs_f64();
    if received != len >> 20 << 20 {
        return Err(format!("member 1 read {received} bytes of {len}").into());
    }
    Ok(received as f64 * 8.0 / secs / 1e6)
}

async fn identity(handle: &ServiceHandle) -> Result<ztrs::crypto::Identity, Error> {
    Ok(handle.inspect(|n| n.identity().clone()).await?)
}

async fn snapshot(handle: &ServiceHandle) -> Result<CounterSnapshot, Error> {
    Ok(handle.inspect(CounterSnapshot::of).await?)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let s = settings()?;
    let lab = Lab::start(LabOptions::default()).await?;
    let handles = [lab.members[0].handle.clone(), lab.root.clone()];
    let mut member = Target::new(handles[0].local_addr(), identity(&handles[0]).await?);
    member.known_peers = vec![lab.root.address(), lab.members[1].handle.address()];
    member.network = Some(lab.nwid);
    let mut root = Target::new(handles[1].local_addr(), identity(&handles[1]).await?);
    root.known_peers = lab.members.iter().map(|m| m.handle.address()).collect();
    root.network = Some(lab.nwid);
    root.relays = true;
    let mut flood = Flood::new(s.kinds.clone(), s.rate, vec![member, root])?;

    // Warm-up (ARP, direct path), then the targets learn the pool identities.
    transfer(&lab, 7200, 1 << 20).await?;
    let pool = flood.pool_addresses().to_vec();
    for (t, handle) in handles.iter().enumerate() {
        let started = Instant::now();
        loop {
            flood.send_paced(Kind::HelloPool, t, pool.len() as u64);
            sleep(Duration::from_millis(50)).await;
            let wanted = pool.clone();
            if handle
                .inspect(move |n| wanted.iter().all(|a| n.peer(*a).is_some()))
                .await?
            {
                break;
            }
            if started.elapsed() > BOUND {
                return Err("the pool identities were never learned".into());
            }
        }
    }

    let rss_start = resident_bytes().unwrap_or(0);
    let mut rss_peak = rss_start;
    let before = [snapshot(&handles[0]).await?, snapshot(&handles[1]).await?];
    let (mut plain, mut flooded) = (Vec::new(), Vec::new());
    let mut port = 7300;
    for run in 0..s.runs {
        port += 1;
        let mbps = transfer(&lab, port, s.mib << 20).await?;
        println!("run {run}: unflooded {mbps:.0} Mbit/s");
        plain.push(mbps);

        let stop = Arc::new(AtomicBool::new(false));
        let flooding = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                flood.run_until(&stop, BOUND);
                flood
            })
        };
        // Let the flood reach its rate before measuring.
        sleep(Duration::from_millis(200)).await;
        port += 1;
        let result = transfer(&lab, port, s.mib << 20).await;
        rss_peak = rss_peak.max(resident_bytes().unwrap_or(0));
        stop.store(true, Ordering::Relaxed);
        flood = flooding.join().map_err(|_| "the flood thread panicked")?;
        let mbps = result?;
        println!("run {run}: flooded   {mbps:.0} Mbit/s");
        flooded.push(mbps);
    }

    let report = flood.report();
    println!(
        "flood: {} datagrams at {} pps ({} send errors, {} replies)",
        report.total(),
        s.rate,
        report.send_errors,
        report.replies
    );
    for kind in &s.kinds {
        println!("  {kind:>15}: {}", report.sent_of(*kind));
    }
    for (t, handle) in handles.iter().enumerate() {
        let after = snapshot(handle).await?;
        println!(
            "target {t} ({}): kernel drops {:?}, peers {}, counters {:?}",
            handle.local_addr(),
            kernel_receive_drops(handle.local_addr()),
            after.peers,
            after.changes_since(&before[t])
        );
    }
    let (plain, flooded) = (median(&mut plain), median(&mut flooded));
    let rss_end = resident_bytes().unwrap_or(0);
    println!("unflooded_mbps={plain:.0} flooded_mbps={flooded:.0}");
    println!(
        "rss_start_mib={:.1} rss_peak_mib={:.1} rss_end_mib={:.1}",
        mib(rss_start),
        mib(rss_peak),
        mib(rss_end)
    );
    println!("flood_throughput_ratio={:.3}", flooded / plain.max(1e-9));
    lab.shutdown().await;
    Ok(())
}
