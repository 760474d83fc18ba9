from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from _runs import HOSTILE, append, long_run, moderator, run_record, turn, write_run

from roundtable.display import assign_colors
from roundtable.view import create_app, standalone_html
from roundtable.view.live import follow
from roundtable.view.model import CSS_COLORS, Builder, css_color, place, read_lines
from roundtable.view.render import build

REPO = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *extra: dict, end: bool = True) -> Path:
    records = [run_record(), moderator("Welcome."), turn(0, "Ben", "Hello there.")]
    records += list(extra)
    records += [{"type": "end", "status": "completed"}] if end else []
    return write_run(tmp_path / "outputs" / "2026-11-20T10-00-00", records)


def _kinds(records: list[dict]) -> list[tuple[str, str]]:
    _, items = build(records)
    return [(i.kind, str(i.data.get("title") or i.data.get("speaker") or "")) for i in items]


@pytest.mark.parametrize(
    "spec,css",
    [("bright_cyan", CSS_COLORS["bright_cyan"]), ("#A0b1C2", "#a0b1c2"),
     ("#a0b1c2; background:url(x)", "#888888"), (None, "#888888"), ("orange", "#888888")],
    ids=["name", "hex", "injection", "none", "unknown"],
)  # fmt: skip
def test_css_color_passes_only_known_names_and_hex(spec, css):
    assert css_color(spec) == css


def test_speakers_get_the_terminals_colours():
    builder = Builder()
    builder.feed(run_record())
    terminal = assign_colors([None, None, "bright_green"])
    names = ["Amara", "Ben", "Chen"]
    assert builder.colors == {n: CSS_COLORS[s] for n, s in zip(names, terminal, strict=True)}
    assert len(set(builder.colors.values())) == 3


def test_a_new_topic_heads_the_moderators_announcement_and_phases_get_sections():
    records = [
        run_record(), moderator("Welcome."),
        {"type": "entry", "kind": "introduction", "speaker": "Ben", "text": "Hi."},
        moderator("First question: who pays?"), turn(0, "Ben", "a"), turn(1, "Amara", "b"),
        moderator("Next: what first?"),
        turn(2, "Chen", "c", topic="What first?"), {"type": "fold", "entries": 3},
        turn(3, "Ben", "d", phase="wrap_up", topic=None), turn(4, "Amara", "e", phase="wrap_up"),
        {"type": "resume", "turns_done": 5}, turn(5, "Ben", "f", phase="summary", topic=None),
        {"type": "end", "status": "completed"},
    ]  # fmt: skip
    assert _kinds(records) == [
        ("moderator", "Moderator"), ("entry", "Ben"), ("heading", "Who pays?"),
        ("moderator", "Moderator"),
        ("turn", "Ben"), ("turn", "Amara"), ("heading", "What first?"),
        ("moderator", "Moderator"), ("turn", "Chen"), ("fold", ""), ("heading", "Wrap-up"),
        ("turn", "Ben"), ("turn", "Amara"), ("resume", ""), ("heading", "Summary"),
        ("turn", "Ben"), ("end", ""),
    ]  # fmt: skip


def test_place_inserts_before_the_named_item():
    from roundtable.view.model import Item, Placed

    a, b, c = (Item("turn", i, {}) for i in "abc")
    assert [i.id for i in place([Placed(a), Placed(b), Placed(c, "b")])] == ["a", "c", "b"]


def test_standalone_html_shows_every_turn_with_its_details_and_needs_nothing_else(tmp_path):
    run = long_run(tmp_path / "run", 25)
    page = standalone_html(run)
    assert all(f"Turn {i}: a fairly" in page for i in range(25))
    assert page.count('<details class="facts">') == 25
    assert "<style>" in page and "finish_reason" in page and "@media print" in page
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing to fetch
    assert "Content-Security-Policy" in page


