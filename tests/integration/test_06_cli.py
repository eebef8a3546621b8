"""`fastgw check` and `fastgw version` as a user runs them."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def fastgw(*args):
    return subprocess.run([sys.executable, "-m", "fastgw", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_version_says_the_compiled_core_is_loaded():
    out = fastgw("version")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "compiled core loaded" in out.stdout


def test_check_accepts_the_quickstart():
    out = fastgw("check", "-c", "examples/quickstart.yaml")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.strip().splitlines()) == 1


def test_check_lists_every_error_with_its_path(tmp_path):
    bad = {
        "_format_version": "3.0",
        "services": [{"name": "s", "url": "http://127.0.0.1:1", "retries": "many",
                      "routes": [{"name": "r", "paths": ["/"], "strip_pth": True}]}],
        "plugins": [{"name": "no-such-plugin"}],
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    out = fastgw("check", "-c", str(path))
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) >= 3
    assert any("retries" in line for line in lines)
    assert any("strip_pth" in line for line in lines)
    assert any("no-such-plugin" in line for line in lines)
    assert all(": " in line for line in lines)


def test_check_explain_prints_one_line_of_advice_per_error(tmp_path):
    bad = {"_format_version": "3.0", "partials": [{"name": "p"}],
           "plugins": [{"name": "rate-limiting-advanced"}]}
    path = tmp_path / "kong.yml"
    path.write_text(yaml.safe_dump(bad))
    out = fastgw("check", "-c", str(path), "--explain")
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "partials: remove it (Kong Enterprise partials (shared plugin settings); write the "
        "settings into each plugin)",
        "plugins[0].name: remove the plugin: plugin 'rate-limiting-advanced' is a Kong "
        "Enterprise plugin, not part of fastgw; the closest fastgw plugin is rate-limiting "
        "(local or Redis, sliding windows)",
    ]
