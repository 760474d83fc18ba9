from __future__ import annotations

from pathlib import Path

import pytest

from roundtable.config import (
    DECLARATIONS,
    PERSONA_SETTINGS,
    PLACEHOLDER_API_KEY,
    RESUMABLE,
    SAMPLING,
    Settings,
    api_key,
    check,
    from_string,
    load_settings,
    offline_notice,
    redact_url,
    settings_markdown,
)
from roundtable.errors import InputError


def test_defaults_without_any_file(tmp_path):
    settings, used = load_settings(tmp_path, env={})
    assert settings == Settings() and used is None


def test_precedence_flag_over_env_over_yaml_over_default(tmp_path):
    (tmp_path / "roundtable.yaml").write_text("turns: 5\nmax_tokens: 50\nseed: 1\n")
    env = {"ROUNDTABLE_MAX_TOKENS": "70", "ROUNDTABLE_SEED": "2"}
    settings, used = load_settings(tmp_path, env=env, flags={"seed": "3"})
    assert (settings.turns, settings.max_tokens, settings.seed) == (5, 70, 3)
    assert (
        settings.wrap_up_turns == Settings().wrap_up_turns and used == tmp_path / "roundtable.yaml"
    )


def test_openai_base_url_env_and_roundtable_override(tmp_path):
    assert (
        load_settings(tmp_path, env={"OPENAI_BASE_URL": "http://h:1/v1"})[0].base_url
        == "http://h:1/v1"
    )
    env = {"OPENAI_BASE_URL": "http://h:1/v1", "ROUNDTABLE_BASE_URL": "http://r:2/v1"}
    assert load_settings(tmp_path, env=env)[0].base_url == "http://r:2/v1"


@pytest.mark.parametrize(
    "yaml_text,message",
    [
        ("turnz: 3\n", 'unknown setting "turnz" (did you mean "turns"?)'),
        ("turns: 0\n", '"turns": must be an integer >= 1, got 0'),
        ("turns: many\n", 'got "many"'),
        ("introductions: maybe\n", "true or false"),
        ("temperature_scale: .nan\n", "a number from 0 to 2"),
        ("base_url: localhost:8000\n", "http:// or https:// URL"),
        ("- a list\n", "expected a mapping of settings"),
        ("turns: [\n", "invalid YAML"),
    ],
    ids=["unknown-key", "zero", "word", "bool", "nan", "url", "list", "syntax"],
)
def test_bad_yaml_settings(tmp_path, yaml_text, message):
    (tmp_path / "roundtable.yaml").write_text(yaml_text)
    with pytest.raises(InputError) as exc:
        load_settings(tmp_path, env={})
    assert str(exc.value).startswith(str(tmp_path / "roundtable.yaml")) and message in str(
        exc.value
    )


def test_bad_env_and_flag_values_name_their_source(tmp_path):
    with pytest.raises(InputError, match=r"^ROUNDTABLE_TURNS: must be an integer >= 1"):
        load_settings(tmp_path, env={"ROUNDTABLE_TURNS": "lots"})
    with pytest.raises(InputError, match=r"^--max-tokens: must be an integer >= 1, got -1$"):
        load_settings(tmp_path, env={}, flags={"max_tokens": "-1"})


def test_wrap_up_cannot_exceed_turns(tmp_path):
    with pytest.raises(InputError, match=r"wrap_up_turns \(5\) must not exceed turns \(3\)"):
        load_settings(tmp_path, env={}, flags={"turns": "3", "wrap_up_turns": "5"})


def test_missing_api_key_is_a_placeholder_and_url_credentials_are_redacted():
    assert api_key(Settings(), env={}) == PLACEHOLDER_API_KEY
    assert api_key(Settings(api_key_env="MY_KEY"), env={"MY_KEY": "sk-1"}) == "sk-1"
    assert redact_url("https://user:pw@host:8443/v1") == "https://***@host:8443/v1"
    assert "pw" not in str(Settings(base_url="https://u:pw@h/v1").to_dict())


