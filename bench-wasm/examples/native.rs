//! The browser benchmark's sizes, run natively with the same code and clock
//! abstraction, for comparison with the wasm figures:
//! `cargo run --release -p epicenter-bench-wasm --example native`.

fn main() {
    for (nodes, edges, warmup, iterations) in [(300, 2_500, 5, 30), (10_000, 100_000, 1, 5)] {
        println!(
            "{}",
            epicenter_bench_wasm::run(nodes, edges, warmup, iterations)
        );
    }
}
