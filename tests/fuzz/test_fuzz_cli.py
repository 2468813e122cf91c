"""Hostile arguments and files for the real ``twin`` command line: every bad input ends with one line on stderr
and a non-zero exit, never a traceback. Each example is its own process, as a user runs it."""

from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import env_with_venv

TWIN = [sys.executable, "-m", "twin.cli"]
REFUSED = "mqtt://127.0.0.1:1"

BAD_VALUES = ["", "-1", "0", "nan", "inf", "1e400", "abc", "10x", "1h1h", "30m1h", "\u00e6\u00f8\u00e5", "-",
              "1 week", "99999999999999999999d", "/nonexistent/dir/x"]


def _bad_file(kind: str, data: bytes, where: Path) -> str:
    """A file a user might hand over by mistake: random bytes, Latin-1, TOML of wrong types, a cut-off gzip,
    a folder, a path that does not exist."""
    p = where / f"in-{kind}"
    if kind == "missing":
        return str(where / "no" / "such.toml")
    if kind == "folder":
        p.mkdir(exist_ok=True)
        return str(p)
    content = {
        "bytes": b"\x00\xff" + data,
        "latin1": "name = 'M\u00f8ller \u00b0C'\n".encode("latin-1") + data,
        "toml": b"site = 5\n[[halls]]\nid = []\n",
        "gzip": gzip.compress(b'{"t": 1, "topic": "stargate/x/gpu/h1/r1"}\n' * 50)[:40],
        "json": b'{"t": "soon", "topic": 5, "qos": 9}\n' + data,
    }[kind]
    p = p.with_suffix(".gz") if kind == "gzip" else p.with_suffix(".toml")
    p.write_bytes(content)
    return str(p)


FILE_KINDS = st.sampled_from(["bytes", "latin1", "toml", "gzip", "json", "folder", "missing"])


@st.composite
def command(draw: st.DrawFn, where: Path) -> list[str]:
    bad = _bad_file(draw(FILE_KINDS), draw(st.binary(max_size=200)), where)
    val = draw(st.sampled_from(BAD_VALUES))
    out = str(where / "out.jsonl")
    # every form is wrong somewhere a command checks before it starts any work (or connects)
    forms = [
        ["import", draw(st.sampled_from(["lp", "csv", "annotated-csv"])), bad, "--mapping", bad, "--out", out],
        ["backtest", bad],
        ["replay", bad, "--broker", REFUSED],
        ["run", "state", "--plant", bad, "--broker", REFUSED],
        ["run", "sink", "--plant", bad, "--broker", REFUSED],
        ["sim", "--scenario", bad, "--out", out],
        ["adapter", draw(st.sampled_from(["dcgm", "modbus", "opcua"])), "--config", bad, "--broker", REFUSED],
        ["sim", "--out", out, draw(st.sampled_from(["--duration", "--step", "--speed"])), val],
        ["up", draw(st.sampled_from(["--duration", "--tick", "--speed", "--rack-every", "--data-dir"])), val,
         "--broker", REFUSED],
        ["record", "--broker", REFUSED, draw(st.sampled_from(["--rotate-time", "--rotate-size"])), val,
         "--out", out],
        ["backtest", "--simulate", val],
        ["import", "csv", bad, "--mapping", bad, "--out", out,
         draw(st.sampled_from(["--encoding", "--delimiter", "--timezone", "--precision"])), val],
        [draw(st.sampled_from(["run", "bench", "sim", "adapter"])), val],
    ]
    return draw(st.sampled_from(forms))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=st.data())
def test_every_bad_input_is_one_line_and_a_failure(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        argv = data.draw(command(Path(tmp)))
        r = subprocess.run([*TWIN, *argv], env=env_with_venv(), cwd=tmp, capture_output=True, text=True,
                           timeout=120)
    err = r.stderr.strip()
    assert r.returncode != 0, (argv, r.stdout[-500:], err)
    assert "Traceback" not in err, (argv, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("twin"), (argv, err)
