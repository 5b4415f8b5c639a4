#!/usr/bin/env python3
"""Write-back under kill -9: a node with a write-back bucket (flush interval 1 h, so what is
acknowledged waits in the pending log), four writers putting objects as fast as the node
acknowledges them, SIGKILL at a random moment, restart, wait for the flush, then check that
every acknowledged write (the last acknowledged value of each key, or a later one whose answer
the kill cut off) is in the store; ten rounds on one data directory.

    benchmarks/objects-kill.py BATON [ROUNDS]     (benchmarks/objects-kill.sh runs it)

Standard library only."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

BATON = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
KEYS = 200
base = tempfile.mkdtemp(prefix="baton-kill-")
data = os.path.join(base, "data")
config = os.path.join(base, "baton.toml")
with open(config, "w") as f:
    f.write('[objects]\nwrite_back = ["bench/queue"]\nflush_interval = "1h"\nmax_dirty = "1Gi"\n')


def start():
    ready = os.path.join(base, "ready.json")
    if os.path.exists(ready):
        os.remove(ready)
    env = dict(os.environ, BATON_LISTEN="127.0.0.1:0", BATON_DATA_DIR=data, BATON_CONFIG=config,
               BATON_EXAMPLES="false", BATON_LOG="warn")
    env.pop("BATON_TOKEN", None)
    process = subprocess.Popen([BATON, "up", "--ready-file", ready], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(6000):
        if os.path.exists(ready) and os.path.getsize(ready) > 0:
            break
        time.sleep(0.01)
    url = json.load(open(ready))["http"]
    token = open(os.path.join(data, "admin-token")).read().strip()
    return process, url, token


def put(url, token, key, body):
    request = urllib.request.Request(f"{url}/system/objects/bench/queue/{key}", data=body, method="PUT",
                                     headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def stored(key):
    try:
        with open(os.path.join(data, "objects", "bench", "queue", key), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def number(body):
    return int(body.split(b" ")[1]) if body else -1


rng = random.Random(5)
counter = [0]
total_acknowledged = 0
lost_total = 0
print("| round | writes acknowledged | keys | keys whose last write was only in the pending log at the kill | lost |")
print("|---:|---:|---:|---:|---:|")
for round_ in range(1, ROUNDS + 1):
    process, url, token = start()
    if round_ == 1:
        req = urllib.request.Request(f"{url}/system/objects/bench/queue", data=b"", method="PUT",
                                     headers={"Authorization": "Bearer " + token})
        urllib.request.urlopen(req, timeout=30)
    acknowledged = {}
    writes = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def writer(seed):
        r = random.Random(seed)
        while not stop.is_set():
            with lock:
                counter[0] += 1
                n = counter[0]
            # Each writer its own keys: one key's writes are then ordered (two clients racing
            # on one key have no order to check).
            key = f"w{seed % 10}-k{r.randrange(KEYS // 4)}"
            body = f"value {n} ".encode() + r.randbytes(r.choice([100, 10_000, 200_000]))
            try:
                put(url, token, key, body)
            except (urllib.error.URLError, ConnectionError, OSError):
                return
            with lock:
                writes[0] += 1
                if number(acknowledged.get(key)) < n:
                    acknowledged[key] = body

    threads = [threading.Thread(target=writer, args=(round_ * 10 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(rng.uniform(0.5, 2.0))
    process.send_signal(signal.SIGKILL)
    process.wait()
    stop.set()
    for t in threads:
        t.join()
    pending_at_kill = sum(1 for k, v in acknowledged.items() if stored(k) is None or number(stored(k)) < number(v))
    process, url, token = start()
    deadline = time.time() + 60
    lost = acknowledged
    while time.time() < deadline:
        lost = {k: v for k, v in acknowledged.items() if number(stored(k)) < number(v)}
        if not lost:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    process.wait()
    total_acknowledged += len(acknowledged)
    lost_total += len(lost)
    print(f"| {round_} | {writes[0]} | {len(acknowledged)} | {pending_at_kill} | {len(lost)} |")
print(f"\n{ROUNDS} kills: {lost_total} acknowledged writes lost "
      f"(of the last acknowledged value of {total_acknowledged} keys, summed over rounds)")
shutil.rmtree(base, ignore_errors=True)
sys.exit(1 if lost_total else 0)
