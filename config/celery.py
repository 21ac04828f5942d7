"""The Celery application. Tasks live in each app's tasks.py."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("oms")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def worker_command(
    python: str, *, concurrency: int = 2, loglevel: str = "WARNING", hostname: str | None = None
) -> list[str]:
    """The command line of a worker on every queue of ours (`settings.OMS_QUEUES`), as the
    benchmarks and the tests that need a real worker process start one."""
    from django.conf import settings

    command = [python, "-m", "celery", "-A", "config", "worker"]
    command += ["--queues", ",".join(settings.OMS_QUEUES), "--concurrency", str(concurrency)]
    command += ["--loglevel", loglevel, "--without-gossip", "--without-mingle"]
    return command + (["--hostname", hostname] if hostname else [])
