"""Throughput harness: fastgw against nginx, both proxying to one nginx static upstream.

Run from the repository root::

    .venv/bin/python bench/run.py                      # 10 s runs, 3 repeats, 64 and 256 connections
    .venv/bin/python bench/run.py --quick              # 2 s runs, 1 repeat: a smoke check
    .venv/bin/python bench/run.py --self-test          # nginx rows only, 1 s, checks the harness
    .venv/bin/python bench/run.py --only nginx,fastgw --connections 64 --json out.json

Every process listens on 127.0.0.1. The proxies are pinned to one core and wrk plus the
static upstream to the other, so "RPS per core" compares the proxies' own CPU cost.
Rows are data (``SCENARIOS``); each row's ratios are against its ``baseline`` row.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAT_PATH = "/v1/chat/completions"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT_S = 30.0
# A run with more failed requests than this share is not a throughput figure.
MAX_ERROR_SHARE = 0.001


# --------------------------------------------------------------------------- payloads


def chat_request_body(size: int = 337) -> bytes:
    """An OpenAI chat-completion request padded to exactly ``size`` bytes."""
    request = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": ""},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
        "stream": False,
    }
    missing = size - len(orjson.dumps(request))
    if missing < 0:
        raise ValueError(f"a chat request cannot be as small as {size} bytes")
    sentence = "Summarise the benefits of keep-alive connections for a reverse proxy. "
    request["messages"][1]["content"] = (sentence * (missing // len(sentence) + 1))[:missing]
    return orjson.dumps(request)


CHAT_BODY = chat_request_body()
CHAT_RESPONSE = orjson.dumps(
    {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion",
        "created": 1764201600,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Keep-alive saves a handshake."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 61, "completion_tokens": 7, "total_tokens": 68},
    }
)


# --------------------------------------------------------------------------- scenarios


def plain_proxy_config(upstream_url: str) -> dict:
    """Kong declarative config: one service, one prefix route, no plugins."""
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": "llm-upstream",
                "url": upstream_url,
                # NOTE: strip_path defaults to true in Kong; the upstream wants the full path.
                "routes": [{"name": "chat", "paths": ["/v1/"], "strip_path": False}],
            }
        ],
    }


def key_auth_prometheus_config(upstream_url: str) -> dict:
    config = plain_proxy_config(upstream_url)
    config["services"][0]["plugins"] = [{"name": "key-auth", "config": {"key_names": ["apikey"]}}]
    config["consumers"] = [{"username": "bench", "keyauth_credentials": [{"key": "bench-key"}]}]
    config["plugins"] = [{"name": "prometheus"}]
    return config


def ai_proxy_config(upstream_url: str) -> dict:
    config = plain_proxy_config(upstream_url)
    config["services"][0]["plugins"] = [
        {
            "name": "ai-proxy",
            "config": {
                "route_type": "llm/v1/chat",
                "auth": {"header_name": "Authorization", "header_value": "Bearer sk-bench"},
                "model": {
                    "provider": "openai",
                    "name": "gpt-4o-mini",
                    "options": {"upstream_url": upstream_url + CHAT_PATH},
                },
            },
        }
    ]
    return config


BENCH_UPSTREAM = "bench-upstream"


def hashed_upstream_config(*upstream_urls: str) -> dict:
    """The plain route, with its service balanced over one target per URL by consistent
    hashing on a header (as Kong's ``hash_on: header``)."""
    config = plain_proxy_config(f"http://{BENCH_UPSTREAM}")
    config["upstreams"] = [
        {
            "name": BENCH_UPSTREAM,
            "algorithm": "consistent-hashing",
            "hash_on": "header",
            "hash_on_header": "x-user-id",
            "targets": [{"target": url.removeprefix("http://")} for url in upstream_urls],
        }
    ]
    return config


@dataclass(frozen=True)
class Scenario:
    """One row of the table: which server proxies, how it is configured, what wrk sends."""

    name: str
    server: str  # a key of LAUNCHERS
    description: str
    # the static upstream's URLs (``upstream_targets`` of them) -> declarative config
    gateway_config: Callable[..., dict] | None = None
    path: str = CHAT_PATH
    body: bytes = CHAT_BODY
    headers: Mapping[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    baseline: str | None = None  # name of the row this one's ratios are against
    default: bool = True  # run without --only
    upstream_targets: int = 1  # listeners of the static upstream the config balances over


SCENARIOS: list[Scenario] = [
    Scenario("nginx", "nginx", "nginx 1 worker, upstream keepalive --nginx-keepalive"),
    Scenario("fastgw", "fastgw", "fastgw 1 worker, no plugins", plain_proxy_config, baseline="nginx"),
    # One header value, so every request hashes to the same target: the row prices the
    # balancer (key extraction, ring lookup, per-target pools), not a spread of load.
    Scenario(
        "fastgw-hash-3-targets",
        "fastgw",
        "fastgw, consistent hashing on a header over 3 targets",
        hashed_upstream_config,
        headers={"Content-Type": "application/json", "X-User-Id": "user-42"},
        baseline="fastgw",
        upstream_targets=3,
    ),
    # Opt-in rows (--only) until their plugins land; each is priced against plain fastgw.
    Scenario(
        "fastgw-key-auth-prometheus",
        "fastgw",
        "fastgw with key-auth and prometheus",
        key_auth_prometheus_config,
        headers={"Content-Type": "application/json", "apikey": "bench-key"},
        baseline="fastgw",
        default=False,
    ),
    Scenario(
        "fastgw-ai-proxy",
        "fastgw",
        "fastgw with ai-proxy (openai) to the static upstream",
        ai_proxy_config,
        headers={"Content-Type": "application/json", "Authorization": "Bearer client-key"},
        baseline="fastgw",
        default=False,
    ),
]


# --------------------------------------------------------------------------- processes


class StartupError(RuntimeError):
    """A server did not come up: ``reason`` says why, ``log`` quotes the end of its logs."""

    def __init__(self, reason: str, log: str = "") -> None:
        super().__init__(reason + (f"\n{log}" if log else ""))
        self.reason = reason
        self.log = log

    def summary(self) -> str:
        """One line for the table: the reason and the log's last line."""
        last_line = self.log.strip().splitlines()[-1][:120] if self.log.strip() else ""
        return f"{self.reason} ({last_line})" if last_line else self.reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pinned(command: list[str], cpu: int | None) -> list[str]:
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    log_path: Path
    extra_ports: tuple[int, ...] = ()  # further listeners of the same server

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.port, *self.extra_ports)

    @classmethod
    def spawn(cls, name: str, command: list[str], port: int, workdir: Path, **popen) -> Server:
        log_path = workdir / f"{name}.log"
        with log_path.open("wb") as log:
            # Its own session, so a terminal's Ctrl-C reaches only us and we stop the group.
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        return cls(name, process, port, log_path)

    def stop(self) -> None:
        stop_process_group(self.process)

    def failure(self, reason: str, extra_log: Path | None = None) -> StartupError:
        logs = "\n".join(filter(None, (tail(self.log_path), extra_log and tail(extra_log))))
        return StartupError(f"{self.name}: {reason}", logs)


def stop_process_group(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    # SIGKILL the group even after the leader exited: forked workers may outlive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)


def probe(port: int, scenario: Scenario) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", scenario.path, body=scenario.body, headers=dict(scenario.headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_serving(server: Server, scenario: Scenario, extra_log: Path | None = None) -> None:
    """Poll with the scenario's own request until it gets a chat completion back."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise server.failure(f"exited with code {server.process.returncode}", extra_log)
        try:
            status, body = probe(server.port, scenario)
        except OSError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200 and b'"choices"' in body:
                return
            last = f"HTTP {status}: {body[:200]!r}"
        time.sleep(0.2)
    raise server.failure(f"not serving {scenario.path} after {STARTUP_TIMEOUT_S:.0f} s ({last})", extra_log)


def process_tree_cpu_seconds(root_pid: int) -> float:
    """utime+stime (and reaped children's) of ``root_pid`` and every live descendant."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, cpu ticks)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue  # exited while we listed
        # Fields after the ")" that closes comm; comm itself may contain spaces.
        fields = raw[raw.rindex(b")") + 2 :].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        stats[int(entry)] = (ppid, utime + stime + cutime + cstime)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    ticks, pending = 0, [root_pid]
    while pending:
        pid = pending.pop()
        if pid in stats:
            ticks += stats[pid][1]
            pending.extend(children.get(pid, ()))
    return ticks / CLOCK_TICKS_PER_S


# --------------------------------------------------------------------------- nginx


def find_tool(name: str, package: str) -> str:
    """Path of ``name``; installs the Debian ``package`` with apt-get when it is missing."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit(f"{name} is missing: install the Debian package {package!r}")
    print(f"installing {package} with apt-get ...", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        sys.exit(f"{package} installed but {name} is still not on PATH")
    return found


def nginx_config(name: str, workdir: Path, server_block: str, http_extra: str = "") -> str:
    """A whole nginx.conf whose pid, logs and temp files all stay inside ``workdir``."""
    temp_paths = "\n".join(
        f"    {kind}_temp_path {workdir}/{name}-{kind}-temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
worker_processes 1;
pid {workdir}/{name}.pid;
error_log {workdir}/{name}-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    # wrk's and the proxies' connections should live for the whole run; the default (1000)
    # would add a reconnect every 1000 requests to every contender alike.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
{temp_paths}
{http_extra}
    server {{
{server_block}
    }}
}}
"""


def start_nginx(name: str, conf: str, port: int, workdir: Path, cpu: int | None) -> Server:
    conf_path = workdir / f"{name}.conf"
    conf_path.write_text(conf)
    nginx = find_tool("nginx", "nginx")
    # -e: without it nginx opens the packaged error log before it reads our config.
    command = [nginx, "-p", str(workdir), "-e", str(workdir / f"{name}-error.log"),
               "-c", str(conf_path), "-g", "daemon off;"]
    return Server.spawn(name, pinned(command, cpu), port, workdir)


# The static upstream listens on this many ports: the targets of multi-target rows.
STATIC_UPSTREAM_LISTENERS = 3


def start_static_upstream(workdir: Path, cpu: int | None) -> Server:
    text = CHAT_RESPONSE.decode()
    # The answer sits inside an nginx single-quoted string, where these would be special.
    assert not set(text) & set("'$\\"), "canned answer must not need nginx escaping"
    ports = [free_port() for _ in range(STATIC_UPSTREAM_LISTENERS)]
    listens = "\n".join(f"        listen 127.0.0.1:{port};" for port in ports)
    server_block = f"""\
{listens}
        location = {CHAT_PATH} {{
            default_type application/json;
            return 200 '{text}';
        }}"""
    conf = nginx_config("static-upstream", workdir, server_block)
    server = start_nginx("static-upstream", conf, ports[0], workdir, cpu)
    server.extra_ports = tuple(ports[1:])
    return server


def launch_nginx_proxy(scenario: Scenario, upstream_ports: tuple[int, ...], workdir: Path,
                       args: argparse.Namespace) -> Server:
    port = free_port()
    upstream = f"""\
    upstream static_llm {{
        server 127.0.0.1:{upstream_ports[0]};
        keepalive {args.nginx_keepalive};
        keepalive_requests 1000000;
    }}"""
    server_block = f"""\
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://static_llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""
    conf = nginx_config(scenario.name, workdir, server_block, http_extra=upstream)
    return start_nginx(scenario.name, conf, port, workdir, args.proxy_cpu)


def launch_fastgw(scenario: Scenario, upstream_ports: tuple[int, ...], workdir: Path,
                  args: argparse.Namespace) -> Server:
    if scenario.gateway_config is None:
        raise StartupError(f"{scenario.name}: a fastgw row needs a gateway_config")
    if scenario.upstream_targets > len(upstream_ports):
        raise StartupError(f"{scenario.name}: needs {scenario.upstream_targets} upstream "
                           f"listeners, the static upstream has {len(upstream_ports)}")
    config_path = workdir / f"{scenario.name}.yaml"
    urls = [f"http://127.0.0.1:{port}" for port in upstream_ports[:scenario.upstream_targets]]
    config = scenario.gateway_config(*urls)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port, admin_port = free_port(), free_port()
    command = [sys.executable, "-m", "fastgw", "run", "-c", str(config_path), "--workers", "1",
               "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}"]
    return Server.spawn(scenario.name, pinned(command, args.proxy_cpu), port, workdir,
                        cwd=REPO_ROOT, env=fastgw_env())


def fastgw_env() -> dict[str, str]:
    # The checkout's sources (and any in-place compiled core) win over an installed copy.
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": python_path}


# A launcher starts the server for a row; a LiteLLM row adds its own launcher here.
LAUNCHERS: dict[str, Callable[[Scenario, tuple[int, ...], Path, argparse.Namespace], Server]] = {
    "nginx": launch_nginx_proxy,
    "fastgw": launch_fastgw,
}


# --------------------------------------------------------------------------- wrk


_TIME_UNITS_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_s(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _TIME_UNITS_S[match[2]]


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers plus socket errors


def parse_wrk_output(text: str) -> WrkResult:
    """Read totals and the 50%/99% latency lines printed by ``wrk --latency``."""
    totals = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", text, re.M)
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", text, re.M)
    p50 = re.search(r"^\s*50%\s+([\d.]+\w+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+([\d.]+\w+)", text, re.M)
    if not (totals and rps and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{text}")
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text):
        errors += int(non_2xx[1])
    if socket_errors := re.search(r"Socket errors:(.*)$", text, re.M):
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    return WrkResult(
        requests=int(totals[1]),
        duration_s=parse_duration_s(totals[2]),
        rps=float(rps[1]),
        p50_ms=parse_duration_s(p50[1]) * 1e3,
        p99_ms=parse_duration_s(p99[1]) * 1e3,
        errors=errors,
    )


def write_wrk_script(scenario: Scenario, workdir: Path) -> Path:
    """A lua script that makes wrk send the scenario's POST on every request."""
    body_path = workdir / f"{scenario.name}-body.json"
    body_path.write_bytes(scenario.body)
    # Lua string escapes via %q keep header values safe whatever they contain.
    header_lines = "\n".join(
        f'wrk.headers[{lua_string(key)}] = {lua_string(value)}' for key, value in scenario.headers.items()
    )
    script = f"""\
-- generated by bench/run.py; only static fields, so wrk builds the request once
wrk.method = "POST"
local body_file = assert(io.open({lua_string(str(body_path))}, "rb"))
wrk.body = body_file:read("*a")
body_file:close()
{header_lines}
"""
    script_path = workdir / f"{scenario.name}.lua"
    script_path.write_text(script)
    return script_path


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def run_wrk(url: str, script: Path, connections: int, threads: int, duration_s: int,
            cpu: int | None) -> WrkResult:
    wrk = find_tool("wrk", "wrk")
    command = pinned([wrk, f"-t{threads}", f"-c{connections}", f"-d{duration_s}s",
                      "--latency", "-s", str(script), url], cpu)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=duration_s + 30)
    finally:
        stop_process_group(process)
    text = output.decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n{text}")
    return parse_wrk_output(text)


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_cores: float  # proxy CPU seconds per wall second
    rps_per_core: float  # requests per proxy CPU second
    requests: int
    errors: int
    wall_s: float


def measure(server: Server, script: Path, connections: int, args: argparse.Namespace) -> Measurement:
    url = f"http://127.0.0.1:{server.port}{CHAT_PATH}"
    if args.warmup > 0:
        run_wrk(url, script, connections, args.threads, args.warmup, args.load_cpu)
    cpu_before, wall_before = process_tree_cpu_seconds(server.process.pid), time.monotonic()
    result = run_wrk(url, script, connections, args.threads, args.duration, args.load_cpu)
    cpu_s = process_tree_cpu_seconds(server.process.pid) - cpu_before
    wall_s = time.monotonic() - wall_before
    if result.errors > MAX_ERROR_SHARE * max(result.requests, 1):
        raise RuntimeError(f"{result.errors} failed requests out of {result.requests}")
    cpu_cores = cpu_s / wall_s
    return Measurement(
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        cpu_cores=cpu_cores,
        # = RPS / (cpu_s / wall_s) with wrk's own clock; a zero reading means under one tick.
        rps_per_core=result.requests / cpu_s if cpu_s > 0 else float("nan"),
        requests=result.requests,
        errors=result.errors,
        wall_s=wall_s,
    )


@dataclass
class Row:
    scenario: str
    connections: int
    baseline: str | None
    runs: list[Measurement] = field(default_factory=list)
    error: str | None = None

    def median(self, metric: str) -> float | None:
        values = [getattr(run, metric) for run in self.runs]
        return statistics.median(values) if values and not self.error else None


RATIO_METRICS = ("rps", "rps_per_core", "p50_ms", "p99_ms")


def ratios(row: Row, rows: dict[tuple[str, int], Row]) -> dict[str, float] | None:
    base = rows.get((row.baseline, row.connections)) if row.baseline else None
    if base is None:
        return None
    pairs = {metric: (row.median(metric), base.median(metric)) for metric in RATIO_METRICS}
    if any(mine is None or theirs in (None, 0) for mine, theirs in pairs.values()):
        return None
    return {metric: mine / theirs for metric, (mine, theirs) in pairs.items()}


@contextlib.contextmanager
def running_servers(scenarios: list[Scenario], workdir: Path, args: argparse.Namespace
                    ) -> Iterator[dict[str, Server | StartupError]]:
    """Start the static upstream and every row's server; stop all of them on the way out."""
    with contextlib.ExitStack() as stack:
        upstream = start_static_upstream(workdir, args.load_cpu)
        stack.callback(upstream.stop)
        upstream_probe = Scenario("static-upstream", "nginx", "probe")
        wait_until_serving(upstream, upstream_probe, workdir / "static-upstream-error.log")
        servers: dict[str, Server | StartupError] = {}
        for scenario in scenarios:
            try:
                server = LAUNCHERS[scenario.server](scenario, upstream.ports, workdir, args)
                stack.callback(server.stop)
                wait_until_serving(server, scenario, workdir / f"{scenario.name}-error.log")
                servers[scenario.name] = server
            except StartupError as exc:
                servers[scenario.name] = exc
                print(f"FAILED to start {exc}", file=sys.stderr)
        yield servers


def run_benchmark(scenarios: list[Scenario], args: argparse.Namespace) -> list[Row]:
    """Alternate the rows (a, b, a, b, ...) at each connection count; keep every run."""
    rows = {(s.name, c): Row(s.name, c, s.baseline) for c in args.connections for s in scenarios}
    total = len(rows) * args.repeat
    estimate = total * (args.duration + args.warmup + 0.5)
    print(f"{total} runs, about {estimate / 60:.1f} min", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="fastgw-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx workers drop root and must reach their temp dirs
        scripts = {s.name: write_wrk_script(s, workdir) for s in scenarios}
        with running_servers(scenarios, workdir, args) as servers:
            done = 0
            for connections in args.connections:
                for _ in range(args.repeat):
                    for scenario in scenarios:
                        done += 1
                        row = rows[(scenario.name, connections)]
                        label = f"[{done}/{total}] {scenario.name} c={connections}"
                        record_run(row, servers[scenario.name], scripts[scenario.name], args, label)
    return list(rows.values())


def record_run(row: Row, server: Server | StartupError, script: Path, args: argparse.Namespace,
               label: str) -> None:
    """Measure one run into ``row``; a failure marks the row and skips its later runs."""
    if isinstance(server, StartupError):
        row.error = f"did not start: {server.summary()}"
        return
    if row.error:
        return
    try:
        run = measure(server, script, row.connections, args)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        row.error = str(exc).splitlines()[0]
        print(f"{label}: FAILED {exc}", file=sys.stderr)
        return
    row.runs.append(run)
    print(f"{label}: {run.rps:,.0f} rps, p50 {run.p50_ms:.3f} ms, p99 {run.p99_ms:.3f} ms, "
          f"{run.cpu_cores:.2f} cores, {run.rps_per_core:,.0f} rps/core", file=sys.stderr)


# --------------------------------------------------------------------------- report


def format_table(rows: list[Row]) -> str:
    by_key = {(row.scenario, row.connections): row for row in rows}
    header = ("row", "conns", "RPS", "p50 ms", "p99 ms", "cores", "RPS/core", "spread",
              "vs", "RPS x", "RPS/core x", "p50 x", "p99 x")
    lines = [header]
    for row in rows:
        if row.error or not row.runs:
            lines.append((row.scenario, str(row.connections), f"FAILED: {row.error or 'no runs'}"))
            continue
        rps_values = [run.rps for run in row.runs]
        spread = (max(rps_values) - min(rps_values)) / statistics.median(rps_values)
        cells = [row.scenario, str(row.connections), f"{row.median('rps'):,.0f}",
                 f"{row.median('p50_ms'):.3f}", f"{row.median('p99_ms'):.3f}",
                 f"{row.median('cpu_cores'):.2f}", f"{row.median('rps_per_core'):,.0f}",
                 f"{spread:.0%}"]
        row_ratios = ratios(row, by_key)
        if row_ratios:
            cells += [row.baseline or ""] + [f"{row_ratios[m]:.2f}" for m in RATIO_METRICS]
        lines.append(tuple(cells))
    # A failed row's message runs across the measured columns, so it sets only the first two.
    widths = [max(len(line[i]) for line in lines if i < len(line) and (i < 2 or len(line) != 3))
              for i in range(len(header))]

    def render(line: tuple[str, ...]) -> str:
        if len(line) == 3:  # a failed row: its message runs across the columns
            return f"{line[0]:<{widths[0]}}  {line[1]:>{widths[1]}}  {line[2]}"
        return "  ".join(f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
                         for i, (cell, w) in enumerate(zip(line, widths, strict=False)))

    return "\n".join(render(line) for line in lines)


def command_output(command: list[str]) -> str:
    """What a version command prints (nginx -v writes to stderr, wrk exits 1), or the error."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=20,
                                cwd=REPO_ROOT, env=fastgw_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: {exc}"
    return (result.stdout + result.stderr).strip()


def report_json(rows: list[Row], args: argparse.Namespace) -> bytes:
    by_key = {(row.scenario, row.connections): row for row in rows}
    return orjson.dumps(
        {
            "settings": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
                "threads": args.threads,
                "nginx_keepalive": args.nginx_keepalive,
                "connections": args.connections,
                "proxy_cpu": args.proxy_cpu,
                "load_cpu": args.load_cpu,
                "body_bytes": len(CHAT_BODY),
                "response_bytes": len(CHAT_RESPONSE),
            },
            "machine": {
                "kernel": platform.release(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "nginx": command_output([find_tool("nginx", "nginx"), "-v"]),
                "wrk": command_output([find_tool("wrk", "wrk"), "--version"]).splitlines()[0],
                # Says whether the compiled core is loaded: without it fastgw rows mean little.
                "fastgw": command_output([sys.executable, "-m", "fastgw", "version"]),
            },
            "rows": [
                {
                    "scenario": row.scenario,
                    "connections": row.connections,
                    "baseline": row.baseline,
                    "error": row.error,
                    "median": {m: row.median(m) for m in (*RATIO_METRICS, "cpu_cores")},
                    "ratios": ratios(row, by_key),
                    "runs": [asdict(run) for run in row.runs],
                }
                for row in rows
            ],
        },
        option=orjson.OPT_INDENT_2,
    )


# --------------------------------------------------------------------------- main


SAMPLE_WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:8080/v1/chat/completions
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   850.12us  120.50us   5.10ms   91.00%
    Req/Sec    75.20k     2.10k   78.00k    80.00%
  Latency Distribution
     50%  812.00us
     75%  900.00us
     90%    1.02ms
     99%    1.50ms
  75123 requests in 1.00s, 33.12MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:  75100.55
Transfer/sec:     33.10MB
"""


def self_test(args: argparse.Namespace) -> int:
    """Check the parsers, then measure the nginx rows for 1 s: exit 0 when all is sane."""
    parsed = parse_wrk_output(SAMPLE_WRK_OUTPUT)
    expected = WrkResult(requests=75123, duration_s=1.0, rps=75100.55, p50_ms=0.812, p99_ms=1.5, errors=6)
    if parsed != expected:
        print(f"self-test: wrk parser gave {parsed}, expected {expected}", file=sys.stderr)
        return 1
    if len(CHAT_BODY) != 337 or not 250 <= len(CHAT_RESPONSE) <= 350:
        print("self-test: payload sizes drifted", file=sys.stderr)
        return 1
    args.duration, args.warmup, args.repeat, args.connections = 1, 0, 1, [64]
    rows = run_benchmark([s for s in SCENARIOS if s.server == "nginx"], args)
    print(format_table(rows))
    problems = [f"{row.scenario}: {row.error}" for row in rows if row.error]
    for row in rows:
        if not row.error and not (row.median("rps") > 1000 and row.median("cpu_cores") > 0.05):
            problems.append(f"{row.scenario}: implausible figures {row.runs}")
    for problem in problems:
        print(f"self-test: {problem}", file=sys.stderr)
    print("self-test: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


def select_scenarios(only: str | None) -> list[Scenario]:
    if not only:
        return [s for s in SCENARIOS if s.default]
    known = {s.name: s for s in SCENARIOS}
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        sys.exit(f"unknown rows {unknown}; known: {', '.join(known)}")
    return [known[name] for name in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run (10)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of discarded load before each run (1)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; medians are reported (3)")
    parser.add_argument("--connections", default="64,256", help="comma-separated wrk connection counts")
    parser.add_argument("--threads", type=int, choices=(1, 2), default=1, help="wrk threads (1)")
    parser.add_argument("--only", help="comma-separated row names (default: the default rows)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 repeat, short warm-up")
    parser.add_argument("--self-test", action="store_true", help="check the harness on the nginx rows, 1 s")
    parser.add_argument("--list", action="store_true", help="list the rows and exit")
    parser.add_argument("--nginx-keepalive", type=int, default=512,
                        help="idle upstream connections nginx keeps (512, fastgw's default "
                             "pool size); see bench/README.md")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    args = parser.parse_args(argv)
    args.connections = [int(c) for c in args.connections.split(",") if c.strip()]
    if args.quick:
        args.duration, args.repeat, args.warmup = 2, 1, 1
    if args.duration < 1 or args.repeat < 1 or not args.connections:
        parser.error("--duration must be >= 1, --repeat >= 1, and --connections non-empty")
    # The proxies share core 0; wrk and the static upstream share core 1.
    allowed = os.sched_getaffinity(0)
    pin = not args.no_pin and {0, 1} <= allowed
    if not args.no_pin and not pin:
        print("warning: cores 0 and 1 are not both available; running unpinned", file=sys.stderr)
    args.proxy_cpu, args.load_cpu = (0, 1) if pin else (None, None)
    return args


def raise_file_limit() -> None:
    # 256 client connections plus upstream ones per proxy outgrow a 1024 soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exit_on_signal(signum: int, _frame: object) -> None:
    # Raising lets every ``finally`` and ExitStack stop the servers before we go; a second
    # Ctrl-C must not cut that cleanup short and leave servers behind.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            marker = "default" if s.default else "opt-in"
            print(f"{s.name:<28} {marker:<8} vs {s.baseline or '-':<8} {s.description}")
        return 0
    # SIGINT too: a shell that starts us in the background would otherwise leave it ignored.
    for signum in STOP_SIGNALS:
        signal.signal(signum, exit_on_signal)
    raise_file_limit()
    find_tool("nginx", "nginx")
    find_tool("wrk", "wrk")
    try:
        if args.self_test:
            return self_test(args)
        rows = run_benchmark(select_scenarios(args.only), args)
    except StartupError as exc:  # only the shared upstream's failure stops every row
        print(f"FAILED to start {exc}", file=sys.stderr)
        return 1
    print(format_table(rows))
    if args.json:
        args.json.write_bytes(report_json(rows, args))
        print(f"wrote {args.json}", file=sys.stderr)
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
