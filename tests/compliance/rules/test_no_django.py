import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_engine_imports_and_runs_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import compliance.rules as r, compliance.rules.synthetic as s, "
        "compliance.rules.jsoncheck, compliance.rules.__main__; "
        "book = s.synthetic_book(20, 10, 50, 40); rules, lists = s.synthetic_rules(book); "
        "res = r.check(book, rules, lists); "
        "assert len(res.orders) == 50 and len(res.account_results) > 0; "
        "r.exposures(book, 'sector'); "
        "import sys; assert 'django' not in sys.modules, 'django imported'"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_no_django_import_in_source():
    for p in (REPO / "compliance" / "rules").rglob("*.py"):
        text = p.read_text()
        assert "import django" not in text and "from django" not in text, p
