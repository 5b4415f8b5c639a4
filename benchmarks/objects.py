#!/usr/bin/env python3
"""Objects behind a cache, after OFC: the I/O-bound function of the issue (reads a 1-16 MiB
object, maps every byte, writes the result) on one node whose store is 20 ms away
(`[objects] latency`), with no cache and write-through, with a warm cache and write-through,
with a warm cache and a write-back output bucket; then write latency of both modes, flush
throughput, and the hit ratio of a Zipf workload over more objects than fit.

    benchmarks/objects.py BATON GUEST_WASM OUT_DIR      (benchmarks/objects.sh runs it)

Standard library only. Every figure is a median of sequential calls on one machine in one
run: compare the rows with each other, not with another day's."""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BATON, GUEST, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
MIB = 1 << 20
LATENCY = os.environ.get("LATENCY", "20ms")
SIZES = [1, 4, 16]
CALLS = int(os.environ.get("CALLS", "15"))


class Node:
    """A `baton up` on a port of its own with `config` as its config file."""

    def __init__(self, config):
        self.dir = tempfile.mkdtemp(prefix="baton-objects-")
        cfg = os.path.join(self.dir, "baton.toml")
        with open(cfg, "w") as f:
            f.write(config)
        ready = os.path.join(self.dir, "ready.json")
        env = dict(os.environ, BATON_LISTEN="127.0.0.1:0", BATON_DATA_DIR=os.path.join(self.dir, "data"),
                   BATON_CONFIG=cfg, BATON_EXAMPLES="false", BATON_LOG="warn")
        env.pop("BATON_TOKEN", None)
        self.process = subprocess.Popen([BATON, "up", "--ready-file", ready], env=env,
                                        stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "log"), "w"))
        for _ in range(6000):
            if os.path.exists(ready) and os.path.getsize(ready) > 0:
                break
            time.sleep(0.01)
        else:
            raise SystemExit("the node never became ready")
        self.url = json.load(open(ready))["http"]
        self.token = open(os.path.join(self.dir, "data", "admin-token")).read().strip()

    def call(self, method, path, body=None, headers=None, admin=True):
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        if admin:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def timed(self, method, path, body=None, admin=True):
        start = time.perf_counter()
        status, reply = self.call(method, path, body, admin=admin)
        elapsed = time.perf_counter() - start
        if status != 200:
            raise SystemExit(f"{method} {path}: {status} {reply[:200]!r}")
        return elapsed * 1000

    def deploy_transform(self):
        settings = {"service": "io", "labels": {"baton.namespace": "bench"}, "limits": {"memory": "256Mi"}}
        with open(GUEST, "rb") as f:
            status, reply = self.call("POST", "/system/functions", f.read(), {
                "content-type": "application/wasm", "x-baton-deployment": json.dumps(settings)})
        assert status in (200, 201, 202), reply
        for bucket in ("inputs", "outputs"):
            status, reply = self.call("PUT", f"/system/objects/bench/{bucket}", b"")
            assert status in (200, 201), reply

    def stats(self):
        return json.loads(self.call("GET", "/system/cache")[1])

    def stop(self):
        self.process.terminate()
        self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def config(cache, write_back, flush="1s", latency=None, store="local"):
    wb = '["bench/outputs"]' if write_back else "[]"
    latency = LATENCY if latency is None else latency
    return (f'[objects]\nstore = "{store}"\nlatency = "{latency}"\ncache = "{cache}"\nmax_object = "64Mi"\n'
            f'max_dirty = "1Gi"\nwrite_back = {wb}\nflush_interval = "{flush}"\n'
            '[wasm]\nmax_memory = "256Mi"\n')


def payload(size_mib, seed):
    return random.Random(seed).randbytes(size_mib * MIB)


