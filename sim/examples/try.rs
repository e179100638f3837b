use std::time::Instant;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let only = args.get(2).cloned();
    for sc in iscsi_sim::scenarios::all() {
        if only.as_deref().is_some_and(|o| o != sc.name) {
            continue;
        }
        for seed in 0..seeds {
            let t = Instant::now();
            let opts = iscsi_sim::world::RunOptions {
                keep_trace: std::env::var_os("DUMP").is_some(),
                ..Default::default()
            };
            let (mix, r) = iscsi_sim::scenarios::run(sc, seed, &opts);
            if let Some(lines) = &r.trace_lines {
                std::fs::write(
                    format!("/tmp/trace-{}-{seed}.txt", sc.name),
                    lines.join("\n"),
                )
                .unwrap();
            }
            println!(
                "{:24} seed={seed} {} sim={:.1}s wall={:.2}s lines={} mix={mix}",
                sc.name,
                if r.passed() { "ok" } else { "FAIL" },
                r.sim_time.as_secs_f64(),
                t.elapsed().as_secs_f64(),
                r.trace_len
            );
            if !r.passed() {
                for f in &r.failures {
                    println!("   {f}");
                }
                for l in r
                    .tail
                    .iter()
                    .rev()
                    .take(25)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                {
                    println!("   | {l}");
                }
            }
        }
    }
}
#[allow(dead_code)]
fn unused() {}
