"""The ``fastgw`` command (PRODUCT.md section 2)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from fastgw import __version__, core_status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastgw", description="API and AI/LLM gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="serve in the foreground")
    run.add_argument("-c", "--config", required=True, help="declarative config (YAML or JSON)")
    run.add_argument("--workers", type=int, help="worker processes (default: number of CPUs)")
    run.add_argument("--listen", help="proxy address HOST:PORT (default 0.0.0.0:8000)")
    run.add_argument("--admin-listen", help="admin API address HOST:PORT (default 127.0.0.1:8001)")
    run.add_argument("--log-level", default=os.environ.get("FASTGW_LOG_LEVEL", "INFO"))

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("-c", "--config", required=True)
    check.add_argument("--explain", action="store_true",
                       help="for a refused config, say what to change, one line per error")

    push = sub.add_parser("push", help="apply one config on several instances, all or none")
    push.add_argument("-c", "--config", required=True)
    push.add_argument("--to", nargs="+", required=True, metavar="URL",
                      help="admin API URLs of the instances (http://host:8001 ...)")
    push.add_argument("--admin-token", help="their Kong-Admin-Token (default: "
                      "$FASTGW_ADMIN_TOKEN)")

    from fastgw.mockllm import build_parser as mock_parser

    mock_parser(sub)

    sub.add_parser("version", help="print the version and whether the compiled core is loaded")
    return parser


def cmd_version() -> int:
    status = core_status()
    state = "loaded" if status["loaded"] else "NOT loaded"
    print(f"fastgw {__version__} (compiled core {state})")
    for name, how in status["modules"].items():
        print(f"  _core.{name}: {how}")
    return 0 if status["loaded"] else 1


def cmd_check(path: str, explain: bool = False) -> int:
    from fastgw.config.loader import check_file

    code, text = check_file(path, explain)
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def cmd_run(args) -> int:
    import uvloop

    from fastgw.config.loader import ConfigError, load_config, with_overrides
    from fastgw.supervisor import Supervisor, run_supervisor

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s fastgw %(levelname)s %(message)s")
    overrides = {k: v for k, v in (("listen", args.listen), ("admin_listen", args.admin_listen),
                                   ("workers", args.workers)) if v is not None}
    try:
        config = with_overrides(load_config(args.config), overrides)
    except ConfigError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    from fastgw.admin.server import exposure_error

    settings = config.gateway

    problem = exposure_error(settings.admin_listen, settings.admin_token) \
        if settings.admin_listen else None
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1
    workers = settings.workers or os.cpu_count() or 1
    sup = Supervisor(config, args.config, settings.listen, settings.admin_listen, workers,
                     overrides)
    return uvloop.run(run_supervisor(sup))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "mock-llm":
        from fastgw.mockllm import main as mock_main

        return mock_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "version":
        return cmd_version()
    if args.command == "check":
        return cmd_check(args.config, args.explain)
    if args.command == "push":
        from fastgw.admin.push import cmd_push

        code, text = cmd_push(args.config, args.to, args.admin_token)
        print(text, file=sys.stdout if code == 0 else sys.stderr)
        return code
    if args.command == "run":
        return cmd_run(args)
    return 2
