"""Fixtures: the real service, once per backend (SQLite, and PostgreSQL when
TEST_DATABASE_URL names a server), and accounts in it. Each test makes its
own accounts, with addresses of its own, so no test depends on another."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecoms_accounts import AccountClient

import service as svc


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[svc.Service]:
    backend = request.param
    directory: Path = tmp_path_factory.mktemp(f"service-{backend}")
    database = None
    server_url = os.environ.get("TEST_DATABASE_URL", "")
    if backend == "sqlite":
        database_url = f"sqlite://{directory / 'accounts.db'}"
    elif server_url:
        database, database_url = svc.create_database(server_url)
    elif os.environ.get("REQUIRE_POSTGRES_TESTS") == "1":
        pytest.fail("REQUIRE_POSTGRES_TESTS=1 but TEST_DATABASE_URL is not set")
    else:
        pytest.skip("set TEST_DATABASE_URL to a PostgreSQL server to run these on PostgreSQL too")
    try:
        running = svc.start(database_url, directory, backend)
        try:
            yield running
        finally:
            running.stop()
    finally:
        if database is not None:
            svc.drop_database(server_url, database)


@pytest.fixture
def accounts(service: svc.Service) -> AccountClient:
    """A client with the ``shop`` key: every scope."""
    return service.client()


@dataclass
class Shopper:
    email: str
    id: str
    password: str = svc.PASSWORD


def register(accounts: AccountClient, email: str | None = None) -> Shopper:
    address = email or svc.new_email()
    answer = accounts.register(
        email=address,
        username="shopper",
        password=svc.PASSWORD,
        confirm_password=svc.PASSWORD,
        term_and_condition=True,
    )
    return Shopper(address, answer.account.id)


@pytest.fixture
def unverified(accounts: AccountClient) -> Shopper:
    """A registered account whose address is not confirmed yet."""
    return register(accounts)


@pytest.fixture
def verified(service: svc.Service, accounts: AccountClient) -> Shopper:
    """A registered account, confirmed with the link of its welcome mail."""
    shopper = register(accounts)
    accounts.confirm_registration(
        token=service.wait_for_mail(shopper.email, "confirm-registration").token
    )
    return shopper
