"""API of model portfolios: targets and sleeves as JSON and CSV, copy, assign accounts.

Thin: each write parses its body, calls one service of portfolios.services.models
(which locks, checks the one sum-to-100% rule and records the change), renders.
Reading takes a role that sees reference data; changing one takes MODEL_MANAGE.
"""

from __future__ import annotations

from django.db.models import Prefetch
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from oms.api.base import CodeField, Error, FieldErrors, OMSViewSet
from oms.api.idempotency import idempotent
from oms.api.parsers import JSONParser, too_large
from oms.roles import Action
from portfolios.filters import ModelPortfolioFilter
from portfolios.models import ModelPortfolio, ModelSleeve, ModelTarget, Portfolio, Security
from portfolios.services import models as model_services

CSV = "text/csv"
#: A targets file holds at most a thousand rows of a ticker and a weight.
MAX_CSV_BYTES = 200_000


class CSVParser(BaseParser):
    """A targets file (portfolios.model_csv) as text: UTF-8, bounded in size."""

    media_type = CSV

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_CSV_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_CSV_BYTES:
            raise ParseError(too_large(MAX_CSV_BYTES))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("The file is not UTF-8 text.") from exc


#: What a PUT answers besides its 200 (a POST's are documented by OMSAutoSchema).
PUT_ERRORS = {
    400: OpenApiResponse(FieldErrors, description="Bad input: messages per field."),
    415: OpenApiResponse(
        Error, description="The body is in a media type this operation does not read."
    ),
}


class CSVRenderer(BaseRenderer):
    """The export's text as it is; anything else (an error) goes out as JSON
    (`ModelPortfolioViewSet.finalize_response`)."""

    media_type = CSV
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode("utf-8") if isinstance(data, str) else b""


# --- Shapes ------------------------------------------------------------------------------------


def _weight(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=8, **kwargs)


class ModelTargetSerializer(serializers.ModelSerializer):
    security = serializers.SlugRelatedField(slug_field="ticker", read_only=True)

    class Meta:
        model = ModelTarget
        fields = ["security", "weight"]


class ModelSleeveSerializer(serializers.ModelSerializer):
    model = serializers.SlugRelatedField(source="sleeve", slug_field="name", read_only=True)
    model_id = serializers.IntegerField(source="sleeve_id", read_only=True)

    class Meta:
        model = ModelSleeve
        fields = ["model", "model_id", "weight"]


class ModelPortfolioSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    targets = ModelTargetSerializer(many=True, read_only=True)
    sleeves = ModelSleeveSerializer(many=True, read_only=True)

    class Meta:
        model = ModelPortfolio
        fields = [
            "id",
            "name",
            "description",
            "cash_weight",
            "band_absolute",
            "band_relative",
            "owner",
            "created_at",
            "targets",
            "sleeves",
        ]


class ModelTargetWriteSerializer(serializers.Serializer):
    security = CodeField(slug_field="ticker", queryset=Security.objects.all(), help_text="Ticker")
    weight = _weight(help_text="Fraction of the model: 0.4 is 40%")


class ModelSleeveWriteSerializer(serializers.Serializer):
    model = CodeField(
        slug_field="name",
        queryset=ModelPortfolio.objects.all(),
        help_text="Name of the model held as a sleeve",
        missing="No model named {value}.",
    )
    weight = _weight(help_text="Fraction of the model: 0.4 is 40%")


class ModelPortfolioCreateSerializer(serializers.ModelSerializer):
    """A new model: its targets, sleeves and cash weight add up to exactly 1."""

    targets = ModelTargetWriteSerializer(many=True, max_length=1000)
    sleeves = ModelSleeveWriteSerializer(many=True, max_length=1000, required=False)

    class Meta:
        model = ModelPortfolio
        fields = [
            "name",
            "description",
            "cash_weight",
            "band_absolute",
            "band_relative",
            "targets",
            "sleeves",
        ]


class ModelTargetsUpdateSerializer(serializers.Serializer):
    """A model's whole composition, replaced at once (and its bands when given)."""

    cash_weight = _weight()
    targets = ModelTargetWriteSerializer(many=True, max_length=1000)
    sleeves = ModelSleeveWriteSerializer(many=True, max_length=1000, required=False)
    band_absolute = _weight(required=False)
    band_relative = _weight(required=False)


class ModelCopySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The new model's name")
    description = serializers.CharField(required=False, allow_blank=True)


class ModelAssignSerializer(serializers.Serializer):
    portfolios = serializers.ListField(
        child=CodeField(
            slug_field="code", queryset=Portfolio.objects.all(), missing="No account {value}."
        ),
        allow_empty=False,
        max_length=10_000,
        help_text="Account codes",
    )


class ModelAssignedSerializer(serializers.Serializer):
    model = serializers.CharField()
    portfolios = serializers.ListField(child=serializers.CharField())


# --- The resource -----------------------------------------------------------------------------


class ModelPortfolioViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OMSViewSet):
    """Model portfolios: target weights, sleeves (other models) and tolerance bands."""

    queryset = ModelPortfolio.objects.select_related("owner").prefetch_related(
        Prefetch("targets", queryset=ModelTarget.objects.select_related("security")),
        Prefetch("sleeves", queryset=ModelSleeve.objects.select_related("sleeve")),
    )
    serializer_class = ModelPortfolioSerializer
    parser_classes = [JSONParser]  # the targets are a list of objects
    filterset_class = ModelPortfolioFilter
    read_action = Action.REFERENCE_VIEW
    action_permissions = {
        "create": Action.MODEL_MANAGE,
        "targets": Action.MODEL_MANAGE,
        "copy": Action.MODEL_MANAGE,
        "assign": Action.MODEL_MANAGE,
        "targets_csv_import": Action.MODEL_MANAGE,
    }

    def finalize_response(self, request, response, *args, **kwargs):
        # Only the export is CSV: an answer with data of another shape (an error, the
        # model after an import) is JSON whatever the client accepts.
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response.accepted_renderer, CSVRenderer) and not isinstance(
            response.data, str
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response

    @extend_schema(
        request=ModelPortfolioCreateSerializer,
        responses={201: ModelPortfolioSerializer},
        examples=[
            OpenApiExample(
                "Two securities and cash",
                request_only=True,
                value={
                    "name": "Balanced",
                    "cash_weight": "0.05",
                    "band_absolute": "0.02",
                    "targets": [
                        {"security": "AAA", "weight": "0.55"},
                        {"security": "CCC", "weight": "0.40"},
                    ],
                },
            )
        ],
    )
    @idempotent
    def create(self, request):
        """Add a model portfolio with its target weights (and sleeves)."""
        model = model_services.model_create(
            actor=request.user, **self.parsed(ModelPortfolioCreateSerializer)
        )
        return self.rendered(model, status.HTTP_201_CREATED)

    @extend_schema(
        request=ModelTargetsUpdateSerializer,
        responses={200: ModelPortfolioSerializer, **PUT_ERRORS},
        examples=[
            OpenApiExample(
                "Half AAA, a sleeve and cash",
                request_only=True,
                value={
                    "cash_weight": "0.05",
                    "targets": [{"security": "AAA", "weight": "0.5"}],
                    "sleeves": [{"model": "Income", "weight": "0.45"}],
                },
            )
        ],
    )
    @action(detail=True, methods=["put"])
    def targets(self, request, pk=None):
        """Replace the model's targets, sleeves and cash weight (and bands, when
        given): they add up to exactly 1, or nothing changes."""
        model = self.get_object()
        model = model_services.model_update(
            actor=request.user, model_id=model.pk, **self.parsed(ModelTargetsUpdateSerializer)
        )
        return self.rendered(model)

    @extend_schema(request=ModelCopySerializer, responses={201: ModelPortfolioSerializer})
    @action(detail=True, methods=["post"])
    @idempotent
    def copy(self, request, pk=None):
        """A new model with this one's targets, sleeves, cash and bands."""
        model = self.get_object()
        copy = model_services.model_copy(
            actor=request.user, model_id=model.pk, **self.parsed(ModelCopySerializer)
        )
        return self.rendered(copy, status.HTTP_201_CREATED)

    @extend_schema(
        request=ModelAssignSerializer,
        responses={200: ModelAssignedSerializer},
        examples=[
            OpenApiExample(
                "Two accounts", request_only=True, value={"portfolios": ["ACC1", "ACC2"]}
            )
        ],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def assign(self, request, pk=None):
        """Put these accounts on this model (a portfolio manager: accounts they manage)."""
        model = self.get_object()
        chosen = self.parsed(ModelAssignSerializer)["portfolios"]
        portfolios = model_services.model_assign(
            actor=request.user, model_id=model.pk, portfolio_ids=[p.pk for p in chosen]
        )
        body = {"model": model.name, "portfolios": [p.code for p in portfolios]}
        return Response(ModelAssignedSerializer(body).data)

    @extend_schema(
        responses={(200, CSV): OpenApiResponse(OpenApiTypes.STR, description="ticker,weight")},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="csv",
        parser_classes=[CSVParser],
        renderer_classes=[JSONRenderer, CSVRenderer],
    )
    def targets_csv(self, request, pk=None):
        """The targets as CSV: ``ticker,weight``, a row per security, ``model:<name>``
        per sleeve and ``CASH`` for the cash weight (the file the import reads)."""
        model = self.get_object()
        response = Response(model_services.model_targets_export(model=model))
        self.request.accepted_renderer = CSVRenderer()
        self.request.accepted_media_type = CSV
        filename = "".join(c if c.isalnum() else "-" for c in model.name)
        response["Content-Disposition"] = f'attachment; filename="{filename}-targets.csv"'
        return response

    @extend_schema(
        request={CSV: OpenApiTypes.STR},
        responses={200: ModelPortfolioSerializer, **PUT_ERRORS},
        description=(
            "Replace the targets, sleeves and cash weight with a CSV file (the export's "
            "format). Each bad row is named with its line; nothing changes unless the "
            "whole file is right."
        ),
    )
    @targets_csv.mapping.put
    @targets_csv.mapping.post
    @idempotent
    def targets_csv_import(self, request, pk=None):
        model = self.get_object()
        text = request.data if isinstance(request.data, str) else ""
        model = model_services.model_targets_import(
            actor=request.user, model_id=model.pk, text=text
        )
        return self.rendered(model)
