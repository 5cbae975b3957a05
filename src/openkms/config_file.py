"""``--config FILE`` (or ``OPENKMS_CONFIG``): a TOML file of a command's options.

Every option of the command is a key, spelled as its long flag without the dashes
(``data-dir``, ``region``; underscores are accepted too), so an option added to ``serve`` is a
configuration key without any change here. The file becomes click's ``default_map``, which
gives the documented precedence: flags, then environment variables, then the file, then the
defaults. Values go through the option's own type, so a bad value is refused with the option's
name and what it accepts, as a bad flag would be.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import click

CONFIG_ENV = "OPENKMS_CONFIG"
CONFIG_PARAM = "config_file"


def config_keys(command: click.Command) -> dict[str, click.Option]:
    """The file's keys for ``command``: each option's long name, without dashes."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in (CONFIG_PARAM, None):
            continue
        long_names = [name for name in param.opts if name.startswith("--")]
        if long_names:
            keys[long_names[0][2:]] = param
    return keys


def read_config_file(path: Path, command: click.Command) -> dict[str, Any]:
    """The file as a ``default_map`` for ``command``; ``click.BadParameter`` for a file that
    cannot be read or parsed, an unknown key or a value of the wrong shape."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise click.BadParameter(
            f"cannot read {path}: {error.strerror or error}", param_hint="'--config'"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"{path} is not TOML: {error}", param_hint="'--config'") from None
    keys = config_keys(command)
    default_map: dict[str, Any] = {}
    for raw_key, value in document.items():
        key = raw_key.replace("_", "-")
        option = keys.get(key)
        if option is None:
            raise click.BadParameter(
                f"unknown key {raw_key!r} in {path}; the keys are: {', '.join(sorted(keys))}",
                param_hint="'--config'",
            )
        default_map[str(option.name)] = _shaped(key, option, value, path)
    return default_map


def _shaped(key: str, option: click.Option, value: Any, path: Path) -> Any:
    if isinstance(value, dict):
        raise click.BadParameter(
            f"{key} in {path} must be a single value, not a table", param_hint=f"'--{key}'"
        )
    if option.multiple:
        values = value if isinstance(value, list) else [value]
        return [_scalar(key, option, item, path) for item in values]
    if isinstance(value, list):
        raise click.BadParameter(
            f"{key} in {path} takes one value, not a list", param_hint=f"'--{key}'"
        )
    return _scalar(key, option, value, path)


def _scalar(key: str, option: click.Option, value: Any, path: Path) -> Any:
    if option.is_flag and not isinstance(value, bool):
        raise click.BadParameter(
            f"{key} in {path} must be true or false, not {value!r}", param_hint=f"'--{key}'"
        )
    if not option.is_flag and isinstance(value, bool):
        # TOML's true would otherwise pass as the string "True".
        raise click.BadParameter(
            f"{key} in {path} takes a value, not {value!r}", param_hint=f"'--{key}'"
        )
    if isinstance(value, int | float | str):
        return value
    return str(value)  # a TOML date or time: the option's type judges its text


def load_config_callback(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """The eager ``--config`` option's callback: the file becomes the command's defaults."""
    if value is None or ctx.resilient_parsing:
        return
    ctx.default_map = {**(ctx.default_map or {}), **read_config_file(value, ctx.command)}


def config_option(command: Any) -> Any:
    return click.option(
        "--config",
        CONFIG_PARAM,
        envvar=CONFIG_ENV,
        type=click.Path(path_type=Path, dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=load_config_callback,
        help=f"A TOML file of these options (keys: the long flags without dashes); "
        f"also ${CONFIG_ENV}. Flags and environment variables take precedence.",
    )(command)


def effective_config(command: click.Command, args: list[str]) -> list[tuple[str, Any, str]]:
    """(key, value, source) of each of ``command``'s options as ``args`` (with ``--config`` or
    ``OPENKMS_CONFIG``) would set them; secrets redacted."""
    with command.make_context(command.name, list(args)) as ctx:
        rows = []
        for key, option in config_keys(command).items():
            name = str(option.name)
            source = ctx.get_parameter_source(name)
            rows.append((key, redacted(key, ctx.params.get(name)), _source_name(source)))
        return rows


def _source_name(source: click.core.ParameterSource | None) -> str:
    names = {
        click.core.ParameterSource.COMMANDLINE: "flag",
        click.core.ParameterSource.ENVIRONMENT: "environment",
        click.core.ParameterSource.DEFAULT_MAP: "file",
        click.core.ParameterSource.DEFAULT: "default",
    }
    return names.get(source, "default") if source is not None else "default"


def redacted(key: str, value: Any) -> Any:
    """A database URL's password (the only secret a serve option carries) replaced."""
    if isinstance(value, str) and "://" in value and "@" in value:
        scheme, rest = value.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        if ":" in credentials:
            credentials = credentials.split(":", 1)[0] + ":<redacted>"
        return f"{scheme}://{credentials}@{host}"
    return value


def as_toml(rows: list[tuple[str, Any, str]]) -> str:
    lines = []
    for key, value, source in rows:
        if value is None:
            lines.append(f"# {key} is not set ({source})")
            continue
        lines.append(f"{key} = {_toml_value(value)}  # {source}")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
