"""The Django app of the integration."""

from django.apps import AppConfig


class EcomsAccountsConfig(AppConfig):
    name = "ecoms_accounts.django"
    # The module path ends in "django", which says nothing in a project.
    label = "ecoms_accounts"
    verbose_name = "Ecoms accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the receivers and registers the system checks.
        from . import checks, sessions  # noqa: F401