def test_temperature_scale():
    assert Settings(temperature_scale=1.5).temperature(0.6) == 0.9


README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_declaration():
    text = README.read_text(encoding="utf-8")
    start = text.index("| setting | default | flag |")
    end = text.index("\n\n", start)
    assert text[start : end + 1] == settings_markdown(), (
        "README.md's settings table differs from roundtable/config.py; paste in the output of "
        "python -c \"from roundtable.config import settings_markdown as m; print(m(), end='')\""
    )


def test_declarations_derive_types_nullability_and_roles():
    assert (DECLARATIONS["turns"].kind, DECLARATIONS["turns"].nullable) == (int, False)
    assert (DECLARATIONS["seed"].kind, DECLARATIONS["seed"].nullable) == (int, True)
    assert DECLARATIONS["extra_body"].kind is dict and DECLARATIONS["extra_body"].flag is None
    assert DECLARATIONS["base_url"].env == ("ROUNDTABLE_BASE_URL", "OPENAI_BASE_URL")
    assert DECLARATIONS["stream"].flag == "--no-stream"
    assert RESUMABLE == {"base_url", "model", "api_key_env", "timeout", "retries", "retry_wait",
                         "compat", "stream", "selector_base_url", "selector_model"}  # fmt: skip
    assert SAMPLING == ("top_p", "frequency_penalty", "presence_penalty", "extra_body")
    assert "seed" in PERSONA_SETTINGS and "turns" not in PERSONA_SETTINGS
    for d in DECLARATIONS.values():  # what a later declaration must not forget
        assert d.help and d.rule.allowed and (d.unset or not d.nullable), d.name
        assert d.flag or d.kind is dict, d.name


@pytest.mark.parametrize(
    "name,text,value",
    [
        ("timeout", "5", 5.0),
        ("seed", "null", None),
        ("seed", "", None),
        ("stream", "off", False),
        ("extra_body", '{"min_p": 0.1}', {"min_p": 0.1}),
        ("compat", " no-system ", "no-system"),
    ],
    ids=["int-to-float", "null", "empty-is-null", "bool-word", "json", "stripped"],
)
def test_strings_convert_by_declared_type(name, text, value):
    converted = check(name, from_string(name, text), "x")
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://h/v1?key=abc", "https://h/v1?key=***"),
        ("https://h/v1?api-key=abc&x=1", "https://h/v1?api-key=***&x=1"),
        ("https://h/v1?API_KEY=abc", "https://h/v1?API_KEY=***"),
        ("https://h/v1?apikey=a&token=b", "https://h/v1?apikey=***&token=***"),
        ("https://h/v1?access_token=abc", "https://h/v1?access_token=***"),
        ("https://u:p@h/v1?sig=abc&flag", "https://***@h/v1?sig=***&flag"),
        ("https://h/v1?model=m&keyword=k", "https://h/v1?model=m&keyword=k"),
    ],
    ids=["key", "api-key", "api_key", "apikey-token", "access_token", "userinfo-and-sig", "kept"],
)
def test_credentials_in_the_query_string_are_masked(url, expected):
    assert redact_url(url) == expected
    assert "abc" not in str(Settings(base_url=url).to_dict())


@pytest.mark.parametrize(
    "yaml_text,env,flags",
    [
        ("", {}, {"turns": "1"}),
        ("wrap_up_turns: 3\n", {}, {"turns": "1"}),
        ("wrap_up_turns: 3\n", {"ROUNDTABLE_TURNS": "1"}, {}),
    ],
    ids=["default", "file-under-flag", "file-under-env"],
)
def test_a_wrap_up_set_more_weakly_than_turns_shrinks_to_fit(tmp_path, yaml_text, env, flags):
    (tmp_path / "roundtable.yaml").write_text(yaml_text)
    settings, _ = load_settings(tmp_path, env=env, flags=flags)
    assert (settings.turns, settings.wrap_up_turns) == (1, 1)


