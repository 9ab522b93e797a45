"""Settings from defaults, a TOML file and the environment; bad values named clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import ConfigError, Settings, load_settings


def test_defaults_work_on_one_machine():
    """With nothing set, the hub uses the embedded database and the in-process bus."""
    settings = load_settings(environ={})
    assert settings == Settings()
    assert (settings.database_url, settings.redis_url) == ("", "")
    assert settings.blob_path == Path("var/blobs")


def test_the_environment_overrides_the_file_which_overrides_defaults(tmp_path: Path):
    """Precedence: defaults < TOML file < HALLHUB_* environment < explicit overrides."""
    config = tmp_path / "hub.toml"
    config.write_text('http_port = 9000\ngateway_port = 9001\nlog_level = "debug"\n')
    settings = load_settings(
        str(config),
        environ={"HALLHUB_GATEWAY_PORT": "9100", "HALLHUB_ALLOWED_ORIGINS": "http://a, http://b"},
        log_level="warning",
    )
    assert (settings.http_port, settings.gateway_port) == (9000, 9100)
    assert settings.allowed_origins == ["http://a", "http://b"]
    assert settings.log_level == "warning"


def test_the_config_file_can_come_from_the_environment(tmp_path: Path):
    """HALLHUB_CONFIG names the TOML file."""
    config = tmp_path / "hub.toml"
    config.write_text("tick_seconds = 2.5\n")
    assert load_settings(environ={"HALLHUB_CONFIG": str(config)}).tick_seconds == 2.5


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"HALLHUB_HTTP_PORT": "eighty"}, "HALLHUB_HTTP_PORT: Expected `int`"),
        ({"HALLHUB_HTTP_PORT": "70000"}, "HALLHUB_HTTP_PORT: port 70000"),
        ({"HALLHUB_TICK_SECONDS": "0"}, "HALLHUB_TICK_SECONDS: must be greater than 0"),
        ({"HALLHUB_LOG_LEVEL": "loud"}, "HALLHUB_LOG_LEVEL"),
        ({"HALLHUB_DB_POOL_MAX": "1", "HALLHUB_DB_POOL_MIN": "3"}, "HALLHUB_DB_POOL_MAX"),
        ({"HALLHUB_NO_SUCH": "1"}, "HALLHUB_NO_SUCH: unknown setting"),
        ({"HALLHUB_CONFIG": "/nonexistent/hub.toml"}, "HALLHUB_CONFIG: cannot read"),
    ],
)
def test_an_invalid_setting_gives_one_message_naming_it(environ: dict[str, str], message: str):
    """Each bad value raises ConfigError whose message starts with the setting's name."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert message in str(caught.value)


def test_an_unknown_key_in_the_file_is_named(tmp_path: Path):
    """A typo in the TOML file is reported with the file and the key."""
    config = tmp_path / "hub.toml"
    config.write_text("http_prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'http_prot'"):
        load_settings(str(config), environ={})


def test_a_broken_toml_file_is_reported(tmp_path: Path):
    """A file that is not TOML names the file."""
    config = tmp_path / "hub.toml"
    config.write_text("http_port = = 1\n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(str(config), environ={})
