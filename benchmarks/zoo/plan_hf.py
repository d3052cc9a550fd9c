"""The Hugging Face catalog: ``python -m zoo.plan_hf OUT.json`` (in the zoo venv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zoo.build_hf import catalog


def main() -> None:
    specs = catalog()
    Path(sys.argv[1]).write_text(json.dumps([s.to_json() for s in specs], indent=1) + "\n")


if __name__ == "__main__":
    main()
