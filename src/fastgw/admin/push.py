"""``fastgw push -c FILE --to URL...``: one config to a fleet, all or nothing.

Over each instance's admin API, in two rounds:

1. ``POST /config/check`` everywhere: each instance validates the document as
   it would apply it (its own environment resolves vault references, its
   running sockets decide what needs a restart). One refusal, or one
   instance that cannot be reached, stops the push before anything changed.
2. ``POST /config`` everywhere. If an instance fails now, those already
   switched go back (``POST /config/revert`` naming the pushed hash, so an
   instance someone else changed meanwhile is left alone) and the push fails.

``GET /status`` shows each instance's ``config_hash``: a fleet whose hashes
differ has drifted.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Any

import orjson

from fastgw.config.loader import ConfigError, read_document

TIMEOUT_S = 30.0


class Instance:
    """One gateway's admin API."""

    __slots__ = ("url", "token")

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def post(self, path: str, body: Any) -> tuple[int, dict]:
        """(status, answer); status 0 when the instance could not be reached."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Kong-Admin-Token"] = self.token
        request = urllib.request.Request(self.url + path, data=orjson.dumps(body),
                                         headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return response.status, _answer(response.read())
        except urllib.error.HTTPError as failure:
            return failure.code, _answer(failure.read())
        except (urllib.error.URLError, OSError) as failure:
            reason = getattr(failure, "reason", failure)
            return 0, {"message": f"cannot reach the admin API: {reason}"}


def _answer(raw: bytes) -> dict:
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"message": raw[:200].decode("utf-8", "replace")}
    return answer if isinstance(answer, dict) else {"message": str(answer)}


def _problems(instance: Instance, answer: dict) -> list[str]:
    errors = answer.get("errors") or [answer.get("message", "refused")]
    return [f"{instance.url}: {error}" for error in errors]


def push(doc: dict, instances: list[Instance]) -> tuple[bool, list[str]]:
    """Apply ``doc`` on every instance or on none; (ok, what happened)."""
    hashes = set()
    problems: list[str] = []
    for instance in instances:
        status, answer = instance.post("/config/check", doc)
        if status != 200:
            problems += _problems(instance, answer)
        else:
            hashes.add(answer.get("hash"))
    if problems:
        return False, [*problems, "nothing was changed"]
    applied: list[Instance] = []
    for instance in instances:
        status, answer = instance.post("/config", doc)
        if status != 201:
            problems += _problems(instance, answer)
            break
        applied.append(instance)
    if not problems:
        shown = ", ".join(sorted(str(h) for h in hashes))
        return True, [f"config {shown} applied on {len(applied)} instance(s)"]
    for instance in applied:
        # Each instance's hash of the pushed document (they agree unless
        # their overrides differ).
        for pushed in hashes:
            status, answer = instance.post("/config/revert", {"hash": pushed})
            if status == 201:
                problems.append(f"{instance.url}: reverted to config {answer.get('hash')}")
                break
        else:
            problems += [f"{instance.url}: could not revert: {line}"
                         for line in _problems(instance, answer)]
    return False, problems


def cmd_push(path: str, urls: list[str], token: str | None) -> tuple[int, str]:
    """What ``fastgw push`` prints, and its exit code."""
    try:
        doc = read_document(path)
    except ConfigError as exc:
        return 1, "\n".join(exc.errors)
    if not isinstance(doc, dict):
        return 1, f"{path}: expected a mapping of entity kinds (a YAML/JSON object)"
    token = token or os.environ.get("FASTGW_ADMIN_TOKEN") or None
    ok, lines = push(doc, [Instance(url, token) for url in urls])
    return (0 if ok else 1), "\n".join(lines)
