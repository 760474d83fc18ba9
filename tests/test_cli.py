from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from roundtable.cli import display_width, main, parse_args
from roundtable.config import DECLARATIONS

REPO = Path(__file__).resolve().parents[1]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--bogus"], "Error: unrecognized arguments: --bogus; see --help"),
        (["--turns", "x"], 'Error: --turns: must be an integer >= 1, got "x"'),
        (["--turns", "0"], "Error: --turns: must be an integer >= 1, got 0"),
        (
            ["--temperature-scale", "9"],
            "Error: --temperature-scale: must be a number from 0 to 2, got 9.0",
        ),
        (["--base-url", "localhost:8000"], "Error: --base-url: must be an http:// or https:// URL"),
        (
            ["--base-url", "https://[::1/v1"],
            "Error: --base-url: must be an http:// or https:// URL",
        ),
        (
            ["--base-url", "http://h:port/v1"],
            "Error: --base-url: must be an http:// or https:// URL",
        ),
        (["--seed", "-3"], "Error: --seed: must be an integer >= 0, or null (random), got -3"),
        (["check", "--turns"], "Error: argument --turns: expected one argument; see --help"),
    ],
    ids=[
        "unknown-flag",
        "turns-word",
        "turns-zero",
        "scale",
        "url",
        "url-ipv6",
        "url-port",
        "seed",
        "missing-value",
    ],
)
def test_bad_flags_exit_2_with_one_error_line(table, capsys, argv, message):
    assert main([*argv, "--table", str(table)] if argv[0] != "check" else argv) == 2
    assert error_line(capsys).startswith(message)


def test_missing_table_and_config(tmp_path, capsys):
    assert main(["--table", str(tmp_path / "nope")]) == 2
    assert (
        error_line(capsys)
        == f"Error: {tmp_path / 'nope'}: table directory not found; pass --table DIR"
    )
    assert main(["check", "--table", str(tmp_path), "--config", str(tmp_path / "x.yaml")]) == 2
    assert "config file not found" in error_line(capsys)


def test_broken_persona_exits_2_naming_file_and_field(table, capsys):
    path = table / "participants" / "role2.json"
    data = json.loads(path.read_text())
    data["creativity"] = "high"
    path.write_text(json.dumps(data))
    assert main(["--table", str(table)]) == 2
    assert (
        error_line(capsys)
        == f'Error: {path}: "creativity" must be a number from 0 to 1, got "high"'
    )


def test_unreachable_server_exits_1(table, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    argv = ["--table", str(table), "--base-url", url, "--model", "m", "--out", str(table / "o")]
    assert main([*argv, "--retries", "2", "--retry-wait", "0.01"]) == 1
    line = error_line(capsys)
    assert (
        line.startswith(f"Error: {url}: unreachable after 3 attempts")
        and "check the base URL" in line
    )
    # Every endpoint is probed before turn 1: nothing was started, so nothing is left.
    assert "resume" not in line and not (table / "o").exists()


def test_check_summarises_the_table(table, capsys):
    path = table / "participants" / "role2.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "model": "fast",
                                "base_url": "http://u:pw@gpu:8000/v1"}))  # fmt: skip
    assert main(["check", "--table", str(table), "--turns", "20"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "Amara" in out and "questions (4)" in out and "turns: 20" in out
    assert "seed: random" in out
    assert "own endpoint: http://***@gpu:8000/v1, model fast" in out and "pw" not in out


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "--base-url" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--version"])
    assert "roundtable 0.1.0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["chek"], 'Error: chek: unknown command; did you mean "check"?'),
        (["rn", "--turns", "2"], 'Error: rn: unknown command; did you mean "run"?'),
        (
            ["hello"],
            "Error: hello: unknown command; the commands are run (the default), check, init, "
            "personas, metrics, study, report, export, graph and view",
        ),
    ],
    ids=["check", "run", "far"],
)
def test_a_mistyped_command_suggests_the_closest(capsys, argv, message):
    assert main(argv) == 2
    assert error_line(capsys) == message


def test_a_directory_given_as_a_command_suggests_table(table, capsys):
    assert main([str(table)]) == 2
    assert error_line(capsys).endswith(f"; for a table directory, pass --table {table}")


