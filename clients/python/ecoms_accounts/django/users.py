"""The local user of an account: found by its AccountLink, made on first
sight.

A new local user's username is the account id: unique, and it never
changes, where the e-mail address may. Its password is unusable, since the
account service holds the password. The e-mail address and names are copied
from the account at each password sign-in.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from .._proto.account.v1 import account_pb2 as pb
from .models import AccountLink

__all__ = ["user_for_account"]

# Account fields copied onto the local user, where its model has them.
_COPIED = ("email", "first_name", "last_name")


def user_for_account(account_id: str, account: pb.Account | None = None) -> Any:
    """The local user linked to ``account_id``, linked to a new user on first
    sight; with ``account``, its address and names are copied onto it."""
    link = AccountLink.objects.select_related("user").filter(account_id=account_id).first()
    if link is None:
        link = _link_new_user(account_id)
    user = link.user
    if account is not None:
        changed = [
            name
            for name in _COPIED
            if hasattr(user, name) and getattr(user, name) != getattr(account, name)
        ]
        for name in changed:
            setattr(user, name, getattr(account, name))
        if changed:
            user.save(update_fields=changed)
    return user


def _link_new_user(account_id: str) -> AccountLink:
    user_model = get_user_model()
    try:
        with transaction.atomic():
            user = user_model(**{user_model.USERNAME_FIELD: account_id})
            user.set_unusable_password()
            user.save()
            return AccountLink.objects.create(user=user, account_id=account_id)
    except IntegrityError:
        # Another request linked the account first: use its user.
        return AccountLink.objects.select_related("user").get(account_id=account_id)
