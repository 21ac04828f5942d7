"""A module run as a program (`python -m trading.fix.simulator`, `python bench/x.py`) runs
its `if __name__ == "__main__":` block where it stands: whatever is defined below it
does not exist yet when the program starts. The FIX simulator once defined a helper
there, so every FX order sent to the demo's simulator process failed with a NameError
while the tests, which import the module, passed."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = ("oms", "audit", "portfolios", "trading", "compliance", "orchestration", "config", "bench")


def _is_main_guard(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
        )
    )


def test_nothing_is_defined_below_a_main_guard():
    late = []
    for package in OURS:
        for path in sorted((ROOT / package).rglob("*.py")):
            body = ast.parse(path.read_text(encoding="utf-8")).body
            guards = [i for i, node in enumerate(body) if _is_main_guard(node)]
            if guards and guards[0] != len(body) - 1:
                below = body[guards[0] + 1]
                late.append(f"{path.relative_to(ROOT)}:{below.lineno}")
    assert not late, f"defined below the __main__ block (missing when run): {late}"