def test_resume_accepts_the_transcript_path(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "transcript.jsonl").write_text("")
    assert parse_args(["--resume", str(run / "transcript.jsonl")]).resume == run
    assert parse_args(["--resume", str(run)]).resume == run


@pytest.mark.parametrize("flag", ["--table", "--config"])
def test_table_and_config_are_refused_with_resume(tmp_path, capsys, flag):
    assert main(["--resume", str(tmp_path), flag, str(tmp_path)]) == 2
    assert error_line(capsys) == (
        f"Error: {flag}: a resumed run uses the table and settings it recorded; drop {flag}"
    )


def test_turns_1_runs(table, capsys):
    out = table / "o"
    assert main(["--table", str(table), "--turns", "1", "--quiet", "--out", str(out)]) == 0
    records = [json.loads(x) for x in (out / "transcript.jsonl").read_text().splitlines()]
    assert records[0]["settings"]["wrap_up_turns"] == 1 and records[-1]["status"] == "completed"


def test_flags_come_from_the_declaration(table, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for d in DECLARATIONS.values():
        if d.flag is not None:
            assert d.flag in help_text and f"(default: {d.show(d.default)})" in help_text
    assert main(["check", "--table", str(table), "--no-introductions", "--stream"]) == 0
    assert parse_args(["--no-stream"]).stream is False and parse_args([]).stream is None
    assert parse_args(["--introductions"]).introductions is True


@pytest.mark.parametrize(
    "text,columns",
    [("Ben", 3), ("陈伟", 4), ("ｅｘ", 4), ("e\u0301", 1), ("", 0)],
    ids=["ascii", "cjk", "fullwidth", "combining", "empty"],
)
def test_display_width_counts_terminal_columns(text, columns):
    # The alignment test below measures with display_width too: this pins what it returns.
    assert display_width(text) == columns


def test_check_aligns_wide_names(table, capsys):
    path = table / "participants" / "role1.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "name": "陈伟陈伟陈伟陈伟"}))
    assert main(["check", "--table", str(table)]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "(creativity" in x]
    names = ["Amara Okafor", "Ben Hartley", "Chen Wei", "Dara Lindqvist"]
    starts = {display_width(x[: x.index(n)]) for x, n in zip(lines, names, strict=True)}
    assert len(lines) == 4 and len(starts) == 1, lines


def test_the_readme_example_is_what_the_program_prints(table):
    """Each line of the README's first example is printed, in order ("..." marks a cut)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```text\n$ python -m roundtable --offline --seed 7 --turns 6\n")[1]
    expected = [x for x in block.split("```")[0].splitlines() if x and x != "..."]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ROUNDTABLE_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "roundtable", "--offline", "--seed", "7", "--turns", "6"],
        cwd=table, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout

    def same(line: str) -> str:  # what differs between runs: port, seconds, run directory
        line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:N", line)
        return re.sub(r"\d+\.\d s; transcript: outputs/[^/]+/", "T s; transcript: outputs/D/", line)

    printed = iter(same(x) for x in proc.stdout.splitlines())
    for line in map(same, expected):
        head = line.removesuffix("...").rstrip()
        assert any(x.startswith(head) if line.endswith("...") else x == line for x in printed), line


@pytest.mark.parametrize("command", [["check"], ["study", "x.yaml", "--dry-run"]], ids=str)
def test_a_reader_that_goes_away_is_not_a_traceback(table, command):
    # `roundtable check | head -1`: the pipe closes before everything is written.
    (table / "x.yaml").write_text("name: x\ntable: .\nfactors: {layout: [shared, chat]}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "roundtable", *command],
        cwd=table, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["--turnz", "5"], 'unrecognized arguments: --turnz 5 (did you mean "--turns"?); see'),
        (["help"], "help: unknown command; the commands are"),
        (["--table", "README.md"], "README.md: is a file, not a table directory; pass --table"),
    ],
    ids=["flag-typo", "help-word", "table-is-a-file"],
)
def test_common_mistakes_get_a_pointed_error(argv, expected, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and expected in err and err.count("\n") == 1
    if argv == ["help"]:
        assert "use --help" in err
