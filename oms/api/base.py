"""Base classes of every API viewset: the role check, the schema, the lookups.

A viewset declares the action a reader needs (`read_action`) and, per write, the
action its service requires (`action_permissions`). The role check runs before
any object is looked up or any input read, so that a forbidden action is a 403
whatever the input; the services check again, since they are the rule. Objects
outside what the user may see are filtered out by the viewset's queryset (a
selector), so that they are a 404, never a 403 that would confirm they exist.
"""

from __future__ import annotations

from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from oms.roles import Action, can, refusal

from . import idempotency


class RolePermission(BasePermission):
    """The user's role must allow the viewset's action (oms.roles, one place per action)."""

    def has_permission(self, request, view) -> bool:
        action = view.required_action()
        if action is not None and not can(request.user, action):
            raise PermissionDenied(refusal(action))
        return True


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=idempotency.HEADER,
    # Visible ASCII without spaces at either end (headers are Latin-1 on the wire and
    # the key is stripped); the server accepts any printable text of that length.
    type={
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        "pattern": r"^[!-~](?:[ -~]*[!-~])?$",
    },
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Any unique string (a UUID) of up to 255 characters. A retry with the same key "
        "returns the first answer (status and body) and changes nothing; the same key "
        "with another request is refused with 422."
    ),
)

Error = inline_serializer("Error", fields={"detail": serializers.CharField()})


class FieldErrors(serializers.Serializer):
    """The body of a 400: messages per field (documented by FieldErrorsSchema)."""


class FieldErrorsSchema(OpenApiSerializerExtension):
    """A 400 names each bad field with its messages: the keys are the request's own
    field names (or `non_field_errors`, or `detail` for the request as a whole, as a
    message or a list of them), and a list of objects carries one object of messages
    per item (a model's targets)."""

    target_class = FieldErrors

    def get_name(self, auto_schema, direction):
        return "FieldErrors"

    def map_serializer(self, auto_schema, direction):
        message = {"type": "string"}
        messages = {"type": "array", "items": {"anyOf": [message, {"type": "object"}]}}
        return {
            "type": "object",
            "description": "Messages per field, one key per field",
            "additionalProperties": {"anyOf": [message, messages, {"type": "object"}]},
        }


class DecimalStringSchema(OpenApiSerializerFieldExtension):
    """A decimal travels as a string: document only the strings the field accepts.

    drf-spectacular's pattern allows "", "-" and "." and as many whole digits as the
    column holds; this one needs a digit, allows a sign only where negative values
    are accepted, and no more whole digits than the field's largest value has."""

    target_class = serializers.DecimalField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        if "pattern" not in schema or field.max_whole_digits is None:
            return schema
        whole = field.max_whole_digits
        if field.max_value is not None:
            whole = min(whole, max(len(str(int(abs(field.max_value)))), 1))
        places = field.decimal_places
        negative = field.min_value is None or field.min_value < 0
        sign = "-?" if negative else ""
        fraction = rf"(?:\.\d{{0,{places}}})?" if places else ""
        schema["pattern"] = rf"^{sign}\d{{1,{whole}}}{fraction}$"
        return schema


class OMSAutoSchema(AutoSchema):
    """Every operation documents its error answers; every POST its Idempotency-Key."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _get_paginator(self):
        # Only a read of a list is paged; a POST that answers with a list (a load of
        # prices) answers with the whole list, and is documented so.
        return super()._get_paginator() if self.method == "GET" else None

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = [
            ("401", Error, "Not authenticated: send `Authorization: Token <key>`."),
            ("403", Error, "Your role does not allow this action."),
            ("429", Error, "Too many requests with a wrong token from your address: wait."),
        ]
        if "{" in self.path:
            errors.append(("404", Error, "No such object among those you may see."))
        if self.method == "POST":
            errors += [
                ("400", FieldErrors, "Bad input: messages per field."),
                ("409", Error, "The object's state does not allow this transition."),
                ("415", Error, "The body is in a media type this operation does not read."),
                ("422", Error, "Idempotency-Key reused with another request."),
            ]
        elif self._is_list_view():
            errors += [
                ("400", FieldErrors, "Bad filter: messages per field."),
                ("404", Error, "No such page (`page` beyond the last, or not a page number)."),
            ]
        for code, serializer, description in errors:
            if code not in responses:
                responses[code] = self._get_response_for_code(serializer, code)
                responses[code]["description"] = description
        return responses


class OMSViewSet(viewsets.GenericViewSet):
    """A resource of the API: role-checked, looked up by numeric id, documented."""

    permission_classes = [IsAuthenticated, RolePermission]
    schema = OMSAutoSchema()
    lookup_value_regex = "[0-9]+"
    read_action: Action | None = None
    action_permissions: dict[str, Action] = {}

    def required_action(self) -> Action | None:
        return self.action_permissions.get(self.action, self.read_action)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset.none()  # the schema generator has no user: the model is enough
        return self.visible_to(self.request.user)

    def visible_to(self, user):
        """What this user may see; a viewset scoped by user overrides it with a selector."""
        return self.queryset.all()

    def parsed(
        self, serializer_class, *, partial: bool = False, optional: bool = False, **kwargs
    ) -> dict:
        """The request's body read by `serializer_class`: its validated data (a 400
        naming each bad field otherwise). `optional`: the body may be left out, and a
        JSON ``null`` says the same."""
        data = self.request.data
        if optional and data is None:
            data = {}
        serializer = serializer_class(
            data=data,
            partial=partial,
            context=self.get_serializer_context(),
            **kwargs,
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def acted(self, serializer_class, act) -> Response:
        """A step on the detail object: the body read by `serializer_class`, then
        `act(obj, data)` (a service call), then the object rendered."""
        obj = self.get_object()
        act(obj, self.parsed(serializer_class))
        return self.rendered(obj)

    def rendered(self, obj, code: int = status.HTTP_200_OK) -> Response:
        """The object as this viewset shows it, read again through what the user may
        see (so that a write's answer is the same as a GET's)."""
        return Response(self.get_serializer(self.get_queryset().get(pk=obj.pk)).data, code)


class CodeField(serializers.SlugRelatedField):
    """An object named by its code (ticker, account or broker code).

    An unknown code is named in the user's words ("No account ACC9."), not DRF's
    "Object with code=ACC9 does not exist.". Text that cannot be a code is refused
    before it reaches the database: PostgreSQL refuses NUL characters in text,
    which would otherwise be a 500.
    """

    def __init__(self, *args, missing: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        noun = self.queryset.model._meta.verbose_name
        self.error_messages["does_not_exist"] = missing or f"No {noun} {{value}}."

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)
