"""agent.toml (devices/agent/config.py): the contract's example loads, every mistake names its
field, tokens come from the file or a token file, ports have one owner but panels share."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devices.agent.config import (
    ConfigError,
    EvaluatorConfig,
    PrinterConfig,
    ScannerConfig,
    WindowDisplayConfig,
    load_config,
    parse_config,
)

DOC = Path(__file__).parents[3] / "docs" / "devices" / "agent.md"

CONTRACT_EXAMPLE = """
hub = "ws://127.0.0.1:8000/ws"
http = "http://127.0.0.1:8000"
buffer = 1000

[[device]]
kind = "printer"
token = "t-printer"
port = "/dev/ttyUSB0"
baudrate = 9600
poll_seconds = 2.0

[[device]]
kind = "evaluator"
token = "t-pad"
link = "serial"
port = "/dev/ttyUSB1"
window_id = 12

[[device]]
kind = "window_display"
token = "t-panel"
port = "/dev/ttyUSB2"
address = 3
window_id = 12
hall_id = 1

[[device]]
kind = "scanner"
token = "t-scanner"
folder = "C:/scans"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_contract_example_loads(tmp_path: Path) -> None:
    """The example of the device contract is a valid agent.toml, defaults filled in."""
    config = load_config(write(tmp_path, CONTRACT_EXAMPLE))
    printer, pad, panel, scanner = config.device
    assert isinstance(printer, PrinterConfig) and printer.asb and printer.width_chars == 42
    assert isinstance(pad, EvaluatorConfig) and pad.timeout_s == 30 and pad.window_id == 12
    assert isinstance(panel, WindowDisplayConfig) and panel.address == 3
    assert isinstance(scanner, ScannerConfig) and scanner.max_bytes == 20 * 1024 * 1024
    assert [d.name for d in config.device] == [
        "printer-1",
        "evaluator-2",
        "window_display-3",
        "scanner-4",
    ]
    assert [d.kind for d in config.device] == ["printer", "evaluator", "window_display", "scanner"]


def test_the_example_in_the_agent_doc_loads(tmp_path: Path) -> None:
    """docs/devices/agent.md's full example (its first toml block) is valid."""
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None
    (tmp_path / "printer.token").write_text("t\n", encoding="utf-8")
    config = load_config(write(tmp_path, block.group(1)))
    assert len(config.device) >= 6


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ('kind = "printer"\ntoken = "t"', "missing required field `port` - at `$.device[0]`"),
        ('kind = "printer"\nport = "p"', "exactly one of `token` and `token_file`"),
        ('kind = "printer"\ntoken = "t"\nport = "p"\nbaudrate = "fast"', "$.device[0].baudrate"),
        ('kind = "printer"\ntoken = "t"\nport = "p"\npaper = 3', "unknown field `paper`"),
        ('kind = "fax"\ntoken = "t"', "Invalid value 'fax' - at `$.device[0].kind`"),
        ('kind = "evaluator"\ntoken = "t"\nlink = "ble"', "needs `address`"),
        (
            'kind = "window_display"\ntoken = "t"\nport = "p"\naddress = 0',
            "Expected `int` >= 1 - at `$.device[0].address`",
        ),
    ],
)
def test_a_bad_device_table_names_the_field(tmp_path: Path, device: str, message: str) -> None:
    """Each mistake is a ConfigError naming the file and the field's path."""
    path = write(tmp_path, f'hub = "ws://h/"\n[[device]]\n{device}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_not_toml_and_a_missing_file_are_config_errors(tmp_path: Path) -> None:
    """A syntax error and a missing file are ConfigErrors too, not tracebacks."""
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "hub = \n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_token_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    """token_file is found next to agent.toml, stripped; a missing one names its field."""
    (tmp_path / "printer.token").write_text("secret-token\n", encoding="utf-8")
    text = (
        'hub = "ws://h/"\n[[device]]\nkind = "printer"\ntoken_file = "printer.token"\nport = "p"\n'
    )
    (device,) = load_config(write(tmp_path, text)).device
    assert (device.token, device.token_file) == ("secret-token", None)
    (tmp_path / "printer.token").unlink()
    with pytest.raises(ConfigError, match=r"\$\.device\[0\]\.token_file"):
        load_config(tmp_path / "agent.toml")


def test_panels_share_a_port_but_other_devices_do_not() -> None:
    """Two panels on one RS-485 port are fine (COM3 and com3 are one port); a printer on a
    panel's port, two panels at one address, or a scanner without http are refused."""
    panel = {"kind": "window_display", "token": "t", "port": "COM3"}
    ok = parse_config(
        {
            "hub": "ws://h/",
            "device": [{**panel, "address": 3}, {**panel, "port": "com3", "address": 4}],
        }
    )
    assert len(ok.device) == 2
    with pytest.raises(
        ConfigError, match=r"already used by \$\.device\[0\] - at `\$\.device\[1\]\.port`"
    ):
        parse_config(
            {
                "hub": "ws://h/",
                "device": [
                    {**panel, "address": 3},
                    {"kind": "printer", "token": "t", "port": "COM3"},
                ],
            }
        )
    with pytest.raises(ConfigError, match="two panels at address 3"):
        parse_config(
            {"hub": "ws://h/", "device": [{**panel, "address": 3}, {**panel, "address": 3}]}
        )
    with pytest.raises(ConfigError, match="set `http`"):
        parse_config(
            {"hub": "ws://h/", "device": [{"kind": "scanner", "token": "t", "folder": "x"}]}
        )
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        parse_config({"hub": "http://h/"})