@pytest.mark.parametrize("text", HOSTILE, ids=["script", "img", "links", "markdown"])
def test_model_text_is_escaped_everywhere(tmp_path, text):
    people = [{"name": text, "full_name": text, "color": None}]
    records = [
        {**run_record(people), "model": text, "questions": [text]}, moderator(text),
        turn(0, text, text, topic=text, guards=[text], finish_reason=text),
        {"type": "end", "status": "failed", "error": text},
    ]  # fmt: skip
    run = write_run(tmp_path / "run", records)
    for page in (standalone_html(run), create_app(tmp_path).test_client().get("/run/run").text):
        body = page.split("<body", 1)[1]
        assert "onerror=" not in body.replace("onerror=&#34;", "").replace("onerror=x", "")
        assert not re.search(r"<(script|img|svg|a)\b[^>]*(onerror|onload|javascript:)", body)
        assert "<script>window" not in body and "&lt;" in body


def test_read_lines_leaves_a_partial_last_line_for_later(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"type": "a"}\n{"type": "b"}\n{"type": "c"')
    lines, offset = read_lines(path)
    assert [r["type"] for r, _ in lines] == ["a", "b"] and offset == path.read_bytes().rfind(
        b"\n"
    ) + 1
    with path.open("ab") as f:
        f.write(b"}\n")
    more, end = read_lines(path, offset)
    assert [r["type"] for r, _ in more] == ["c"] and end == path.stat().st_size


def test_follow_streams_each_new_record_and_reads_only_whats_new(tmp_path, monkeypatch):
    run = _run(tmp_path, end=False)
    start = (run / "transcript.jsonl").stat().st_size
    pending = [
        moderator("Next: what first?"),
        turn(1, "Chen", "new <b>words</b>", topic="What first?"),
        {"type": "end", "status": "completed"},
    ]
    reads: list[int] = []
    import roundtable.view.live as live

    def spy(path, offset=0, end=None):
        if end is None:  # not the one read of what came before `start`
            reads.append(offset)
        return read_lines(path, offset, end)

    monkeypatch.setattr(live, "read_lines", spy)

    def sleep(_):  # each poll, the writer appends one more line
        if pending:
            append(run, pending.pop(0))

    events = list(follow(run, start, sleep=sleep, idle_timeout_s=None))
    assert reads[0] == start and reads == sorted(reads) and len(set(reads)) == len(reads)
    kinds = [re.search(r"event: (\w+)", e)[1] for e in events if "event:" in e]
    assert kinds == ["items", "items", "items", "end"]
    assert '"before": "r3"' in events[2] and "item topic" in events[2]  # above its question
    assert "new &lt;b&gt;words&lt;/b&gt;" in events[2] and "<b>words" not in events[2]


def test_lines_that_are_not_records_are_skipped_by_the_page_and_the_stream(tmp_path):
    good = [run_record(), moderator("Welcome."), turn(0, "Ben", "Hello there.")]
    run = write_run(tmp_path / "a", good, lock_pid=os.getpid())
    bad = [b"[]", b"3", b"not json", b'"text"', b"\xff\xfe", b"[" * 100_000, b"null"]
    with (run / "transcript.jsonl").open("ab") as f:
        f.write(b"\n".join(bad) + b"\n" + json.dumps(turn(1, "Amara", "after")).encode() + b"\n")
    half = json.dumps(turn(2, "Chen", "half-written line"))
    with (run / "transcript.jsonl").open("ab") as f:
        f.write(half[:30].encode())
    data = (run / "transcript.jsonl").read_bytes()
    complete = data.rfind(b"\n") + 1
    client = create_app(tmp_path, poll_s=0.01).test_client()
    page = client.get("/run/a").text
    assert "Hello there." in page and "after" in page and "half-written" not in page
    assert f'data-offset="{complete}"' in page
    offsets = [n + 1 for n, byte in enumerate(data) if byte == ord("\n")] + [len(data)]
    for offset in offsets:  # the stream starts after each line and inside the half one
        response = client.get(f"/events/a?offset={offset}", buffered=False)
        assert next(iter(response.response)).startswith(b"retry:")
        response.close()
    after = data.find(json.dumps(turn(1, "Amara", "after")).encode())  # just past the bad lines
    response = client.get(f"/events/a?offset={after}", buffered=False)
    chunks = iter(response.response)
    next(chunks)
    assert "after" in next(chunks).decode()  # what follows the offset is sent, not skipped
    response.close()
    response = client.get(f"/events/a?offset={len(data)}", buffered=False)
    chunks = iter(response.response)
    next(chunks)
    with (run / "transcript.jsonl").open("ab") as f:
        f.write(half[30:].encode() + b"\n")
    assert "half-written line" in next(chunks).decode()  # the whole line, once it is whole
    response.close()


def test_the_standalone_page_of_a_transcript_with_a_non_record_line_is_an_input_error(tmp_path):
    from roundtable.errors import InputError

    run = _run(tmp_path)
    with (run / "transcript.jsonl").open("a") as f:
        f.write("[]\n")
    with pytest.raises(InputError, match=r"transcript.jsonl: line 5 is not a JSON object"):
        standalone_html(run)


def test_follow_ends_when_the_writer_died_without_an_end_line(tmp_path):
    run = _run(tmp_path, end=False)
    (run / ".lock").write_text("999999999")
    now = [0.0]

    def sleep(s):
        now[0] += s

    events = list(follow(run, 0, sleep=sleep, clock=lambda: now[0], idle_timeout_s=1.0))
    assert events[-1].startswith("id:") and '"status": "stopped"' in events[-1]


def test_index_lists_runs_newest_first_with_status_turns_model_and_tokens(tmp_path):
    old = {**run_record(), "started": "2026-01-01T00:00:00+00:00"}
    write_run(tmp_path / "old", [old, turn(0, "Ben", "x"), {"type": "end", "status": "failed"}])
    write_run(tmp_path / "live", [run_record(), turn(0, "Ben", "x")], lock_pid=os.getpid())
    write_run(tmp_path / "dead", [{**run_record(), "started": "2025-01-01"}], lock_pid=999999999)
    page = create_app(tmp_path).test_client().get("/").text
    rows = re.findall(r'<a href="/run/(\w+)">.*?status-(\w+)">.*?<td>(\d+)</td><td>(.*?)</td>'
                      r"<td>(\d+)</td>", page, re.S)  # fmt: skip
    assert rows == [("live", "running", "1", "markov-dummy", "120"),
                    ("old", "failed", "1", "markov-dummy", "120"),
                    ("dead", "stopped", "0", "markov-dummy", "0")]  # fmt: skip


def test_a_running_run_page_is_live_and_a_finished_one_is_not(tmp_path):
    client = create_app(tmp_path).test_client()
    write_run(tmp_path / "a", [run_record(), turn(0, "Ben", "x")], lock_pid=os.getpid())
    write_run(
        tmp_path / "b", [run_record(), turn(0, "Ben", "x"), {"type": "end", "status": "completed"}]
    )
    live = client.get("/run/a").text
    assert 'data-live="true"' in live and 'data-events="/events/a"' in live
    assert f'data-offset="{(tmp_path / "a" / "transcript.jsonl").stat().st_size}"' in live
    assert 'data-live="false"' in client.get("/run/b").text


def test_the_events_endpoint_pushes_an_appended_turn(tmp_path):
    run = write_run(tmp_path / "a", [run_record(), turn(0, "Ben", "x")], lock_pid=os.getpid())
    size = (run / "transcript.jsonl").stat().st_size
    client = create_app(tmp_path, poll_s=0.01).test_client()
    response = client.get(f"/events/a?offset={size}", buffered=False)
    assert response.mimetype == "text/event-stream"
    chunks = iter(response.response)
    assert next(chunks).startswith(b"retry:")
    threading.Timer(0.1, append, (run, turn(1, "Amara", "appended later"))).start()
    started = time.monotonic()
    data = next(chunks).decode()
    assert "appended later" in data and time.monotonic() - started < 2
    response.close()


def test_a_study_page_shows_conditions_progress_table_charts_and_run_links(tmp_path):
    study = tmp_path / "studies" / "s"
    write_run(study / "runs" / "r1", [run_record(), {"type": "end", "status": "completed"}])
    (study / "runs" / "r1" / "study.json").write_text('{"status": "completed"}')
    (study / "study.json").write_text('{"name": "s", "factors": {"layout": ["shared", "chat"]}, '
                                      '"runs": 2}')  # fmt: skip
    (study / "runs.csv").write_text("id,layout,status,turns\nr1,shared,completed,9\n")
    (study / "metrics.png").write_bytes(b"\x89PNG fake")
    client = create_app(tmp_path).test_client()
    page = client.get("/study/studies/s").text
    assert "<b>layout</b>: shared, chat" in page and "<b>1</b> of <b>2</b> runs" in page
    assert '<table class="data sortable" id="runs-csv">' in page and "<td>shared</td>" in page
    assert '<a href="/run/studies/s/runs/r1">r1</a>' in page
    chart = '<img src="/chart/studies/s/metrics.png"'
    assert f'<a href="/chart/studies/s/metrics.png" title="full size">{chart}' in page
    assert "/static/sort.js" in page
    assert client.get("/chart/studies/s/metrics.png").data == b"\x89PNG fake"
    assert "/study/studies/s" in client.get("/").text


@pytest.mark.parametrize(
    "url",
    ["/run/..", "/run/../outside", "/run/%2e%2e/outside", "/run/..%2foutside",
     "/run/%2Ftmp", "/run//etc", "/run/inside/../../outside", "/run/link", "/run/tlink",
     "/events/../outside", "/study/../outside", "/chart/../outside/metrics.png",
     "/chart/inside/../../outside/metrics.png", "/run/inside/transcript.jsonl", "/run/%00"],
    ids=["dotdot", "dotdot-dir", "encoded-dots", "encoded-slash", "encoded-absolute",
         "absolute", "climb", "dir-symlink", "transcript-symlink", "events", "study", "chart",
         "chart-climb", "file", "nul"],
)  # fmt: skip
def test_nothing_outside_the_root_is_served(tmp_path, url):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_run(outside, [run_record(), turn(0, "Ben", "SECRET")])
    (outside / "runs").mkdir()
    (outside / "study.json").write_text("{}")
    (outside / "metrics.png").write_bytes(b"SECRET")
    write_run(root / "inside", [run_record(), turn(0, "Ben", "fine")])
    (root / "link").symlink_to(outside)
    (root / "tlink").mkdir()
    (root / "tlink" / "transcript.jsonl").symlink_to(outside / "transcript.jsonl")
    client = create_app(root).test_client()
    assert client.get("/run/inside").status_code == 200
    response = client.get(url, follow_redirects=True)  # `//` is merged by a redirect
    assert response.status_code == 404 and b"SECRET" not in response.data


@pytest.mark.parametrize(
    "name,content,shown",
    [("report.md", "SECRET report", "SECRET"), ("runs.csv", "id,layout\nr1,SECRET\n", "SECRET"),
     ("study.json", '{"name": "SECRET", "runs": 2}', "SECRET"),
     ("runs/r2/transcript.jsonl", json.dumps(run_record()) + "\n", "runs/r2"),
     ("runs/r1/study.json", '{"status": "completed"}', "<b>1</b> of"),
     ("metrics.png", "SECRET", "metrics.png")],
    ids=["report", "runs-csv", "study-json", "run-transcript", "run-study-json", "chart"],
)  # fmt: skip
def test_a_study_shows_no_file_linked_from_outside_the_root(tmp_path, name, content, shown):
    root, outside = tmp_path / "root", tmp_path / "outside"
    study = root / "s"
    write_run(study / "runs" / "r1", [run_record(), {"type": "end", "status": "completed"}])
    (study / "study.json").write_text('{"name": "s", "runs": 2}')
    (study / "runs.csv").write_text("id,layout\nr1,shared\n")
    (study / name).parent.mkdir(parents=True, exist_ok=True)
    (study / name).write_text(content)  # the same file inside the root is shown
    assert shown in create_app(root).test_client().get("/study/s").text
    outside.mkdir()
    (outside / "secret").write_text(content)
    (study / name).unlink()
    (study / name).symlink_to(outside / "secret")
    client = create_app(root).test_client()
    for url in ("/study/s", "/"):
        page = client.get(url).text
        assert shown not in page and "SECRET" not in page
    assert client.get("/chart/s/metrics.png").status_code == 404


def test_the_index_reads_a_study_json_again_only_when_it_changed(tmp_path, monkeypatch):
    import roundtable.view.catalog as catalog

    study = tmp_path / "s"
    for name in ("r1", "r2"):
        write_run(study / "runs" / name, [run_record(), {"type": "end", "status": "completed"}])
        (study / "runs" / name / "study.json").write_text('{"status": "completed"}')
    (study / "study.json").write_text('{"name": "s", "runs": 2}')
    reads: list[str] = []
    real = catalog._read_json
    monkeypatch.setattr(catalog, "_read_json", lambda p: reads.append(p.parent.name) or real(p))
    client = create_app(tmp_path).test_client()
    assert "<b>2</b> of <b>2</b>" in client.get("/study/s").text
    assert sorted(reads) == ["r1", "r2", "s"]
    client.get("/")
    client.get("/")
    assert len(reads) == 3  # nothing changed: nothing read again
    (study / "runs" / "r1" / "study.json").write_text('{"status": "interrupted"}')
    assert "<b>1</b> of <b>2</b>" in client.get("/study/s").text and reads[3:] == ["r1"]


def test_pages_use_only_local_assets_and_forbid_inline_scripts(tmp_path):
    _run(tmp_path)
    client = create_app(tmp_path).test_client()
    response = client.get("/run/outputs/2026-11-20T10-00-00")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
        assert client.get(asset).status_code == 200


def test_every_view_asset_is_packaged():
    pyproject = (REPO / "pyproject.toml").read_text()
    globs = re.search(r'"roundtable.view" = \[(.*?)\]', pyproject)[1]
    patterns = re.findall(r'"([^"]+)"', globs)
    view = REPO / "roundtable" / "view"
    files = [p.relative_to(view) for d in ("templates", "static") for p in (view / d).iterdir()]
    assert files and all(any(f.match(p) for p in patterns) for f in files)


@pytest.mark.parametrize(
    "host,loopback",
    [("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("example.org", False)],
    ids=["v4", "v4-range", "v6", "name", "any", "any-v6", "lan", "other-name"],
)  # fmt: skip
def test_only_loopback_addresses_count_as_loopback(host, loopback):
    from roundtable.view.command import is_loopback

    assert is_loopback(host) is loopback


def test_view_of_a_missing_directory_is_one_error_line(tmp_path, capsys):
    from roundtable.cli import main

    assert main(["view", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"Error: {tmp_path / 'nope'}: not a directory; pass the " \
        "directory that holds the runs\n"  # fmt: skip
    assert main(["view"]) == 2  # the default, outputs/, does not exist yet either
    assert "Error: outputs: not a directory" in capsys.readouterr().err


def test_view_on_a_port_in_use_fails_in_one_line_without_a_warning(tmp_path, capsys):
    import socket

    from roundtable.cli import main

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(tmp_path), "--host", "0.0.0.0", "--port", str(port)]) == 1
    # Nothing was served, so there is nothing to warn about.
    assert capsys.readouterr().err.splitlines() == [
        f"Error: 0.0.0.0:{port}: cannot listen (Address already in use); "
        "pick another port with --port"
    ]


@pytest.mark.parametrize(
    "host,reason",
    [("nosuchhost.invalid", "Name or service not known"),
     ("192.0.2.1", "Cannot assign requested address")],
    ids=["unknown-name", "not-this-machine"],
)  # fmt: skip
def test_view_on_a_host_it_cannot_listen_on_says_check_host(tmp_path, capsys, host, reason):
    from roundtable.cli import main

    assert main(["view", str(tmp_path), "--host", host, "--port", "0"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"Error: {host}:0: cannot listen ({reason}); check --host"
    ]


@pytest.mark.parametrize("host", ["", " "], ids=["empty", "blank"])
def test_view_refuses_an_empty_host_in_one_line(tmp_path, capsys, host):
    from roundtable.cli import main

    assert main(["view", str(tmp_path), "--host", host]) == 2
    assert capsys.readouterr().err == (
        "Error: --host: is empty; give an address such as 127.0.0.1 or 0.0.0.0\n"
    )


def test_roundtable_view_serves_a_run_directory_given_as_the_root(tmp_path):
    import subprocess
    import sys
    import urllib.request

    run = _run(tmp_path)
    command = [sys.executable, "-m", "roundtable", "view", str(run), "--port", "0"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline() if server.stdout else ""
        url = re.search(r"at (http://127\.0\.0\.1:\d+/) \(Ctrl-C", line)[1]
        index = urllib.request.urlopen(url, timeout=5).read().decode()
        assert f'<a href="/run/.">{run.name}</a>' in index  # its name, not "."
        assert "No runs here yet" not in index
        page = urllib.request.urlopen(url + "run/", timeout=5).read().decode()
        assert "Hello there." in page and 'data-events="/events/."' in page
    finally:
        server.terminate()
        server.wait()
    assert server.stderr is not None and server.stderr.read() == ""  # no line per request


def test_the_diagram_slot_takes_trusted_markup_and_escapes_a_plain_string(tmp_path):
    from markupsafe import Markup

    run = _run(tmp_path)
    svg = '<svg id="moderator-diagram"><text>start</text></svg>'
    assert svg in standalone_html(run, diagram_svg=Markup(svg))
    assert "&lt;svg" in standalone_html(run, diagram_svg=svg)  # type: ignore[arg-type]
    # Without one, the export draws the moderator's diagram from the transition table.
    assert 'class="diagram"' in standalone_html(run) and "discussion_turns_left" in standalone_html(
        run
    )
    assert 'class="diagram"' not in create_app(tmp_path).test_client().get(
        "/run/outputs/2026-11-20T10-00-00").text  # fmt: skip
    seen = []
    app = create_app(tmp_path, diagram=lambda record: seen.append(record) or Markup(svg))
    assert svg in app.test_client().get("/run/outputs/2026-11-20T10-00-00").text
    assert seen[0]["settings"] == {"seed": 7}  # the run's own record: its settings


def test_the_index_notices_a_writer_that_died_even_when_the_transcript_did_not_change(tmp_path):
    run = write_run(tmp_path / "a", [run_record(), turn(0, "Ben", "x")], lock_pid=os.getpid())
    client = create_app(tmp_path).test_client()
    assert "status-running" in client.get("/").text
    (run / ".lock").write_text("999999999")  # its pid is gone now
    assert "status-stopped" in client.get("/").text


def test_viewing_a_study_directory_lists_the_study_and_no_empty_runs_section(tmp_path):
    study = tmp_path / "layouts"
    write_run(study / "runs" / "r1", [run_record(), {"type": "end", "status": "completed"}])
    (study / "study.json").write_text('{"name": "layouts", "runs": 1}')
    page = create_app(study).test_client().get("/").text
    assert '<a href="/study/.">layouts</a>' in page
    assert "<h2>Runs</h2>" not in page and "No runs here yet" not in page
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No runs here yet" in create_app(empty).test_client().get("/").text


def test_every_page_has_a_local_icon_and_the_index_the_wide_layout(tmp_path):
    client = create_app(tmp_path).test_client()
    page = client.get("/").text
    assert '<link rel="icon" href="/favicon.ico"' in page and '<body class="wide">' in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert icon.data.startswith(b"<svg")


def test_turn_details_are_label_value_pairs_in_one_grid(tmp_path):
    page = standalone_html(long_run(tmp_path / "run", 3))
    dl = re.search(r"<dl>(.*?)</dl>", page, re.S)[1]
    assert "<div" not in dl  # no wrappers: every pair takes the grid's two columns
    assert re.fullmatch(r"(\s*<dt>[^<]*</dt><dd>[^<]*</dd>)+\s*", dl)
    assert "grid-template-columns: max-content minmax(0, 1fr)" in page