def transform_times(node):
    """Median and p90 milliseconds of the transform per object size, after 3 warm calls."""
    rows = {}
    for size in SIZES:
        node.call("PUT", f"/system/objects/bench/inputs/obj-{size}", payload(size, size))
        path = f"/function/io/transform?c=inputs&key=obj-{size}&to=outputs"
        for _ in range(3):
            node.timed("POST", path, admin=False)
        times = sorted(node.timed("POST", path, admin=False) for _ in range(CALLS))
        rows[size] = {"p50_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9) - 1]}
    return rows


def durable_write_ms(size_mib):
    """The floor under a write-back acknowledgement: writing the bytes to a file on the
    disk the pending log is on and waiting for fdatasync; median of 5."""
    body = payload(size_mib, 99)
    times = []
    with tempfile.TemporaryDirectory(prefix="baton-floor-", dir=os.path.dirname(os.path.abspath(OUT))) as d:
        for i in range(5):
            start = time.perf_counter()
            with open(os.path.join(d, f"f{i}"), "wb") as f:
                f.write(body)
                f.flush()
                os.fdatasync(f.fileno())
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


results = {"latency": LATENCY, "calls": CALLS, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

# 1. The I/O-bound function in three set-ups.
modes = {
    "no cache, write-through": config("0", False),
    "warm cache, write-through": config("1Gi", False),
    "warm cache, write-back": config("1Gi", True),
    # The function's own work: objects in memory, no store latency, nothing durable.
    "floor: memory store, no latency": config("1Gi", False, latency="0s", store="memory"),
}
results["transform"] = {}
for mode, cfg in modes.items():
    node = Node(cfg)
    node.deploy_transform()
    results["transform"][mode] = transform_times(node)
    node.stop()

# 2. Write latency of a 1 MiB object, and flush throughput, per mode.
results["writes"] = {}
for mode, write_back in (("write-through", False), ("write-back", True)):
    node = Node(config("1Gi", write_back, flush="1h"))
    node.deploy_transform()
    body = payload(1, 7)
    times = sorted(node.timed("PUT", f"/system/objects/bench/outputs/w{i}", body) for i in range(30))
    row = {"put_1mib_p50_ms": statistics.median(times)}
    if write_back:
        small = payload(1, 8)[: 256 << 10]
        for i in range(200):
            node.call("PUT", f"/system/objects/bench/outputs/f{i}", small)
        dirty = node.stats()["dirty_objects"]
        start = time.perf_counter()
        status, reply = node.call("POST", "/system/cache/flush", b"")
        seconds = time.perf_counter() - start
        assert status == 200, reply
        flushed = json.loads(reply)["flushed"]
        row.update({"flushed_objects": flushed, "dirty_before": dirty, "flush_seconds": seconds,
                    "flush_objects_per_s": flushed / seconds})
    results["writes"][mode] = row
    node.stop()

# 3. Hit ratio: Zipf(1.0) reads over 96 objects of 1 MiB, with room for about 48.
node = Node(config("48Mi", True))
node.deploy_transform()
count = 96
for i in range(count):
    node.call("PUT", f"/system/objects/bench/inputs/z{i}", payload(1, 1000 + i))
node.call("POST", "/system/cache/flush", b"")
weights = [1 / (rank + 1) for rank in range(count)]
rng = random.Random(1)
keys = rng.choices(range(count), weights=weights, k=int(os.environ.get("ZIPF_CALLS", "600")))
before = node.stats()
for key in keys:
    node.timed("GET", f"/system/objects/bench/inputs/z{key}")
after = node.stats()
hits, misses = after["hits"] - before["hits"], after["misses"] - before["misses"]
results["zipf"] = {"objects": count, "cache": "48Mi", "requests": len(keys), "hits": hits, "misses": misses,
                   "hit_ratio": hits / max(1, hits + misses)}
node.stop()

# 4. Memory prediction: the function's `put` holds its request body, so its memory follows
# its input; 300 calls with bodies of 4 KiB to 4 MiB, then the model the node learnt.
node = Node(config("64Mi", False))
node.deploy_transform()
rng = random.Random(2)
blob = payload(4, 3)
sizes = [4 << 10, 64 << 10, 1 << 20, 4 << 20]
for i in range(int(os.environ.get("MODEL_CALLS", "300"))):
    size = rng.choice(sizes)
    node.timed("POST", f"/function/io/put?c=outputs&key=m{i % 8}", blob[:size], admin=False)
model = next(m for m in node.stats()["memory_models"] if m["function"] == "io")
results["memory_model"] = model
node.stop()

# 5. The floor: a durable write of each size on this disk, measured in the same run.
results["durable_write_floor_ms"] = {size: durable_write_ms(size) for size in SIZES}

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "objects.json"), "w") as f:
    json.dump(results, f, indent=2)

print(f"# objects {results['date']}, store latency {LATENCY}, {CALLS} calls per row")
print("\n| set-up | " + " | ".join(f"{s} MiB p50 (ms)" for s in SIZES) + " |")
print("|---|" + "---:|" * len(SIZES))
for mode, rows in results["transform"].items():
    print(f"| {mode} | " + " | ".join(f"{rows[s]['p50_ms']:.1f}" for s in SIZES) + " |")
base = results["transform"]["no cache, write-through"]
for mode in ("warm cache, write-through", "warm cache, write-back"):
    cut = [100 * (1 - results["transform"][mode][s]["p50_ms"] / base[s]["p50_ms"]) for s in SIZES]
    print(f"| {mode}: shorter by | " + " | ".join(f"{c:.0f} %" for c in cut) + " |")
floor = results["durable_write_floor_ms"]
work = results["transform"]["floor: memory store, no latency"]
print("| a durable write of that size on this disk (write + fdatasync) | " + " | ".join(f"{floor[s]:.1f}" for s in SIZES) + " |")
print("| best write-back could do (the function's work + that write): shorter by at most | "
      + " | ".join(f"{100 * (1 - (work[s]['p50_ms'] + floor[s]) / base[s]['p50_ms']):.0f} %" for s in SIZES) + " |")
w = results["writes"]
print(f"\nPUT 1 MiB p50: write-through {w['write-through']['put_1mib_p50_ms']:.1f} ms, "
      f"write-back {w['write-back']['put_1mib_p50_ms']:.1f} ms")
print(f"flush: {w['write-back']['flushed_objects']} objects of 256 KiB in {w['write-back']['flush_seconds']:.2f} s "
      f"= {w['write-back']['flush_objects_per_s']:.0f} objects/s")
m = results["memory_model"]
print(f"memory model of a function whose memory follows its input ({m['runs']} runs, bodies 4 KiB-4 MiB): "
      f"mature {m['mature']}, {100 * m['coverage']:.0f} % of its last predictions at or above the peak, "
      f"a resident sandbox predicted {m['predicted_bytes'] / MIB:.1f} MiB against {m['booked_bytes'] / MIB:.0f} MiB booked "
      f"({100 * (1 - m['predicted_bytes'] / m['booked_bytes']):.0f} % saved)")
z = results["zipf"]
print(f"Zipf(1.0) over {z['objects']} x 1 MiB, cache {z['cache']}: hit ratio {z['hit_ratio']:.2f} "
      f"({z['hits']} hits, {z['misses']} misses)")
