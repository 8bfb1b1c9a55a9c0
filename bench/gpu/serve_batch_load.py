"""Concurrent POST /predict load on a running `keratrack serve`, for machines without wrk (the lent
GPU machines): registers a user, then THREADS threads each send REQUESTS uploads of IMAGE; prints
requests/s, p50/p99 latency and the server's batch-size quantiles from /metrics.
usage: python3 bench/gpu/serve_batch_load.py BASE_URL IMAGE [THREADS] [REQUESTS]   (standard library only)"""
import json
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

base, image = sys.argv[1], sys.argv[2]
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 16
per = int(sys.argv[4]) if len(sys.argv) > 4 else 20
data = open(image, "rb").read()


def post(path, body, headers):
    req = urllib.request.Request(base + path, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, r.read()


email = f"load{uuid.uuid4().hex[:8]}@example.com"
post("/register", json.dumps({"name": "Load", "email": email, "password": "load-test-12"}).encode(),
     {"Content-Type": "application/json"})
_, tok = post("/token", urllib.parse.urlencode({"username": email, "password": "load-test-12"}).encode(),
              {"Content-Type": "application/x-www-form-urlencoded"})
token = json.loads(tok)["access_token"]
boundary = uuid.uuid4().hex
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
headers = {"Authorization": "Bearer " + token, "Content-Type": "multipart/form-data; boundary=" + boundary}
lat, errors, lock = [], [0], threading.Lock()


def worker():
    for _ in range(per):
        t0 = time.perf_counter()
        try:
            status, _ = post("/predict", body, headers)
            ok = status == 200
        except Exception:
            ok = False
        dt = time.perf_counter() - t0
        with lock:
            lat.append(dt) if ok else errors.__setitem__(0, errors[0] + 1)


t0 = time.perf_counter()
ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
wall = time.perf_counter() - t0
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")
metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
batch = " ".join(l.split("{")[1].replace('"}', "").replace('quantile="', "p") for l in metrics.splitlines()
                 if l.startswith("keratrack_predict_batch_size{"))
print(f"{len(lat)} answered, {errors[0]} failed, {threads} threads: {len(lat) / wall:.1f} req/s, "
      f"p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms; batch size {batch}")
