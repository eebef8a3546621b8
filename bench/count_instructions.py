"""Instructions per request of bench rows' gateway worker, under callgrind.

The shared machines these benchmarks run on move wall-clock figures by 20% from
one run to the next; valgrind's callgrind counts the instructions a worker
executes, which do not move (the same count twice, whatever else the machine
does). Each row's gateway runs under callgrind with instrumentation off while it
starts, takes ``--warm`` requests, and then counts ``--requests`` more, sent one
at a time on one kept-alive connection, exactly as the row's wrk script sends
them. A row with a ``baseline`` is printed with the ratio of the baseline's
instructions to its own: what its RPS per core would be relative to the
baseline's if every instruction cost the same (it leaves out the kernel's
work, which is the same for both rows of an AI pair). Requests one at a time
share nothing: a row whose work is shared by concurrent requests under load
(ai-rate-limiting-advanced's Redis calls, batched) counts far more here.

    .venv/bin/python bench/count_instructions.py --rows fastgw-ai-proxy,fastgw-ai-rate-limit-local
"""

from __future__ import annotations

import argparse
import glob
import http.client
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench
import yaml

from fastgw.testing import wait_for_port


def count(scenario: bench.Scenario, backends: bench.Backends, workdir: Path, warm: int,
          requests: int) -> int:
    """The gateway worker's instructions for ``requests`` requests of ``scenario``."""
    config_path = workdir / f"{scenario.name}.yaml"
    assert scenario.gateway_config is not None  # fastgw rows only
    config = scenario.gateway_config(backends.targets(scenario.upstream_targets))
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    port, admin_port = bench.free_port(), bench.free_port()
    out = workdir / f"{scenario.name}.callgrind"
    command = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--instr-atstart=no",
               f"--callgrind-out-file={out}.%p", sys.executable, "-m", "fastgw", "run",
               "-c", str(config_path), "--workers", "1", "--listen", f"127.0.0.1:{port}",
               "--admin-listen", f"127.0.0.1:{admin_port}"]
    with open(workdir / f"{scenario.name}.log", "wb") as log:
        gateway = subprocess.Popen(command, cwd=bench.REPO_ROOT, env=bench.fastgw_env(),
                                   stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=300, proc=gateway)
        send(scenario, port, warm)
        subprocess.run(["callgrind_control", "-i", "on"], capture_output=True, check=True)
        send(scenario, port, requests)
        subprocess.run(["callgrind_control", "-i", "off"], capture_output=True, check=True)
        subprocess.run(["callgrind_control", "-d"], capture_output=True, check=True)
    finally:
        gateway.terminate()
        gateway.wait(timeout=60)
    # The worker is the process that counted the most (the supervisor only waits).
    totals = [int(match) for path in glob.glob(f"{out}.*")
              for match in re.findall(r"^totals: (\d+)", Path(path).read_text(), re.M)]
    if not totals or not max(totals):
        raise RuntimeError(f"{scenario.name}: callgrind counted nothing")
    return max(totals)


def send(scenario: bench.Scenario, port: int, requests: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    method = "POST" if scenario.body else "GET"
    for _ in range(requests):
        connection.request(method, scenario.path, body=scenario.body,
                           headers=dict(scenario.headers))
        answer = connection.getresponse()
        answer.read()
        if answer.status >= 400:
            raise RuntimeError(f"{scenario.name}: answered {answer.status}")
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", required=True, help="fastgw rows of bench/run.py, by comma")
    parser.add_argument("--requests", type=int, default=300, help="requests counted per row")
    parser.add_argument("--warm", type=int, default=50, help="requests before counting")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.rows.split(",") if name.strip()]
    scenarios = {s.name: s for s in bench.SCENARIOS}
    unknown = [name for name in chosen if name not in scenarios]
    if unknown:
        parser.error(f"unknown rows: {', '.join(unknown)}")
    rows = [scenarios[name] for name in chosen]
    if any(row.server != "fastgw" or row.tls_client for row in rows):
        parser.error("only fastgw rows without a TLS client can be counted")
    pinning = argparse.Namespace(load_cpu=1, proxy_cpu=0)
    counted: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="fastgw-instructions-") as folder:
        workdir = Path(folder)
        for suite in dict.fromkeys(row.suite for row in rows):
            upstream = bench.SUITES[suite].start_upstream(workdir, pinning)
            redis = bench.serving_redis(workdir, pinning) \
                if any(row.needs_redis for row in rows if row.suite == suite) else None
            try:
                backends = bench.Backends(upstream, redis)
                for row in rows:
                    if row.suite == suite:
                        started = time.monotonic()
                        counted[row.name] = count(row, backends, workdir, args.warm,
                                                  args.requests)
                        print(f"{row.name}: {counted[row.name] // args.requests:,} instructions"
                              f" per request ({time.monotonic() - started:.0f} s)",
                              file=sys.stderr)
            finally:
                upstream.stop()
                if redis is not None:
                    redis.stop()
    print(f"{'row':<32} {'instructions/request':>21}  vs baseline")
    for row in rows:
        mine = counted[row.name] / args.requests
        line = f"{row.name:<32} {mine:>21,.0f}"
        if row.baseline in counted:
            line += f"  {counted[row.baseline] / counted[row.name]:.3f}x {row.baseline}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
