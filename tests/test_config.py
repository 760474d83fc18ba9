from __future__ import annotations

import pytest

from roundtable.config import PLACEHOLDER_API_KEY, Settings, api_key, load_settings, redact_url
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
