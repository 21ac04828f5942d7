"""Settings come from the environment; the embedded default needs no server."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRINT = (
    "import json, django; from django.conf import settings; django.setup();"
    "print(json.dumps({'engine': settings.DATABASES['default']['ENGINE'],"
    " 'name': str(settings.DATABASES['default']['NAME']), 'broker': settings.CELERY_BROKER_URL,"
    " 'cache': settings.CACHES['default']['BACKEND'], 'debug': settings.DEBUG,"
    " 'secure_cookies': settings.SESSION_COOKIE_SECURE}))"
)


def _run(args, **env):
    # A clean environment: nothing of the caller's services or test switches.
    unset = ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    base["DJANGO_SETTINGS_MODULE"] = "config.settings"
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_embedded_default(tmp_path):
    result = _run(["-c", PRINT], OMS_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["engine"] == "django.db.backends.sqlite3"
    assert seen["name"] == str(tmp_path / "oms.sqlite3")
    assert seen["broker"] == "filesystem://"
    assert seen["debug"] is False
    assert (tmp_path / "celery" / "queue").is_dir()


def test_production_variables(tmp_path):
    result = _run(
        ["-c", PRINT],
        OMS_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://oms:secret@db.internal:5432/oms",
        REDIS_URL="redis://cache.internal:6379/1",
        OMS_HTTPS="1",
        SECRET_KEY="a-key-of-its-own",
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["engine"] == "django.db.backends.postgresql"
    assert seen["name"] == "oms"
    assert seen["broker"] == "redis://cache.internal:6379/1"
    assert seen["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert seen["secure_cookies"] is True


def test_check_deploy_is_clean_in_production_mode(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x7!Qp2@Lm9#Rv4$Tz8%Wn3^Yb6&Kd1*Hf5(Gj0)Sc2_Ua7+Ee4=Io9~Ol3")
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        OMS_VAR_DIR=str(tmp_path),
        SECRET_KEY_FILE=str(secret),
        ALLOWED_HOSTS="oms.example.com",
        OMS_HTTPS="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_flags_the_embedded_secret(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], OMS_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stdout + result.stderr


def test_a_production_start_without_a_secret_key_refuses_to_run(tmp_path):
    """Outside the embedded demo the public default key would let anyone forge a
    session: with DATABASE_URL set and no key, nothing starts."""
    result = _run(
        ["-c", PRINT],
        OMS_VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://oms:secret@db.internal:5432/oms",
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "SECRET_KEY_FILE" in result.stderr


def test_an_unreadable_secret_key_file_refuses_to_run(tmp_path):
    result = _run(
        ["-c", PRINT], OMS_VAR_DIR=str(tmp_path), SECRET_KEY_FILE=str(tmp_path / "missing")
    )
    assert result.returncode != 0
    assert "cannot be read" in result.stderr


def test_a_secret_key_or_debug_lets_a_server_database_start(tmp_path):
    server = {"OMS_VAR_DIR": str(tmp_path), "DATABASE_URL": "postgres://oms@db.internal/oms"}
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    for extra in ({"SECRET_KEY": "s3cret"}, {"SECRET_KEY_FILE": str(secret)}, {"DEBUG": "1"}):
        result = _run(["-c", PRINT], **server, **extra)
        assert result.returncode == 0, (extra, result.stderr)
