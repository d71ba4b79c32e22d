"""Options: one typed immutable object per backend, resolved once with precedence."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mesobatch import OptionError
from mesobatch.integration.local import LocalOptions
from mesobatch.scheduler.options import add_arguments, load_config_file, parse_size, resolve


@pytest.mark.parametrize(("text", "value"), [
    ("2G", 2 * 1024**3), ("512M", 512 * 1024**2), ("512m", 512 * 1024**2), ("1.5K", 1536),
    ("100", 100), ("2GiB", 2 * 1024**3), ("2GB", 2 * 1024**3), ("1Ti", 1024**4), (4096, 4096),
])
def test_human_sizes(text: str | int, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["12Q", "", "G", "-1G", "1..2G", True, -5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError, match="expected a size such as 512M or 2G"):
        parse_size(bad)


def test_precedence_defaults_config_env_arguments(tmp_path: Path) -> None:
    config = {"maxCores": 3, "killGracePeriod": 9, "local": {"maxMemory": "3G"}}
    env = {"MESOBATCH_MAX_CORES": "5", "MESOBATCH_MAX_DISK": "7G"}
    o = resolve(LocalOptions, {"maxCores": "6"}, backend="local", config=config, environ=env)
    assert o.max_cores == 6.0  # argument beats environment beats config
    assert o.max_disk == 7 * 1024**3  # environment beats default
    assert o.max_memory == 3 * 1024**3  # backend table of the config file
    assert o.kill_grace_period == 9.0  # config beats default
    o = resolve(LocalOptions, {}, backend="local", config=config, environ=env)
    assert o.max_cores == 5.0
    o = resolve(LocalOptions, {}, backend="local", config=config, environ={})
    assert o.max_cores == 3.0
    with pytest.raises(Exception):  # noqa: B017 - frozen
        o.max_cores = 1  # type: ignore[misc]


def test_bad_values_name_the_option_value_and_what_is_allowed() -> None:
    with pytest.raises(OptionError) as e:
        resolve(LocalOptions, {"maxMemory": "12Q"}, environ={})
    assert str(e.value).startswith("invalid value '12Q' for --maxMemory: expected a size")
    with pytest.raises(OptionError, match="invalid value '-1' for --maxCores: expected a "
                                          "positive number"):
        resolve(LocalOptions, {"maxCores": "-1"}, environ={})
    with pytest.raises(OptionError, match=r"from \$MESOBATCH_MAX_CORES"):
        resolve(LocalOptions, {}, environ={"MESOBATCH_MAX_CORES": "lots"})


def test_unknown_option_suggests_the_closest() -> None:
    with pytest.raises(OptionError, match="unknown option 'maxCore'; did you mean maxCores"):
        resolve(LocalOptions, {"maxCore": 2}, environ={})
    with pytest.raises(OptionError, match="unknown option 'bogus' in cfg"):
        resolve(LocalOptions, {}, config={"bogus": 1}, config_path="cfg", environ={})


def test_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("maxCores = [")
    with pytest.raises(OptionError, match="is not valid TOML"):
        load_config_file(bad)
    with pytest.raises(OptionError, match="cannot read config file"):
        load_config_file(tmp_path / "missing.toml")


def test_argparse_integration_keeps_dests_unique() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(LocalOptions, parser)
    args = parser.parse_args(["--maxCores", "2", "--maxMemory", "1G"])
    assert args.max_cores == "2" and args.max_memory == "1G" and args.max_disk is None
    o = resolve(LocalOptions, vars(args), environ={})
    assert o.max_cores == 2.0 and o.max_memory == 1024**3
