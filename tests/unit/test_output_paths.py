"""Files and folders a command will write are checked before it does any work: one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from twin.cli import main


@pytest.mark.parametrize(("argv", "says"), [
    (["backtest", "--simulate", "21d", "--plot", "/nodir/x.png"], "--plot: cannot write /nodir/x.png: folder /nodir "
                                                                  "does not exist"),
    (["sim", "--out", "{tmp}"], "--out: {tmp} is a folder: give a file name in it"),
    (["import", "csv", "x.csv", "--mapping", "m.toml", "--out", "/nodir/log.jsonl"], "folder /nodir does not exist"),
    (["record", "--out", "/nodir/rec.jsonl", "--broker", "mqtt://127.0.0.1:1"], "folder /nodir does not exist"),
    (["run", "state", "--data-dir", "{tmp}/file", "--broker", "mqtt://127.0.0.1:1"], "is a file, not a folder"),
    (["asyncapi", "--out", "/nodir/a.yaml"], "folder /nodir does not exist"),
])
def test_a_path_that_cannot_be_written_is_refused_before_the_work(tmp_path: Path, argv: list[str], says: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as e:  # argparse: before the command runs at all
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert says.replace("{tmp}", str(tmp_path)) in err, err
