"""Where a bench row's requests spend the worker's Python time.

Runs one row of ``bench/run.py`` with the gateway's worker under cProfile
(``FASTGW_CPROFILE``: each worker writes its stats when it stops) and prints
the functions ranked by their own time per request, with their cumulative
time and calls per request. Figures are profiled microseconds: cProfile
slows Python down two to four times, compiled code it cannot see (the core,
uvloop, httptools, orjson) counts in its Python caller, and the event
loop's own work and idle time land in asyncio's ``run``. Read them as a
ranking, and measure a change with ``bench/run.py``.

    .venv/bin/python bench/profile_worker.py --row fastgw-ai-proxy --top 30
"""

from __future__ import annotations

import argparse
import glob
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# The function each request runs once: its calls count the requests.
PER_REQUEST = ("runner.py", "log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", default="fastgw-ai-proxy", help="a fastgw row of bench/run.py")
    parser.add_argument("--duration", type=int, default=8, help="seconds of load")
    parser.add_argument("--top", type=int, default=25, help="functions shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fastgw-profile-") as folder:
        prefix = os.path.join(folder, "worker")
        run = subprocess.run(
            [sys.executable, str(BENCH / "run.py"), "--only", args.row, "--duration",
             str(args.duration), "--repeat", "1", "--warmup", "0", "--no-litellm"],
            env={**os.environ, "FASTGW_CPROFILE": prefix}, capture_output=True, text=True,
            check=False)
        dumps = sorted(glob.glob(prefix + ".*"))
        if run.returncode != 0 or not dumps:
            print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
            print("no profile was written", file=sys.stderr)
            return 1
        stats = pstats.Stats(*dumps)
    rows = stats.stats  # type: ignore[attr-defined]
    requests = sum(entry[0] for key, entry in rows.items()
                   if key[0].endswith(PER_REQUEST[0]) and key[2] == PER_REQUEST[1])
    if not requests:
        print("the profile shows no request (no log phase ran)", file=sys.stderr)
        return 1
    print(f"{args.row}: {requests} requests; profiled µs per request, by own time")
    print(f"{'own':>7} {'cumul.':>7} {'calls':>6}  function")
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)
    for (path, line, name), (_, calls, own, cumulative, _) in ranked[:args.top]:
        where = path.split("/src/")[-1].split("/site-packages/")[-1]
        print(f"{own / requests * 1e6:7.1f} {cumulative / requests * 1e6:7.1f} "
              f"{calls / requests:6.2f}  {where}:{line}({name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
