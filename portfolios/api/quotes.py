"""The market data API: integrators post quotes, import a CSV file, read the latest
prices with their freshness, and poll what moved (docs/marketdata.md). Parse, call
one service or selector, render."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from oms import push
from oms.api.base import FieldErrors, OMSViewSet
from oms.api.idempotency import idempotent
from oms.api.parsers import JSONParser
from oms.roles import Action
from portfolios import quotes as selectors
from portfolios.marketdata import MAX_QUOTES_PER_POST, PostedQuotes
from portfolios.models import Security
from portfolios.services import quotes as services


class QuoteInSerializer(serializers.Serializer):
    """One quote (the schema's description; the body is read by portfolios.marketdata.rest)."""

    symbol = serializers.CharField(help_text="A security's ticker, or an FX pair: EUR/USD")
    venue = serializers.CharField(required=False, help_text="Where it was quoted (default API)")
    bid = serializers.FloatField(required=False)
    ask = serializers.FloatField(required=False)
    last = serializers.FloatField(required=False, help_text="or `price`; one of bid, ask, last")
    size = serializers.FloatField(required=False, help_text="Traded at `last` (for volume)")
    at = serializers.CharField(
        required=False,
        help_text="ISO 8601 moment with a zone, or a date (end of day); now if absent",
    )


class QuarantinedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    symbol = serializers.CharField()
    venue = serializers.CharField()
    reason = serializers.CharField()


class AppliedSerializer(serializers.Serializer):
    applied = serializers.IntegerField(help_text="Quotes applied")
    ignored = serializers.IntegerField(
        help_text="Older than what their venue had said (history only)"
    )
    quarantined = QuarantinedSerializer(many=True, help_text="Held for review, not applied")
    bad_rows = serializers.ListField(child=serializers.CharField(), required=False)


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV: symbol, as_of or at, price (or bid/ask), venue")
    mode = serializers.ChoiceField(
        choices=services.ImportMode.CHOICES,
        help_text="all_or_nothing: any bad row refuses the file; good_rows: apply the rest",
    )


class ReadingSerializer(serializers.Serializer):
    security = serializers.CharField()
    price = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    bid = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    ask = serializers.DecimalField(max_digits=24, decimal_places=8, allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    freshness = serializers.ChoiceField(choices=["fresh", "stale", "missing"])
    source = serializers.CharField(help_text="live, bar, close, or empty when missing")


class ChangesSerializer(serializers.Serializer):
    cursor = serializers.CharField(help_text="Send it back as `since` on the next poll")
    quotes = serializers.DictField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text="symbol -> [price, bid, ask, epoch seconds] (bid and ask may be null)",
    )


MAX_SYMBOLS = 500


def _quarantined(rows) -> list[dict]:
    return [{"id": r.pk, "symbol": r.symbol, "venue": r.venue, "reason": r.reason} for r in rows]


class QuoteViewSet(mixins.ListModelMixin, OMSViewSet):
    """Quotes: the latest price of each security with whether it may be used (fresh,
    stale or missing); integrators post quotes and import files of prices and FX."""

    queryset = Security.objects.all()
    serializer_class = ReadingSerializer
    parser_classes = [JSONParser]
    read_action = Action.REFERENCE_VIEW
    action_permissions = {"create": Action.REFERENCE_MANAGE, "import_file": Action.REFERENCE_MANAGE}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "symbols",
                str,
                description=f"Comma-separated tickers (at most {MAX_SYMBOLS}); all active securities if absent",
            )
        ],
        responses={200: ReadingSerializer(many=True)},
    )
    def list(self, request):
        securities = Security.objects.filter(is_active=True).only("pk", "ticker", "asset_class")
        symbols = request.query_params.get("symbols")
        if symbols is not None:
            wanted = [s.strip().upper() for s in symbols.split(",") if s.strip()]
            if len(wanted) > MAX_SYMBOLS:
                raise ValidationError({"symbols": [f"At most {MAX_SYMBOLS} symbols."]})
            securities = securities.filter(ticker__in=wanted)
        page = self.paginate_queryset(securities.order_by("ticker"))
        readings = selectors.prices_for(page)
        data = [readings[s.pk].as_dict() for s in page]
        return self.get_paginated_response(ReadingSerializer(data, many=True).data)

    @extend_schema(
        request=QuoteInSerializer(many=True),
        responses={201: AppliedSerializer, 202: AppliedSerializer},
        description=(
            "Post a list of quotes (at most 5,000). A list with an item that cannot be read, or "
            "that names no security, is refused whole (400, each item named). A quote that "
            "fails the checks (negative, zero, bid above ask, dated in the future, a jump beyond "
            "the limit) is quarantined with its reason and not applied: the answer is then 202 "
            "and lists it; 201 when every quote was applied."
        ),
        examples=[
            OpenApiExample(
                "Two venues",
                request_only=True,
                value=[
                    {"symbol": "AAA", "venue": "XNAS", "bid": 101.2, "ask": 101.3, "last": 101.25},
                    {"symbol": "EUR/USD", "last": 1.085, "at": "2026-01-02T15:30:00Z"},
                ],
            )
        ],
    )
    @idempotent
    def create(self, request):
        items = request.data
        if not isinstance(items, list) or not items:
            raise ValidationError({"quotes": ["Send a list of quotes, at least one."]})
        if len(items) > MAX_QUOTES_PER_POST:
            raise ValidationError(
                {"quotes": [f"At most {MAX_QUOTES_PER_POST:,} quotes per post; send several."]}
            )
        batch = PostedQuotes(items, now=timezone.now()).read()
        errors = [str(e) for e in batch.errors]
        unknown = services.unknown_symbols(batch.quotes)
        errors += [
            f"Row {n} ({q.symbol}): no security {q.symbol}"
            for n, q in enumerate(batch.quotes)
            if q.symbol in unknown
        ]
        if errors:
            raise ValidationError({"quotes": errors})
        applied = services.quotes_post(actor=request.user, quotes=batch.quotes)
        body = {
            "applied": applied.accepted,
            "ignored": applied.ignored,
            "quarantined": _quarantined(applied.quarantined),
        }
        code = status.HTTP_202_ACCEPTED if applied.quarantined else status.HTTP_201_CREATED
        return Response(body, status=code)

    @extend_schema(
        request={"multipart/form-data": ImportSerializer},
        responses={201: AppliedSerializer, 202: AppliedSerializer},
        description=(
            "Import a CSV file of prices and FX rates (an FX rate is a row whose symbol is a "
            "pair, EUR/USD). `all_or_nothing`: any bad row refuses the file (400, every bad row "
            "named), nothing applied. `good_rows`: unreadable rows are named in `bad_rows` and "
            "skipped, rows that fail the checks are quarantined, the rest applied (202 when any "
            "row was not applied)."
        ),
    )
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser])
    @idempotent
    def import_file(self, request):
        form = ImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": ["The file is not UTF-8 text."]}) from None
        try:
            result = services.prices_import(
                actor=request.user,
                text=text,
                mode=form.validated_data["mode"],
                filename=upload.name,
            )
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        body = {
            "applied": result.applied,
            "ignored": result.ignored,
            "quarantined": _quarantined(result.quarantined),
            "bad_rows": [str(e) for e in result.errors],
        }
        partial = result.quarantined or result.errors
        return Response(
            body, status=status.HTTP_202_ACCEPTED if partial else status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.STR,
                description="The cursor of the previous answer; absent on the first poll",
            )
        ],
        responses={200: ChangesSerializer, 400: FieldErrors},
        description=(
            "Poll what moved: the latest price of each instrument whose price history moved "
            "since the cursor (the first call returns only a cursor). Browser sessions may "
            "instead hold the Server-Sent Events stream /push/stream/?topic=quotes."
        ),
    )
    @action(detail=False, methods=["get"], url_path="changes", pagination_class=None)
    def changes(self, request):
        cursor = push.cursor_now()
        raw = request.query_params.get("since")
        since = push.parse_cursor(raw)
        if raw and since is None:
            raise ValidationError({"since": ["Send back the cursor of the previous answer."]})
        events = [] if since is None else selectors.quote_changes(since)
        merged: dict = {}
        for event in events:
            merged |= event["q"]
        return Response({"cursor": cursor, "quotes": merged})
