"""Which local user stands for which account of the account service."""

from django.conf import settings
from django.db import models


class AccountLink(models.Model):
    """Links a local user to an account by the account's id, which never
    changes (its e-mail address may). The account service holds the
    password; the local user holds what the project attaches to a shopper
    (permissions, orders, admin access)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_link"
    )
    account_id = models.UUIDField(unique=True)

    class Meta:
        verbose_name = "account link"

    def __str__(self) -> str:
        return f"{self.user} -> {self.account_id}"
