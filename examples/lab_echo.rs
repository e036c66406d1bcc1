//! A private ZeroTier network in one process (root, controller and two members on
//! 127.0.0.1, no privileges): member B runs a TCP echo server on its user-space stack,
//! member A connects to B by name (`<node>.zt`), sends 8 MiB and checks the echo.
//!
//! `cargo run --release --example lab_echo`

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use ztrs::lab::{Lab, LabOptions};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lab = Lab::start(LabOptions::default()).await?;
    let (a, b) = (&lab.members[0], &lab.members[1]);
    // `0.0.0.0` and `::` each cover every managed address of their family.
    for any in ["0.0.0.0:7", "[::]:7"] {
        let listener = b.netstack.bind_tcp(any.parse()?)?;
        tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                println!("B accepted {peer}");
                tokio::spawn(async move {
                    let (mut rd, mut wr) = stream.into_split();
                    let _ = tokio::io::copy(&mut rd, &mut wr).await;
                });
            }
        });
    }

    let name = format!("{}.zt", b.handle.address());
    println!("A resolves {name}: {:?}", a.netstack.resolve(&name)?);
    let started = Instant::now();
    let stream = a.netstack.connect_host(&name, 7).await?;
    println!(
        "A connected {} -> {} in {:?}",
        stream.local_addr(),
        stream.peer_addr(),
        started.elapsed()
    );

    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let (mut rd, mut wr) = stream.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&sent).await?;
        wr.shutdown().await
    });
    let started = Instant::now();
    let mut echoed = Vec::with_capacity(data.len());
    rd.read_to_end(&mut echoed).await?;
    writer.await??;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "echoed {} MiB in {:.2} s ({:.0} Mbit/s each way), intact: {}",
        echoed.len() >> 20,
        secs,
        data.len() as f64 * 8.0 / secs / 1e6,
        echoed == data
    );
    lab.shutdown().await;
    Ok(())
}
