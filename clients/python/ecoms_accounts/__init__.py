"""Python client of the account service (``account.v1.AccountService``).

- :class:`AccountClient`: one method per RPC, keyword arguments in, response
  messages out, typed exceptions (:mod:`ecoms_accounts.errors`) on refusal.
- :class:`AccessTokenVerifier`: the offline check of access tokens against
  the service's published keys.
- ``ecoms_accounts.pb``: the generated messages and enums (``pb.Account``,
  ``pb.EVENT_TYPE_ACCOUNT_REGISTERED``, ...).
- :mod:`ecoms_accounts.django`: an authentication backend, Django REST
  framework authentication and a registration view (``pip install
  "ecoms-accounts[django]"``).
"""

from . import errors
from ._proto.account.v1 import account_pb2 as pb
from .client import CHUNK_SIZE, AccountClient, EventStream
from .tokens import AccessTokenVerifier

__all__ = ["AccessTokenVerifier", "AccountClient", "CHUNK_SIZE", "EventStream", "errors", "pb"]