@pytest.mark.parametrize(
    "yaml_text,env,flags,message",
    [
        ("", {}, {"turns": "3", "wrap_up_turns": "5"},
         "^--wrap-up-turns: wrap_up_turns \\(5\\) must not exceed turns \\(3\\); lower "
         "--wrap-up-turns to 3 or raise --turns$"),
        ("wrap_up_turns: 5\nturns: 3\n", {}, {},
         "roundtable.yaml: wrap_up_turns \\(5\\) .*; add --wrap-up-turns 3, lower "
         "wrap_up_turns in roundtable.yaml to 3 or raise turns in roundtable.yaml$"),
        ("turns: 3\n", {"ROUNDTABLE_WRAP_UP_TURNS": "5"}, {},
         "^ROUNDTABLE_WRAP_UP_TURNS: .*; add --wrap-up-turns 3, lower ROUNDTABLE_WRAP_UP_TURNS "
         "to 3 or raise turns in roundtable.yaml$"),
    ],
    ids=["flags", "yaml", "env"],
)  # fmt: skip
def test_explicit_wrap_up_over_turns_says_what_to_change(tmp_path, yaml_text, env, flags, message):
    (tmp_path / "roundtable.yaml").write_text(yaml_text)
    with pytest.raises(InputError, match=message):
        load_settings(tmp_path, env=env, flags=flags)


def test_roundtable_yml_is_read_and_two_files_are_refused(tmp_path):
    (tmp_path / "roundtable.yml").write_text("turns: 7\n")
    settings, used = load_settings(tmp_path, env={})
    assert settings.turns == 7 and used == tmp_path / "roundtable.yml"
    (tmp_path / "roundtable.yaml").write_text("turns: 8\n")
    with pytest.raises(InputError, match="roundtable.yml: roundtable.yaml is here too"):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize(
    "text",
    ["turns: 3\nturns: 4\n", "extra_body:\n  min_p: 1\n  min_p: 2\n"],
    ids=["top-level", "nested"],
)
def test_duplicate_keys_in_settings_are_an_error(tmp_path, text):
    (tmp_path / "roundtable.yaml").write_text(text)
    with pytest.raises(
        InputError, match=r"roundtable.yaml: invalid YAML at line \d+.*duplicate key"
    ):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize(
    "base_url,forced,expected",
    [
        (None, False, "roundtable: no server configured; using the built-in offline dummy "
         "model at http://d/v1 (set --base-url to use a real model)"),
        ("http://u:pw@gpu:8000/v1", True, "roundtable: --offline overrides the configured base "
         "URL (http://***@gpu:8000/v1); using the built-in offline dummy model at http://d/v1"),
        (None, True, "roundtable: --offline: using the built-in offline dummy model at "
         "http://d/v1"),
    ],
    ids=["nothing-configured", "offline-over-url", "offline-alone"],
)  # fmt: skip
def test_offline_notice_says_why(base_url, forced, expected):
    assert offline_notice(Settings(base_url=base_url), forced, "http://d/v1") == expected


def test_text_that_yaml_reads_as_a_number_gets_a_quoting_hint(tmp_path):
    (tmp_path / "roundtable.yaml").write_text("model: 2024\n")
    with pytest.raises(InputError, match='"model": must be a model name.*got 2024; YAML reads it '
                       'as 2024: put the text in quotes, e.g. model: "2024"$'):  # fmt: skip
        load_settings(tmp_path, env={})


def test_a_persona_field_in_the_settings_file_is_named_as_one(tmp_path):
    (tmp_path / "roundtable.yaml").write_text("color: red\n")
    with pytest.raises(InputError, match=r'"color"; color is a persona field: set it in a file'):
        load_settings(tmp_path)


@pytest.mark.parametrize("key", ["sk-1\n", "sk-1\r\nX-Evil: 1", "sk-\u00e9"])
def test_an_api_key_that_http_cannot_carry_is_an_input_error_naming_the_variable(key):
    with pytest.raises(InputError) as exc:
        api_key(Settings(api_key_env="MY_KEY"), {"MY_KEY": key})
    assert str(exc.value).startswith("MY_KEY: the API key holds") and "sk-" not in str(exc.value)
