"""roundtable graph: the moderator's diagram comes from TRANSITIONS and cannot drift."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from roundtable import graph, moderator
from roundtable.cli import main
from roundtable.config import Settings
from roundtable.moderator import Phase, always

README = Path(__file__).resolve().parents[1] / "README.md"
SVG = "{http://www.w3.org/2000/svg}"
ROWS = sum(len(rows) for rows in moderator.TRANSITIONS.values())


def test_the_readme_diagram_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- graph:begin[^>]*-->\n```mermaid\n(.*?)```\n<!-- graph:end -->",
                      text, re.DOTALL)  # fmt: skip
    assert block, "README: the moderator's generated mermaid block is missing"
    assert block[1] == graph.render("mermaid"), "README is stale: paste `roundtable graph`"


def quorum_reached(m) -> bool:
    return m.turns_done < 3


@pytest.mark.parametrize("fmt", graph.FORMATS)
def test_changing_the_table_changes_every_format(monkeypatch, fmt):
    before = graph.render(fmt)
    table = dict(moderator.TRANSITIONS)
    table[Phase.DISCUSSION] = ((quorum_reached, Phase.SUMMARY), (always, Phase.WRAP_UP))
    monkeypatch.setattr(moderator, "TRANSITIONS", table)
    after = graph.render(fmt)
    assert after != before and "quorum_reached" in after
    assert ("discussion_turns_left" in after) is True  # still the opening's row
    if fmt == "mermaid":
        assert "    discussion --> summary: quorum_reached\n" in after
        assert "discussion --> discussion" not in after


def test_mermaid_lists_every_row_with_start_and_end():
    lines = graph.render("mermaid").splitlines()
    assert lines[:2] == ["stateDiagram-v2", "    [*] --> opening"]
    assert lines[-1] == "    done --> [*]" and len(lines) == ROWS + 3


def test_dot_is_a_digraph_with_one_edge_per_row():
    dot = graph.render("dot")
    assert dot.startswith("digraph moderator {\n") and dot.endswith("}\n")
    assert dot.count("{") == dot.count("}") == 1
    edges = re.findall(r'^    "(\w+)" -> "(\w+)" \[label="([^"\\]*)"\];$', dot, re.MULTILINE)
    assert len(edges) == ROWS and ("wrap_up", "summary", "always") in edges


def test_svg_is_well_formed_and_shows_every_state_and_label():
    root = ET.fromstring(graph.render("svg"))
    assert root.tag == f"{SVG}svg"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {p.value for p in Phase} <= set(texts)
    assert {"discussion_turns_left", "wrap_up_turns_left", "always"} <= set(texts)
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge"]
    assert len(edges) == ROWS + 1  # and the arrow from the start dot


def test_names_are_escaped_in_every_format(monkeypatch):
    def guard(m) -> bool:
        return True

    guard.__name__ = '<script>"a" & b;c:d</script>'
    table = dict(moderator.TRANSITIONS)
    table[Phase.SUMMARY] = ((guard, Phase.DONE),)
    monkeypatch.setattr(moderator, "TRANSITIONS", table)
    root = ET.fromstring(graph.render("svg"))
    assert guard.__name__ in [t.text for t in root.iter(f"{SVG}text")]
    assert "<script>" not in graph.render("svg")
    assert 'label="<script>\\"a\\" & b;c:d</script>"' in graph.render("dot")
    line = graph.render("mermaid").splitlines()[-2]
    assert line == "    summary --> done: #lt;script#gt;#quot;a#quot; & b#59;c#58;d#lt;/script#gt;"


def test_settings_annotate_the_guards_with_where_they_stop_holding(monkeypatch):
    dot = graph.render("dot", Settings(turns=10, wrap_up_turns=3))
    assert '"discussion" -> "discussion" [label="discussion_turns_left (turns done < 7)"]' in dot
    assert '"wrap_up" -> "wrap_up" [label="wrap_up_turns_left (turns done < 10)"]' in dot
    assert '"summary" -> "done" [label="always"]' in dot
    # The figure is the guard's own: a changed guard changes it.
    monkeypatch.setattr(moderator.TRANSITIONS[Phase.WRAP_UP][0][0], "__code__",
                        quorum_reached.__code__)  # fmt: skip
    assert "wrap_up_turns_left (turns done < 3)" in graph.render("dot", Settings(turns=10))


@pytest.mark.parametrize(
    "argv,code,expected",
    [
        (["graph"], 0, "    discussion --> discussion: discussion_turns_left\n"),
        (["graph", "-f", "dot", "--turns", "9", "--wrap-up-turns", "1"], 0, "(turns done < 8)"),
        (["graph", "-f", "svg"], 0, "<svg "),
        (["graph", "-f", "png"], 2, "Error: --format: unknown format 'png'"),
        (["graph", "--table", "nowhere"], 2, "Error: nowhere: table directory not found"),
        (
            ["graph", "--table", "roundtable.yaml"],
            2,
            "Error: roundtable.yaml: is a file, not a table directory",
        ),
    ],
    ids=["mermaid", "dot-with-settings", "svg", "unknown-format", "no-table", "file-as-table"],
)
def test_cli(capsys, argv, code, expected):
    Path("roundtable.yaml").write_text("turns: 9\n")  # a file, where a table is expected
    assert main(argv) == code
    out, err = capsys.readouterr()
    assert expected in (out if code == 0 else err)
    assert code == 0 or len(err.splitlines()) == 1


def test_help_says_a_bare_graph_reads_no_table(capsys):
    with pytest.raises(SystemExit):
        main(["graph", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "this table's settings (default: none, the bare diagram;" in out
    assert "(default: the current directory)" not in out
