"""Layered YAML configuration: ``_base_`` inheritance, ``key=value`` overrides, typed validation.

A config file is YAML read with ``yaml.safe_load``. It may name one or more parent files with
``_base_: base.yaml`` (or a list); parents are merged first, then the file's own keys, then the
command-line overrides (dotted keys, ``train.lr=0.002``; values are parsed as YAML). The result
is validated against the frozen dataclasses of :mod:`yolact.config_schema`: an unknown key or a
wrong type raises :class:`ConfigError` naming the file that set it, the key and, for unknown
keys, the closest known key.
"""
import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

from yolact.config_schema import Config
from yolact.errors import YolactError

__all__ = [
    "Config", "ConfigError", "CONFIG_DIR", "resolve_config_path", "load_config", "config_to_dict",
    "config_from_dict", "apply_overrides", "dump_config",
]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
_BASE_KEY = "_base_"
_CLI = "command line"


class ConfigError(YolactError):
    """A config file or override that cannot be used (one line, names file and key)."""


def resolve_config_path(name: str, relative_to: Optional[Path] = None) -> Path:
    """Find a config by path or by bare name (``coco``, ``coco.yaml``) in ``configs/``."""
    candidates = [Path(name), Path(f"{name}.yaml")]
    if relative_to is not None:
        candidates.insert(0, relative_to / name)
    for folder in (Path.cwd() / "configs", CONFIG_DIR):
        candidates += [folder / name, folder / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"{name}: config file not found (looked in ./, ./configs/ and {CONFIG_DIR})")


def _read_yaml(path: Path) -> Dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}:{where} YAML syntax error: {problem}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(content).__name__}")
    return content


def _merge(target: Dict, update: Mapping, sources: Dict[str, str], source: str, prefix=""):
    """Deep-merge ``update`` into ``target``, recording which file set each dotted key."""
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value, sources, source, dotted + ".")
            continue
        target[key] = dict(value) if isinstance(value, Mapping) else value
        sources[dotted] = source
        if isinstance(value, Mapping):
            _record_sources(value, sources, source, dotted + ".")


def _record_sources(tree: Mapping, sources: Dict[str, str], source: str, prefix: str):
    for key, value in tree.items():
        sources[f"{prefix}{key}"] = source
        if isinstance(value, Mapping):
            _record_sources(value, sources, source, f"{prefix}{key}.")


def _load_tree(path: Path, sources: Dict[str, str], seen: tuple = ()) -> Dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: _base_ inheritance cycle")
    own = _read_yaml(path)
    bases = own.pop(_BASE_KEY, [])
    tree: Dict[str, Any] = {}
    for base in [bases] if isinstance(bases, str) else bases:
        base_path = resolve_config_path(str(base), relative_to=path.parent)
        _merge(tree, _load_tree(base_path, sources, seen + (path,)), sources, str(base_path))
    _merge(tree, own, sources, str(path))
    return tree


def _parse_overrides(overrides: Iterable[str]) -> Dict[str, Any]:
    tree: Dict[str, Any] = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{_CLI}: override '{item}' is not of the form key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{_CLI}: override '{item}' has a value that is not valid YAML") from None
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def load_config(name: str, overrides: Iterable[str] = ()) -> Config:
    """Load a config by name or path, apply ``key=value`` overrides and validate it."""
    sources: Dict[str, str] = {}
    tree = _load_tree(resolve_config_path(name), sources)
    _merge(tree, _parse_overrides(overrides), sources, _CLI)
    return config_from_dict(tree, sources=sources)


def apply_overrides(tree: Mapping, overrides: Iterable[str], source: str = "config") -> Config:
    """Validate ``tree`` (e.g. a checkpoint's config) with ``key=value`` overrides on top."""
    sources: Dict[str, str] = {}
    tree = _to_plain_dict(tree)
    _record_sources(tree, sources, source, "")
    _merge(tree, _parse_overrides(overrides), sources, _CLI)
    return config_from_dict(tree, sources=sources)


def _to_plain_dict(tree: Mapping) -> Dict[str, Any]:
    return {k: _to_plain_dict(v) if isinstance(v, Mapping) else v for k, v in tree.items()}


def config_from_dict(tree: Mapping, sources: Optional[Dict[str, str]] = None,
                     default_source: str = "config") -> Config:
    """Validate a nested mapping (e.g. from a checkpoint) into a :class:`Config`."""
    return _build(Config, tree, "", sources or {}, default_source)


def _build(cls, tree: Any, prefix: str, sources: Dict[str, str], default_source: str):
    where = sources.get(prefix.rstrip("."), default_source)
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{where}: key '{prefix.rstrip('.')}' must be a mapping, got {tree!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.5)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            src = sources.get(dotted, default_source)
            raise ConfigError(f"{src}: unknown key '{dotted}'{hint}")
        if dataclasses.is_dataclass(hints[key]):
            values[key] = _build(hints[key], value, dotted + ".", sources, default_source)
        else:
            values[key] = _coerce(value, hints[key], dotted, sources.get(dotted, default_source))
    return cls(**values)


def _type_name(annotation) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _alternative_name(annotation) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(repr(arg) for arg in typing.get_args(annotation))
    return _type_name(annotation)


def _coerce(value: Any, annotation, key: str, source: str):
    """Check ``value`` against a schema annotation; ints are accepted for floats."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    wrong = ConfigError(f"{source}: key '{key}' must be {_type_name(annotation)}, got {value!r}")
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for alternative in inner[:-1]:
            try:
                return _coerce(value, alternative, key, source)
            except ConfigError:
                pass
        try:
            return _coerce(value, inner[-1], key, source)
        except ConfigError:
            if len(inner) == 1:
                raise
            raise ConfigError(f"{source}: key '{key}' must be "
                              f"{' or '.join(_alternative_name(a) for a in inner)}, got {value!r}") from None
    if origin is typing.Literal:
        if value is False and "off" in args:  # YAML 1.1 reads an unquoted off (train.amp=off) as false
            value = "off"
        if value not in args:
            raise ConfigError(f"{source}: key '{key}' must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise wrong
        return tuple(_coerce(item, args[0], key, source) for item in value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise wrong
        return value
    raise wrong


def config_to_dict(config: Config) -> Dict[str, Any]:
    """Plain nested dict of a config (tuples as lists): YAML- and checkpoint-friendly."""
    def plain(value):
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(config))


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mappings with inline lists: one key per line, as the files are written."""


_ConfigDumper.add_representer(
    list, lambda dumper, items: dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=True))


def dump_config(config: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.dump(config_to_dict(config), Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False)
