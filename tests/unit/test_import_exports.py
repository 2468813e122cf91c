"""``twin import`` on everyday exports: Latin-1, a BOM, semicolons, zone-less times, cut-off or mislabelled gzip.
Each bad case is one line naming the file (and the line) and what to pass; each good case imports the same
messages as the clean UTF-8 file."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from adapters.logs.telemetry_log import iter_log
from twin.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "import"
CLEAN = (DATA / "racks.csv").read_text(encoding="utf-8")
MAPPING = str(DATA / "racks.toml")


def _import(tmp_path: Path, name: str, data: bytes, *extra: str) -> tuple[int, list[dict], str]:  # type: ignore[type-arg]
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / f"{name}.{len(extra)}.out.jsonl"
    out.unlink(missing_ok=True)
    rc = main(["import", "csv", str(src), "--mapping", MAPPING, "--out", str(out), "--no-progress", *extra])
    return rc, (list(iter_log(out)) if out.exists() else []), str(src)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # type: ignore[type-arg]
    rc, msgs, _ = _import(tmp_path_factory.mktemp("ref"), "racks.csv", CLEAN.encode())
    assert rc == 0 and len(msgs) == 2
    return msgs


def _latin1() -> bytes:
    return CLEAN.replace("temp_c", "temp_°C").encode("latin-1")


def _latin1_mapping(tmp_path: Path) -> str:
    m = tmp_path / "m.toml"
    m.write_text((DATA / "racks.toml").read_text().replace('"temp_c"', '"temp_°C"'), encoding="utf-8")
    return str(m)


def test_a_bom_is_read_as_utf8(tmp_path: Path, reference: list[dict]) -> None:  # type: ignore[type-arg]
    rc, msgs, _ = _import(tmp_path, "bom.csv", b"\xef\xbb\xbf" + CLEAN.encode())
    assert rc == 0 and msgs == reference


def test_latin1_is_refused_with_a_hint_and_read_with_encoding(tmp_path: Path, reference: list[dict],  # type: ignore[type-arg]
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    global MAPPING
    saved, MAPPING = MAPPING, _latin1_mapping(tmp_path)
    try:
        rc, msgs, src = _import(tmp_path, "latin1.csv", _latin1())
        err = capsys.readouterr().err.strip()
        assert rc == 2 and msgs == [] and len(err.splitlines()) == 1, err
        assert f"{src}:1: not utf-8 text (byte 0xb0): pass --encoding" in err, err
        rc, msgs, _ = _import(tmp_path, "latin1.csv", _latin1(), "--encoding", "latin-1")
        assert rc == 0 and msgs == reference
    finally:
        MAPPING = saved


def test_semicolons_are_sniffed_or_given(tmp_path: Path, reference: list[dict]) -> None:  # type: ignore[type-arg]
    semi = CLEAN.replace(",", ";").encode()
    assert _import(tmp_path, "semi.csv", semi)[:2] == (0, reference)
    assert _import(tmp_path, "semi.csv", semi, "--delimiter", ";")[:2] == (0, reference)


def test_a_wrong_delimiter_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, _ = _import(tmp_path, "semi.csv", CLEAN.replace(",", ";").encode(), "--delimiter", ",")
    err = capsys.readouterr().err
    assert rc == 2 and "the columns were not split: pass --delimiter" in err, err


def test_zone_less_times_need_a_timezone(tmp_path: Path, reference: list[dict],  # type: ignore[type-arg]
                                         capsys: pytest.CaptureFixture[str]) -> None:
    local = CLEAN.replace("T10:00:00Z", "T11:00:00").replace("T10:00:01Z", "T11:00:01").encode()
    rc, msgs, src = _import(tmp_path, "local.csv", local)
    err = capsys.readouterr().err
    assert rc == 2 and msgs == [] and f"{src}:2: time '2026-11-21T11:00:00' has no zone: pass --timezone" in err
    # Oslo is UTC+1 in November: 11:00 local is 10:00Z, the reference
    rc, msgs, _ = _import(tmp_path, "local.csv", local, "--timezone", "Europe/Oslo")
    assert rc == 0 and msgs == reference
    rc, msgs, _ = _import(tmp_path, "local.csv", local, "--timezone", "UTC")
    assert rc == 0 and msgs[0]["t"] == reference[0]["t"] + 3600


def test_a_bad_timezone_or_encoding_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for opt, val, says in (("--timezone", "Mars/Olympus", "unknown time zone"),
                           ("--encoding", "klingon", "unknown encoding"),
                           ("--delimiter", ";;", "not one character")):
        with pytest.raises(SystemExit) as e:
            _import(tmp_path, "x.csv", CLEAN.encode(), opt, val)
        err = capsys.readouterr().err
        assert e.value.code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_a_cut_off_gzip_and_a_file_that_is_not_gzip(tmp_path: Path, reference: list[dict],  # type: ignore[type-arg]
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    whole = gzip.compress((CLEAN * 1).encode())
    assert _import(tmp_path, "ok.csv.gz", whole)[:2] == (0, reference)
    rc, msgs, src = _import(tmp_path, "cut.csv.gz", whole[: len(whole) // 2])
    err = capsys.readouterr().err
    assert rc == 2 and msgs == [] and "truncated: the gzip stream ends early" in err and src in err, err
    rc, _, src = _import(tmp_path, "plain.csv.gz", CLEAN.encode())
    err = capsys.readouterr().err
    assert rc == 2 and f"{src}:1: not a gzip file, though it is named .gz" in err, err


def test_progress_is_shown_in_bytes_with_the_share(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from twin.commands.progress import Progress, human_bytes

    with Progress("import", 2_000_000.0, human_bytes, show=True, every_s=0.0) as p:
        p.update(500_000)
    err = capsys.readouterr().err
    assert "twin import 500.0 kB of 2.0 MB (25%)" in err and "left" in err, err


@pytest.mark.parametrize(("make", "says"), [
    (lambda d: d, "is a folder: give the log files in it"),
    (lambda d: (d / "x.jsonl.gz").write_text('{"t": 1}\n') and d / "x.jsonl.gz",
     "not a gzip file, though it is named .gz"),
    (lambda d: d / "nothere.jsonl", "no such file"),
])
def test_replay_names_a_folder_a_fake_gzip_and_a_missing_file(tmp_path: Path, make, says: str,  # type: ignore[no-untyped-def]
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = make(tmp_path)
    assert main(["replay", str(path), "--broker", "mqtt://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def test_a_gzip_log_reports_the_position_of_what_it_handed_out(tmp_path: Path) -> None:
    """The decompressing thread runs up to four 1 MiB chunks ahead; progress must follow the lines read."""
    import base64
    import os

    from adapters.logs.telemetry_log import LogReader, TelemetryLogWriter

    path = tmp_path / "big.jsonl.gz"
    n = 40_000
    with TelemetryLogWriter(path) as w:
        for i in range(n):
            w.write(1_795_300_000.0 + i, "stargate/x/ambient/wx1", base64.b64encode(os.urandom(120)), 1, False)
    reader = LogReader(path)
    assert reader.size > 4 * (1 << 20)  # more chunks than the thread may hold ahead
    seen = 0
    for _ in reader:
        seen += 1
        if seen == n // 2:
            assert 0.3 < reader.position / reader.size < 0.7, (reader.position, reader.size)
    assert seen == n and reader.position == reader.size
