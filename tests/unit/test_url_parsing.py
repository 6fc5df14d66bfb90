"""Database URLs: parsing every accepted form, and never leaking a password."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from backout.model.errors import ConfigError
from backout.model.urls import DatabaseURL, mask_url, parse_url, scrub, with_params

BASE = Path("/project")


def url_error(raw: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_url(raw, base_dir=BASE)
    return str(info.value)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "POSTGRESQL"])
def test_postgres_url(scheme: str) -> None:
    url = parse_url(f"{scheme}://app:s3cret@db.example.com:5433/shop?sslmode=require")
    assert (url.dialect, url.host, url.port, url.user, url.password, url.database) == (
        "postgresql",
        "db.example.com",
        5433,
        "app",
        "s3cret",
        "shop",
    )
    assert url.params == (("sslmode", "require"),)
    assert (url.schema, url.path) == (None, None)


def test_postgres_url_without_host_user_or_port() -> None:
    url = parse_url("postgresql:///local_db")
    assert (url.host, url.port, url.user, url.password, url.database) == (
        None,
        None,
        None,
        None,
        "local_db",
    )


def test_prisma_schema_and_prisma_only_params_are_moved_out() -> None:
    url = parse_url(
        "postgresql://u:p@h/db?schema=app&connection_limit=5&pgbouncer=true&sslmode=disable"
        "&pool_timeout=10&statement_cache_size=0&application_name=x"
    )
    assert url.schema == "app"
    assert url.params == (("sslmode", "disable"), ("application_name", "x"))
    assert parse_url("postgresql://h/db?schema=").schema is None


def test_percent_encoded_user_password_and_database() -> None:
    url = parse_url("postgresql://us%40er:p%40ss%2Fw%3Ard@h/my%20db")
    assert (url.user, url.password, url.database) == ("us@er", "p@ss/w:rd", "my db")


@pytest.mark.parametrize("scheme", ["mysql", "mariadb"])
def test_mysql_and_mariadb(scheme: str) -> None:
    url = parse_url(f"{scheme}://root@127.0.0.1:3306/test")
    assert (url.dialect, url.host, url.port, url.user, url.password, url.database) == (
        "mysql",
        "127.0.0.1",
        3306,
        "root",
        None,
        "test",
    )


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ("sqlite:///app.db", BASE / "app.db"),
        ("sqlite:///data/app.db?mode=rwc", BASE / "data" / "app.db"),
        ("sqlite:///../up/app.db", Path("/up/app.db")),
        ("sqlite:////var/lib/app.db", Path("/var/lib/app.db")),
        ("SQLITE:////var/lib/app.db", Path("/var/lib/app.db")),
        ("sqlite:///my%20app.db", BASE / "my app.db"),
        ("file:./dev.db", BASE / "dev.db"),
        ("file:dev.db", BASE / "dev.db"),
        ("file:./dev.db?connection_limit=1", BASE / "dev.db"),
        ("file:/var/lib/dev.db", Path("/var/lib/dev.db")),
        ("file:///var/lib/dev.db", Path("/var/lib/dev.db")),
    ],
)
def test_sqlite_paths(raw: str, path: Path) -> None:
    url = parse_url(raw, base_dir=BASE)
    assert (url.dialect, url.path, url.database) == ("sqlite", path, str(path))
    assert url.password is None


@pytest.mark.parametrize("raw", ["sqlite:///:memory:", "file::memory:"])
def test_sqlite_in_memory(raw: str) -> None:
    url = parse_url(raw, base_dir=BASE)
    assert (url.dialect, url.path, url.database) == ("sqlite", None, ":memory:")


def test_relative_sqlite_defaults_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_url("sqlite:///x.db").path == tmp_path.resolve() / "x.db"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "mongodb://u:hunter2@h/db",
            "unsupported database URL 'mongodb://u:***@h/db': expected one of file:, mariadb://, "
            "mysql://, postgres://, postgresql://, sqlite://",
        ),
        (
            "localhost/db",
            "unsupported database URL 'localhost/db': expected one of file:, mariadb://, "
            "mysql://, postgres://, postgresql://, sqlite://",
        ),
        ("postgresql://u:hunter2@h:99999/db", "invalid port in database URL 'postgresql://u:***@h:99999/db'"),
        ("postgresql://u:hunter2@h:port/db", "invalid port in database URL 'postgresql://u:***@h:port/db'"),
        (
            "sqlite://app.db",
            "invalid SQLite URL 'sqlite://app.db': use sqlite:///relative/path.db "
            "or sqlite:////absolute/path.db",
        ),
        ("sqlite:///", "invalid SQLite URL 'sqlite:///': no file name"),
        ("file:", "invalid SQLite URL 'file:': no file name"),
    ],
)  # fmt: skip
def test_url_errors(raw: str, message: str) -> None:
    assert url_error(raw) == message


def test_str_and_repr_never_show_the_password() -> None:
    url = parse_url("postgresql://app:hunter2@h/db?password=hunter3&sslpassword=hunter4")
    assert str(url) == "postgresql://app:***@h/db?password=***"
    assert url.masked() == str(url)
    for secret in ("hunter2", "hunter3", "hunter4"):
        assert secret not in repr(url)
        assert secret not in str(url)
    assert set(url.secrets) == {"hunter2", "hunter3", "hunter4"}


def test_with_database_and_with_path() -> None:
    url = parse_url("postgresql://app:pw@h:5432/shop?sslmode=require")
    other = url.with_database("scratch 1")
    assert (other.database, other.host, other.password, other.params) == (
        "scratch 1",
        "h",
        "pw",
        (("sslmode", "require"),),
    )
    lite = parse_url("sqlite:///a.db", base_dir=BASE).with_path(Path("/tmp/b.db"))
    assert lite.path == Path("/tmp/b.db")


def test_with_params_adds_query_parameters() -> None:
    url = parse_url("postgresql://h/db?sslmode=require")
    assert with_params(url, connect_timeout="5") == (
        "postgresql://h/db?sslmode=require&connect_timeout=5"
    )


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa/ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:pa:ss@h/db", "postgresql://u:***@h/db"),
        (
            "error at postgresql://a:one@h1/x and mysql://b:two@h2/y.",
            "error at postgresql://a:***@h1/x and mysql://b:***@h2/y.",
        ),
        ("host=h password=secret user=u", "host=h password=*** user=u"),
        ("host=h password = 'se cret' user=u", "host=h password = *** user=u"),
        ("PGPASSWORD=secret psql", "PGPASSWORD=*** psql"),
        ("?sslpassword=secret", "?sslpassword=***"),
        ("sqlite:///app.db", "sqlite:///app.db"),
        ("no url here", "no url here"),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_scrub_masks_urls_and_removes_literal_secrets() -> None:
    message = 'password authentication failed for "app" (hunter2) at postgresql://app:hunter2@h/db'
    assert scrub(message, ("hunter2",)) == (
        'password authentication failed for "app" (***) at postgresql://app:***@h/db'
    )
    # very short secrets are not scrubbed from free text (they would blank out ordinary words)
    assert scrub("ab cd", ("ab",)) == "ab cd"


# --- properties: a password never shows --------------------------------------------------------

PASSWORD = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30)
USER = st.text(alphabet=st.characters(codec="utf-8"), max_size=10)


def pg_url(user: str, password: str) -> str:
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
        "@db.example.com:5432/app?sslmode=require"
    )


@given(USER, PASSWORD)
def test_property_encoded_password_is_always_masked(user: str, password: str) -> None:
    raw = pg_url(user, password)
    expected = f"postgresql://{quote(user, safe='')}:***@db.example.com:5432/app?sslmode=require"
    assert mask_url(raw) == expected
    url = parse_url(raw)
    assert (url.user or "", url.password) == (user, password)
    assert url.masked() == expected
    assert str(url) == expected
    # repr does not depend on the password at all
    assert repr(url) == repr(parse_url(pg_url(user, "x")))
    assert set(url.secrets) == {password, quote(password, safe="")}


@given(PASSWORD, st.sampled_from(["postgresql", "mysql", "mariadb", "postgres"]))
def test_property_scrub_removes_every_trace(password: str, scheme: str) -> None:
    assume(len(password) >= 3 and "*" not in password)
    raw = f"{scheme}://app:{quote(password, safe='')}@h:1/db"
    url = parse_url(raw)
    message = (
        f'connection to server failed: FATAL: password "{password}" rejected for {raw} '
        f"(password={password})"
    )
    cleaned = scrub(message, url.secrets)
    assert password not in cleaned
    assert quote(password, safe="") not in cleaned
    masked_url = f"{scheme}://app:***@h:1/db"
    if password not in masked_url:  # a password like "pos" is rightly removed from "postgresql"
        assert masked_url in cleaned


@given(PASSWORD.filter(lambda p: not any(c.isspace() for c in p)))
def test_property_unencoded_password_is_masked_too(password: str) -> None:
    # a password pasted without percent-encoding (may hold @ / : ? #) is still hidden whole
    assert mask_url(f"postgresql://u:{password}@h/db") == "postgresql://u:***@h/db"
    if password.endswith("\\"):
        # libpq reads "\\ " as an escaped blank: the value goes on, so more is masked
        assert mask_url(f"password={password} host=h") == "password=***"
    else:
        assert mask_url(f"password={password} host=h") == "password=*** host=h"


@pytest.mark.parametrize(
    ("conninfo", "masked"),
    [
        ("password=''0 host=h", "password=*** host=h"),  # a quoted run then more: one value
        ("password='a b'c host=h", "password=*** host=h"),
        ("password=a\\ b host=h", "password=*** host=h"),  # an escaped blank goes on
        ("sslpassword=x dbname=d", "sslpassword=*** dbname=d"),
    ],
)
def test_conninfo_password_is_masked_as_libpq_reads_it(conninfo: str, masked: str) -> None:
    assert mask_url(conninfo) == masked


def test_database_url_is_frozen() -> None:
    url = parse_url("sqlite:///:memory:")
    assert isinstance(url, DatabaseURL)
    with pytest.raises(AttributeError):
        url.password = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("postgresql:/u:hunter2@h/db", "expected postgresql:// then"),  # libpq echoes it whole
        ("mysql:/u:hunter2@h/db", "expected mysql:// then"),
        ("postgres//u:hunter2@h/db", "unsupported database URL: expected one of"),
        ("postgresql://u:hun@ter2@h/db", "unencoded @, /, ? or #"),  # libpq: host 'ter2@h'
        ("postgresql://u:hun/ter2@h/db", "unencoded @, /, ? or #"),
        ("postgresql://u:hun#ter2@h/db", "unencoded @, /, ? or #"),
        ("mysql://u:hun?ter2@h/db", "invalid port in database URL 'mysql://u:***@h/db'"),
    ],
)
def test_a_malformed_url_is_refused_without_repeating_it(raw: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_url(raw)
    assert message in str(caught.value)
    assert "ter2" not in str(caught.value)


def test_an_encoded_password_and_an_at_in_the_query_are_accepted() -> None:
    url = parse_url("postgresql://u:p%40s%2Fs@h:5/db?application_name=a@b")
    assert (url.password, url.host, url.database) == ("p@s/s", "h", "db")
