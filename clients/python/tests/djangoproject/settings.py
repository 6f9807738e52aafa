"""A Django project for the integration's tests. ECOMS_ACCOUNTS points
nowhere here: the tests point it at the service they started."""

SECRET_KEY = "django-tests-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
USE_TZ = True
ROOT_URLCONF = "djangoproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "ecoms_accounts.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}

AUTHENTICATION_BACKENDS = ["ecoms_accounts.django.backends.AccountServiceBackend"]
ECOMS_ACCOUNTS = {"TARGET": "127.0.0.1:9"}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ecoms_accounts.django.rest.AccessTokenAuthentication"],
}
LOGIN_URL = "/login/"
