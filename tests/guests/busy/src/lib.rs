//! The synthetic function of trace replay: `/?ms=N&mb=M` touches M MiB of memory and keeps
//! the CPU busy for N milliseconds, like the traced function it stands for; `sleep=N` waits N
//! milliseconds without using the CPU (a function waiting on I/O, as the federation benchmark
//! uses: a site's capacity is then its slots, not its cores).
use baton_sdk::wasi::clocks::monotonic_clock;
use baton_sdk::{Request, Response};
use std::hint::black_box;

fn number(request: &Request, key: &str) -> u64 {
    request.query_param(key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn handle(request: Request) -> Response {
    let ms = number(&request, "ms");
    let mb = number(&request, "mb").min(1024) as usize;
    let mut memory = vec![0u8; mb << 20];
    for page in memory.chunks_mut(4096) {
        page[0] = black_box(1);
    }
    let sleep = number(&request, "sleep").min(60_000);
    if sleep > 0 {
        monotonic_clock::subscribe_duration(sleep * 1_000_000).block();
    }
    let deadline = monotonic_clock::now() + ms * 1_000_000;
    let mut spins: u64 = 0;
    while monotonic_clock::now() < deadline {
        for _ in 0..1000 {
            spins = black_box(spins.wrapping_add(1));
        }
    }
    Response::text(200, format!("busy {ms} ms, {mb} MiB, slept {sleep} ms\n"))
}

baton_sdk::http_handler!(handle);
