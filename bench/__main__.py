from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench.sqlite3'}")
    os.environ.setdefault("TASK_BACKEND", "immediate")
    os.environ.setdefault("TASKS_LOG_LEVEL", "WARNING")
    # Measure what production runs: DEBUG off (with it on, Django keeps a log of every query).
    os.environ["DEBUG"] = "0"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Run one Signalbox benchmark.")
    parser.add_argument("name", choices=available())
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="options for the benchmark")
    args = parser.parse_args()
    setup_django()
    module = importlib.import_module(f"bench.{args.name}")
    figures = module.run(args.extra)
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
