"""RegistrationView: Register behind a Django REST framework view.

Apart from :mod:`ecoms_accounts.django.rest` because it is an APIView:
that module is named in DEFAULT_AUTHENTICATION_CLASSES, which
rest_framework.views imports.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..client import AccountClient
from .conf import get_client
from .rest import registration_response

__all__ = ["RegistrationView"]


class RegistrationView(APIView):
    """POST a registration form (``email``, ``password``,
    ``confirm_password``, ``username``, ``term_and_condition``, ...) to
    register at the service. Open to anyone; subclass to change
    :meth:`client` or the permissions."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    def client(self) -> AccountClient:
        return get_client()

    def post(self, request: Request) -> Response:
        return registration_response(self.client(), request.data)
