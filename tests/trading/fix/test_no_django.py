import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_library_imports_without_django():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import trading.fix, trading.fix.codec, trading.fix.session, trading.fix.transport, "
        "trading.fix.messages, trading.fix.simulator, trading.fix.echo_acceptor, "
        "trading.fix.acceptance, trading.fix.dictionary, trading.fix.book_file; "
        "trading.fix.dictionary.load('FIX.4.4'); "
        "import sys; assert 'django' not in sys.modules, 'django imported'"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr


def test_no_django_import_in_source():
    for p in (REPO / "trading" / "fix").rglob("*.py"):
        text = p.read_text()
        assert "import django" not in text and "from django" not in text, p
