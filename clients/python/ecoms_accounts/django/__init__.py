"""The account service in a Django project.

Add ``"ecoms_accounts.django"`` to INSTALLED_APPS (its app label is
``ecoms_accounts``), then:

- ``AUTHENTICATION_BACKENDS = ["ecoms_accounts.django.backends.AccountServiceBackend"]``:
  ``authenticate()`` signs in at the service, and each account gets a local
  user (linked by :class:`~ecoms_accounts.django.models.AccountLink`);
- ``ecoms_accounts.django.rest.AccessTokenAuthentication``: Django REST
  framework authentication by the service's access tokens, verified offline;
- ``ecoms_accounts.django.rest.RegistrationView``: Register behind a DRF view.

Settings: ``ECOMS_ACCOUNTS = {"TARGET": "accounts:50051", "API_KEY": ...,
"JWKS_URL": ..., "AUDIENCE": ..., "ISSUER": ...}`` (see
:mod:`ecoms_accounts.django.conf`).
"""
