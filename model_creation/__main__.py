"""Command line for the pipeline: `python -m model_creation <stage> [--field value ...]`.

Flags are generated from each stage's `Config` dataclass, so the command line and the Python
API never drift apart. `--preset NAME` starts from one of the stage's `PRESETS`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
import typing

from model_creation import STAGES
from model_creation.stage_dir import StageError


def _add_field(parser: argparse.ArgumentParser, field: dataclasses.Field, hints: dict) -> None:
    flag = "--" + field.name.replace("_", "-")
    kind = hints[field.name]
    origin = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if kind is bool:
        parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
    elif origin in (list, tuple) or (args and typing.get_origin(args[0]) in (list, tuple)):
        parser.add_argument(flag, nargs="+", default=None)
    else:
        base = args[0] if args else kind
        convert = base if base in (int, float) else str
        parser.add_argument(flag, type=convert, default=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_creation", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True)
    modules = {}
    for name in STAGES:
        module = importlib.import_module(f"model_creation.{name}")
        modules[name] = module
        stage_parser = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        presets = getattr(module, "PRESETS", {})
        if presets:
            stage_parser.add_argument("--preset", choices=sorted(presets), default=None)
        hints = typing.get_type_hints(module.Config)
        for field in dataclasses.fields(module.Config):
            _add_field(stage_parser, field, hints)
    ns = vars(parser.parse_args(argv))
    module = modules[ns.pop("stage")]
    preset = ns.pop("preset", None)
    base = module.PRESETS[preset] if preset else None
    given = {k: v for k, v in ns.items() if v is not None}
    config = dataclasses.replace(base, **given) if base else module.Config(**given)
    try:
        out = module.run(config)
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
