"""The disk spool: order, durability across reopen (a crash is a reopen without close), torn tails, bound."""

from __future__ import annotations

from pathlib import Path

from adapters.sink.spool import Spool


def _drain(sp: Spool, n: int = 3) -> list[str]:
    out: list[str] = []
    while True:
        lines, pos = sp.read(n)
        if not lines:
            return out
        out += lines
        sp.commit(pos, len(lines))


def test_lines_come_back_in_order_across_segments(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=200)
    batches = [[f"m,site=a f={i}i {j}" for j in range(i, i + 4)] for i in range(0, 80, 4)]
    for b in batches:
        sp.append(b)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert sp.lines == 80
    assert _drain(sp) == [ln for b in batches for ln in b]
    assert sp.empty and sp.bytes == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1  # consumed segments are deleted


def test_a_reopen_without_close_keeps_everything_not_committed(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=150)
    for i in range(10):
        sp.append([f"l{i}a", f"l{i}b"])
    lines, pos = sp.read(4)
    sp.commit(pos, len(lines))
    first = lines
    # "crash": no close, a new Spool on the same directory
    sp2 = Spool(tmp_path, segment_bytes=150)
    assert sp2.lines == 20 - len(first)
    rest = _drain(sp2)
    assert first + rest == [f"l{i}{s}" for i in range(10) for s in "ab"]


def test_a_torn_tail_is_cut_and_what_came_before_survives(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(["a 1", "b 2"])
    sp.append(["c 3"])
    seg = next(tmp_path.glob("*.seg"))
    data = seg.read_bytes()
    seg.write_bytes(data[:-2])  # the last append half-written
    sp2 = Spool(tmp_path)
    assert _drain(sp2) == ["a 1", "b 2"]
    sp2.append(["d 4"])
    assert _drain(Spool(tmp_path)) == ["d 4"]


def test_when_full_the_oldest_segments_are_dropped_and_counted(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=2000, segment_bytes=500)
    for i in range(60):
        sp.append([f"line-{i:03d}-" + "x" * 40])
    assert sp.bytes <= 2000
    assert sp.dropped > 0 and sp.dropped + sp.lines == 60
    got = _drain(sp)
    assert got == [f"line-{i:03d}-" + "x" * 40 for i in range(60 - len(got), 60)]  # the newest are kept


def test_a_record_larger_than_the_bound_is_refused(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=100)
    assert sp.append(["y" * 200]) == 1
    assert sp.empty and sp.dropped == 1
