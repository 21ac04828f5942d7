"""Reads of the audit trail shared by its pages and API: the chain's status, and the
names a person uses for the kinds of object an event is about."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Count, Min

from .chain import sealer_window
from .models import AuditCheckpoint, AuditEvent, AuditSeal


@dataclass(frozen=True)
class ChainStatus:
    """Where the sealer and the last checkpoint have got to."""

    last_position: int
    last_event_id: int | None
    last_sealed_at: datetime | None
    awaiting: int
    oldest_awaiting: datetime | None
    checkpoint_position: int | None
    checkpoint_signed_at: datetime | None

    @property
    def uncovered(self) -> int:
        """Sealed events that no checkpoint covers yet."""
        return self.last_position - (self.checkpoint_position or 0)


def chain_status() -> ChainStatus:
    """The chain's head, what awaits the sealer, and the latest checkpoint (3 queries)."""
    head = (
        AuditSeal.objects.order_by("-position")
        .values_list("position", "event_id", "sealed_at", "horizon")
        .first()
    )
    position, event_id, sealed_at, horizon = head or (0, None, None, 0)
    waiting = AuditEvent.objects.filter(sealer_window(horizon), seal__isnull=True).aggregate(
        count=Count("pk"), oldest=Min("occurred_at")
    )
    checkpoint = (
        AuditCheckpoint.objects.order_by("-pk").values_list("position", "signed_at").first()
    )
    return ChainStatus(
        last_position=position,
        last_event_id=event_id,
        last_sealed_at=sealed_at,
        awaiting=waiting["count"],
        oldest_awaiting=waiting["oldest"],
        checkpoint_position=checkpoint[0] if checkpoint else None,
        checkpoint_signed_at=checkpoint[1] if checkpoint else None,
    )


# --- Object kinds as the pages name them ----------------------------------------------

#: Where the pages use another word than the model's own name.
_PAGE_NAMES = {"portfolios.portfolio": "Account"}
#: More words a person may type for a kind.
_ALIASES = {
    "account": "portfolios.portfolio",
    "accounts": "portfolios.portfolio",
    "rebalance": "portfolios.rebalancerun",
    "rebalances": "portfolios.rebalancerun",  # the navigation's name
    "break": "trading.statementbreak",
    "breaks": "trading.statementbreak",
    "run": "portfolios.rebalancerun",
    "model": "portfolios.modelportfolio",
}


@functools.cache
def object_kinds() -> dict[str, str]:
    """Each model's label (``trading.order``) and the name the pages give its objects
    (``Order``, ``Rebalance run``)."""
    kinds = {}
    for model in apps.get_models():
        name = str(model._meta.verbose_name)
        kinds[model._meta.label_lower] = _PAGE_NAMES.get(
            model._meta.label_lower, name[:1].upper() + name[1:]
        )
    return kinds


def object_kind_name(label: str) -> str:
    """The name the pages give an event's object kind; the label itself if unknown."""
    return object_kinds().get(label, label)


@functools.cache
def _kind_words() -> list[tuple[str, str]]:
    words = dict(_ALIASES)
    for label, name in object_kinds().items():
        model = apps.get_model(label)
        words.setdefault(name.lower(), label)
        words.setdefault(str(model._meta.verbose_name).lower(), label)
        words.setdefault(str(model._meta.verbose_name_plural).lower(), label)
        words.setdefault(label, label)
    # Longest first, so that "rebalance run 7" is not read as "rebalance" + "run 7".
    return sorted(words.items(), key=lambda item: -len(item[0]))


def read_object_kind(text: str) -> tuple[str | None, str]:
    """Split what a person typed for an object ("Order 42", "rebalance run #7",
    "Account ACC1", "trading.block") into a model label and the rest, which names the
    object; (None, text) when it starts with no kind's name."""
    typed = " ".join(text.split())
    lowered = typed.lower()
    for word, label in _kind_words():
        if lowered == word or lowered.startswith(word + " ") or lowered.startswith(word + "#"):
            return label, typed[len(word) :].strip().lstrip("#").strip()
    return None, typed
