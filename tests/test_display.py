from __future__ import annotations

import io

import pytest
from colorama import Style

from roundtable.display import Display, StreamSanitizer, assign_colors, color_code, sanitize

EVIL = (
    "Hi \x1b[31mred\x1b[0m \x1b]0;pwned\x07title \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ "
    "bell\x07 \x9b2J cr\rX tab\tnl\n \x1bPdcs\x1b\\ end\x1b"
)


def test_sanitize_removes_escapes_keeps_newlines_and_tabs():
    assert sanitize(EVIL) == "Hi red title link bell  crX tab\tnl\n  end"
    assert sanitize("a\r\nb") == "a\r\nb"


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_stream_sanitizer_matches_whole_text_sanitizing(size):
    s = StreamSanitizer()
    out = "".join(s.feed(EVIL[i : i + size]) for i in range(0, len(EVIL), size)) + s.flush()
    assert out == sanitize(EVIL).replace("\x1b", "")
    assert "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize("n", [1, 4, 12, 13, 50, 300])
def test_any_number_of_participants_gets_distinct_colours(n):
    colours = assign_colors([None] * n)
    assert len(set(colours)) == n and len({color_code(c) for c in colours}) == n


def test_requested_colours_are_kept_and_not_reused():
    colours = assign_colors(["bright_cyan", None, "#112233", None])
    assert colours[0] == "bright_cyan" and colours[2] == "#112233"
    assert len(set(colours)) == 4


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def show(out, **kw) -> str:
    d = Display(out, io.StringIO(), **kw)
    d.set_colors(["Ann"], ["red"])
    d.begin_turn("Ann")
    d.text("hello \x1b]0;x\x07world")
    d.end_turn()
    return out.getvalue()


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    assert show(io.StringIO()) == "Ann: hello world\n\n"
    assert "\x1b[31m" in show(Tty())
    assert show(Tty(), color=False) == "Ann: hello world\n\n"
    monkeypatch.setenv("NO_COLOR", "1")
    assert show(Tty()) == "Ann: hello world\n\n"


def test_quiet_shows_nothing_on_stdout():
    assert show(io.StringIO(), quiet=True) == ""


def interleave(d: Display) -> None:
    d.set_colors(["Ann"], ["red"])
    d.begin_turn("Ann", "closing")
    d.text("Hello ")
    d.notice("roundtable: retrying")
    d.text(" world.")
    d.notice("roundtable: folded")
    d.end_turn()
    d.begin_turn("Ann")
    d.text("Bye.")
    d.notice("roundtable: note")
    d.end_turn()


def test_a_notice_during_a_turn_gets_its_own_line_and_the_turn_its_prefix_again():
    screen = io.StringIO()  # stdout and stderr on one terminal
    interleave(Display(screen, screen))
    assert screen.getvalue() == (
        "Ann: (closing) Hello \nroundtable: retrying\nAnn: (closing) world.\n"
        "roundtable: folded\n\n"
        "Ann: Bye.\nroundtable: note\n\n"
    )


def test_the_prefix_shown_again_keeps_its_colour():
    screen = Tty()
    d = Display(screen, screen)
    d.set_colors(["Ann"], ["red"])
    d.begin_turn("Ann")
    d.text("a")
    d.notice("n")
    d.text("b")
    tag = f"{color_code('red')}{Style.BRIGHT}Ann:{Style.RESET_ALL} "
    assert screen.getvalue() == f"{tag}a\n{Style.DIM}n{Style.RESET_ALL}\n{tag}b"


def test_notices_elsewhere_leave_the_speakers_line_alone():
    out, err = io.StringIO(), io.StringIO()
    interleave(Display(out, err))
    assert out.getvalue() == "Ann: (closing) Hello  world.\n\nAnn: Bye.\n\n"
    assert err.getvalue() == "roundtable: retrying\nroundtable: folded\nroundtable: note\n"


@pytest.mark.parametrize(
    "quiet,verbose,expected",
    [
        (False, False, "notice\nresult\n"),
        (True, False, "result\n"),
        (False, True, "notice\nresult\ndebug\n"),
    ],
    ids=["default", "quiet", "verbose"],
)
def test_quiet_shows_only_the_result_and_verbose_adds_debug(quiet, verbose, expected):
    err = io.StringIO()
    d = Display(io.StringIO(), err, quiet=quiet, verbose=verbose)
    d.notice("notice")
    d.result("result")
    d.debug("debug")
    assert err.getvalue() == expected


def test_a_dropped_attempt_is_marked_discarded_before_the_re_ask():
    # Its text was streamed already; without a mark it read like a turn that counted.
    out, err = io.StringIO(), io.StringIO()
    d = Display(out, err)
    d.set_colors(["Ann"], ["red"])
    d.begin_turn("Ann")
    d.text("Background: a recited prompt")
    d.abort_turn("the reply recited its instructions; asking again")
    d.begin_turn("Ann")
    d.text("A real reply.")
    d.end_turn()
    assert out.getvalue() == (
        "Ann: Background: a recited prompt [discarded]\nAnn: A real reply.\n\n"
    )
    assert err.getvalue() == "roundtable: the reply recited its instructions; asking again\n"
