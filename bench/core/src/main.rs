//! The native side of the core benchmark: prints one JSON line,
//! `{"host":"native","bytes":N,"ns_per_op":[...one per round]}`.

use std::time::Instant;

fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(7);
    let round_ms: u128 = std::env::var("BENCH_ROUND_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let bytes = tollgate_bench_core::setup();
    let mut sink = 0u32;
    // Warm up, and find a batch size of about 10 ms.
    let mut batch = 1u32;
    loop {
        let t = Instant::now();
        sink ^= tollgate_bench_core::run(batch);
        if t.elapsed().as_millis() >= 10 {
            break;
        }
        batch *= 2;
    }
    let mut per_op = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let mut n = 0u64;
        while t.elapsed().as_millis() < round_ms {
            sink ^= tollgate_bench_core::run(batch);
            n += batch as u64;
        }
        per_op.push(t.elapsed().as_nanos() as f64 / n as f64);
    }
    let list: Vec<String> = per_op.iter().map(|x| format!("{x:.1}")).collect();
    println!("{{\"host\":\"native\",\"bytes\":{bytes},\"sink\":{sink},\"ns_per_op\":[{}]}}", list.join(","));
}
