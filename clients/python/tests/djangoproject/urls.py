"""A page behind @login_required, an API view behind access tokens, the
registration view, sign-out, and the admin."""

from django.contrib import admin
from django.contrib.auth import authenticate, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ecoms_accounts.django.backends import BACKEND, complete_sign_in
from ecoms_accounts.django.rest import AccessTokenAuthentication, RegistrationView
from ecoms_accounts.django.sessions import access_token, service_session, sign_out


def login_view(request: HttpRequest) -> JsonResponse:
    """Step one: email and password. When two-step sign-in is on, step two:
    the challenge step one answered, and a recovery code."""
    if "challenge" in request.POST:
        user = complete_sign_in(
            request, request.POST["challenge"], recovery_code=request.POST["code"]
        )
        login(request, user, backend=BACKEND)
        return JsonResponse({"signed_in": True})
    user = authenticate(request, email=request.POST["email"], password=request.POST["password"])
    if user is not None:
        login(request, user)
        return JsonResponse({"signed_in": True})
    refusal = getattr(request, "ecoms_accounts_error", None)
    return JsonResponse(
        {
            "signed_in": False,
            "reason": getattr(refusal, "reason", None) or "INVALID_CREDENTIALS",
            "challenge": getattr(refusal, "challenge", None),
        },
        status=401,
    )


@login_required
def private(request: HttpRequest) -> JsonResponse:
    session = service_session(request)
    return JsonResponse(
        {
            "username": request.user.get_username(),
            "email": request.user.email,
            "account_id": str(request.user.account_link.account_id),
            "session_id": session.session_id if session else None,
        }
    )


@login_required
def token(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"access_token": access_token(request)})


def logout_view(request: HttpRequest) -> HttpResponse:
    sign_out(request)
    return HttpResponse("signed out")


class Me(APIView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        return Response(
            {
                "username": request.user.get_username(),
                "account_id": request.auth["sub"],
                "session_id": request.auth["sid"],
            }
        )


urlpatterns = [
    path("login/", login_view),
    path("private/", private),
    path("token/", token),
    path("logout/", logout_view),
    path("api/me/", Me.as_view()),
    path("api/register/", RegistrationView.as_view(), name="register"),
    path("admin/", admin.site.urls),
]
