"""Benchmark: `vramscope serve` under load — throughput, latency tails, memory, idle connections.

Run:  python bench/load.py [--repeats 3] [--requests 3000] [--write docs/reliability.md]

Starts `vramscope serve --port 0` on 127.0.0.1 (a subprocess; killed at the end) and drives it from this process
with asyncio clients on raw sockets, each a keep-alive HTTP/1.1 connection sending its next request when the last
answer is in (closed loop). The requests rotate through five estimate queries (inference, LoRA with a GPU
verdict, vLLM, llama.cpp GGUF, a MoE model). Rows:

* 1, 8, 32, 64 concurrent clients: requests/s, p50, p99, errors (anything but a complete 200) — medians of
  ``--repeats`` runs;
* 64 clients, a new connection per request (what overflowed the old backlog of 5);
* RSS of the server before and after 10,000 more requests (32 clients), and after another 10,000;
* 500 idle connections (never sending a request): whether the server still answers meanwhile, and how many it
  has closed once its idle timeout (``--idle-timeout``, default 5 s) has passed; the same for 500 connections
  left idle after one request.

The clients share the machine with the server (2 cores here): the numbers are what one box does end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from _docs import replace_section  # noqa: E402

MIXES = {
    # the JSON API: five estimate queries
    "api": [
        "/api/estimate?model=llama-3-8b",
        "/api/estimate?model=llama-3-8b&task=finetune&method=lora&gpu=rtx-4090",
        "/api/estimate?model=qwen2.5-7b&engine=vllm&gpu=rtx-4090",
        "/api/estimate?model=llama-3-8b&engine=llama.cpp&quant=Q4_K_M&gpu=rtx-4090",
        "/api/estimate?model=mixtral-8x7b&seq=8192&batch=4",
    ],
    # the web page: whole pages and the script's /api/v1/report answers (estimate, fit with suggestions, both
    # curves, all drawn as SVG), and the catalogs' type-ahead
    "page": [
        "/?model=llama-3-8b&gpu=rtx-4090",
        "/api/v1/report?model=qwen2.5-7b&task=finetune&method=lora&gpu=rtx-4090",
        "/api/v1/report?model=llama-3-70b&gpu=rtx-4090,h100-sxm",
        "/?model=qwen2.5-7b&engine=vllm&seq=16384&gpu=rtx-4090&lang=zh",
        "/api/v1/models?q=qwen",
    ],
}
PATHS = MIXES["api"]
SECTIONS = {"api": "## Server under load", "page": "## Web page under load"}


def start_server(extra: list[str], threads: int | None) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    if threads is None:
        cmd = [sys.executable, "-m", "vramscope", "serve", "--host", "127.0.0.1", "--port", "0", *extra]
    else:  # an in-process comparison of the thread pool size (0: estimates on the event loop)
        cmd = [sys.executable, "-c", "import sys; from vramscope.serve import Options, serve; "
               f"serve('127.0.0.1', 0, Options(threads={threads}, idle_timeout=float(sys.argv[1])))",
               extra[extra.index("--idle-timeout") + 1] if "--idle-timeout" in extra else "5"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    m = re.search(r":(\d+)/", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, int(m.group(1))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, dict]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, body, headers


def request(path: str, close: bool = False) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: en\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n").encode()


async def client(port: int, n: int, offset: int, lat: list, errors: list, keep_alive: bool) -> None:
    reader = writer = None
    for i in range(n):
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request(PATHS[(offset + i) % len(PATHS)], close=not keep_alive))
            status, body, headers = await asyncio.wait_for(read_response(reader), 30)
            if status != 200 or not body.startswith((b"{", b"<!doctype html>")):  # JSON, or the page
                errors.append(f"HTTP {status}")
            if not keep_alive or headers.get("connection") == "close":
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            errors.append(type(e).__name__)
            if writer is not None:
                writer.close()
            writer = None
        lat.append(time.perf_counter() - t0)
    if writer is not None:
        writer.close()


SERVER_PID = 0


async def level(port: int, clients: int, total: int, keep_alive: bool = True) -> dict:
    lat: list[float] = []
    errors: list[str] = []
    per = max(10, total // clients)
    cpu0, t0 = cpu_s(SERVER_PID), time.perf_counter()
    await asyncio.gather(*(client(port, per, i, lat, errors, keep_alive) for i in range(clients)))
    wall, cpu = time.perf_counter() - t0, cpu_s(SERVER_PID) - cpu0
    lat.sort()
    return {"clients": clients, "requests": len(lat), "rps": len(lat) / wall,
            "server_cpu_ms_per_request": 1000 * cpu / len(lat), "p50_ms": 1000 * lat[len(lat) // 2],
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))], "max_ms": 1000 * lat[-1],
            "errors": len(errors), "error_kinds": sorted(set(errors))}


async def idle_check(port: int, count: int, wait: float, after_request: bool) -> dict:
    conns = []
    for _ in range(count):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        if after_request:
            w.write(request(PATHS[0]))
            await read_response(r)
        conns.append((r, w))
    # the server still answers other clients while they sit there
    probe = await level(port, 8, 200)
    await asyncio.sleep(wait)

    async def closed(r: asyncio.StreamReader) -> bool:
        try:
            data = await asyncio.wait_for(r.read(4096), 0.5)
        except asyncio.TimeoutError:
            return False
        except OSError:
            return True
        return data == b"" or data.startswith(b"HTTP/1.1 408")

    results = await asyncio.gather(*(closed(r) for r, _ in conns))
    for _, w in conns:
        w.close()
    after = await level(port, 8, 200)
    return {"connections": count, "after_request": after_request, "closed_by_server": sum(results),
            "waited_s": wait, "probe_while_idle": probe, "probe_after": after}


async def run(args: argparse.Namespace) -> dict:
    load_before = os.getloadavg()[0]
    extra = ["--idle-timeout", str(args.idle_timeout)]
    global SERVER_PID
    proc, port = start_server(extra, args.threads)
    SERVER_PID = proc.pid
    try:
        await level(port, 8, 400)  # warm up
        levels: dict[int, list[dict]] = {c: [] for c in (1, 8, 32, 64)}
        fresh: list[dict] = []
        for _ in range(args.repeats):
            for c in levels:
                levels[c].append(await level(port, c, args.requests if c > 1 else args.requests // 3))
            fresh.append(await level(port, 64, args.requests, keep_alive=False))
        rss = [rss_mib(proc.pid)]
        for _ in range(2):
            await level(port, 32, args.rss_requests)
            rss.append(rss_mib(proc.pid))
        idle = [await idle_check(port, 500, args.idle_timeout + 2.5, after) for after in (False, True)]
        alive = proc.poll() is None
    finally:
        proc.kill()
        proc.wait()

    def med(rows: list[dict]) -> dict:
        out = {k: statistics.median(r[k] for r in rows)
               for k in ("rps", "p50_ms", "p99_ms", "max_ms", "server_cpu_ms_per_request")}
        return {**out, "errors": sum(r["errors"] for r in rows), "requests": sum(r["requests"] for r in rows),
                "error_kinds": sorted({e for r in rows for e in r["error_kinds"]})}

    return {"levels": {c: med(rows) for c, rows in levels.items()}, "connection_per_request_64": med(fresh),
            "raw": {"levels": levels, "connection_per_request_64": fresh}, "rss_mib": rss, "idle": idle,
            "server_alive_at_end": alive, "loadavg_1min": [load_before, os.getloadavg()[0]]}


def table(res: dict, args: argparse.Namespace) -> str:
    what = ("five estimate queries in rotation" if args.mix == "api" else
            "two whole pages, two `/api/v1/report` answers (what the page's script fetches: estimate, fit with "
            "suggestions and both curves, drawn as SVG) and a `/api/v1/models?q=` type-ahead, in rotation")
    lines = [
        SECTIONS[args.mix],
        "",
        f"Measured {datetime.date.today().isoformat()} by `python bench/load.py --mix {args.mix} --repeats "
        f"{args.repeats} --requests {args.requests} --rss-requests {args.rss_requests}` on {platform.machine()} "
        f"({os.cpu_count()} cores), Python {platform.python_version()}: "
        "`vramscope serve` (Starlette on uvicorn, h11) on 127.0.0.1, driven by asyncio clients in another process "
        "on the same machine, each a keep-alive HTTP/1.1 connection sending its next request when the answer is in; "
        f"{what}. Medians of {args.repeats} runs; errors summed over all runs "
        "(an error is anything but a complete 200). The machine's 1-minute load average was "
        f"{res['loadavg_1min'][0]:.1f} before and {res['loadavg_1min'][1]:.1f} after (other work shares it).",
        "",
        "| clients | requests/s | p50 | p99 | errors | server CPU per request |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for c, r in res["levels"].items():
        lines.append(f"| {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
                     f"{r['errors']} / {r['requests']} | {r['server_cpu_ms_per_request']:.2f} ms |")
    f = res["connection_per_request_64"]
    lines.append(f"| 64, new connection per request | {f['rps']:.0f} | {f['p50_ms']:.1f} ms | {f['p99_ms']:.1f} ms | "
                 f"{f['errors']} / {f['requests']} | {f['server_cpu_ms_per_request']:.2f} ms |")
    rss = res["rss_mib"]
    n = f"{args.rss_requests:,}"
    lines += ["", f"Server memory (RSS): {rss[0]:.1f} MiB after the runs above, {rss[1]:.1f} MiB after {n} more "
                  f"requests, {rss[2]:.1f} MiB after another {n}.", ""]
    lines += ["| 500 idle connections | closed by the server after "
              f"{args.idle_timeout:g} s + 2.5 s | meanwhile: 8 clients, p99 | errors | afterwards: errors |",
              "|---|---:|---:|---:|---:|"]
    for i in res["idle"]:
        kind = "after one request (keep-alive)" if i["after_request"] else "opened, no request sent"
        lines.append(f"| {kind} | {i['closed_by_server']} / {i['connections']} | "
                     f"{i['probe_while_idle']['p99_ms']:.1f} ms | {i['probe_while_idle']['errors']} | "
                     f"{i['probe_after']['errors']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--requests", type=int, default=3000, help="requests per concurrency level and run")
    ap.add_argument("--idle-timeout", type=float, default=5)
    ap.add_argument("--threads", type=int, help="compare thread pool sizes (0: inline); default: the CLI")
    ap.add_argument("--mix", choices=tuple(MIXES), default="api", help="the requests: the JSON API or the page")
    ap.add_argument("--rss-requests", type=int, default=10_000, help="requests of each of the two memory runs")
    ap.add_argument("--write", help="markdown file whose section (by --mix) is replaced")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "load"), help="results path without suffix")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    global PATHS
    PATHS = MIXES[args.mix]
    res = asyncio.run(run(args))
    text = table(res, args)
    print(text)
    if args.threads is None:
        out = args.out + ("" if args.mix == "api" else "-" + args.mix)
        Path(out + ".json").write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        Path(out + ".md").write_text(text, encoding="utf-8")
    if args.write:
        replace_section(args.write, SECTIONS[args.mix], text)


if __name__ == "__main__":
    main()
