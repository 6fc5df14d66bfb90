"""Realistic sample rows for the example projects in ``examples/``, at a chosen scale.

:func:`fill` writes into a database whose schema is at the example's *latest* migration (apply
the migrations first) and whose tables are still empty. The rows are deterministic for a given
``seed`` and ``scale``, so a rehearsal or a benchmark can be repeated exactly.

Examples and what ``scale`` counts:

- ``vouchers`` (PostgreSQL or SQLite), ``vouchers-sqlite`` (SQLite) and ``vouchers-mysql``
  (MySQL/MariaDB): ``scale`` users. Per user about 4.4 token transactions, one balance and
  about one voucher redemption; one voucher per 20 users. About 7.4 rows per unit of scale:
  ``scale=135_000`` gives a million rows.
- ``giftregistry`` (PostgreSQL): ``scale`` registries. Per registry about 8 items, 3.7
  purchases, 1.9 invitations, plus addresses, metafield syncs, group gift contributions,
  sessions and audit rows: about 18.5 rows per unit of scale (``scale=54_000``: a million).

Invariants the example rollbacks rely on, and that tests can check:

- vouchers: every ``UserTokenBalance.balance`` is the sum of the user's ``TokenTransaction``
  amounts; usage never exceeds the tokens a user bought or got as a bonus, so taking voucher
  tokens back never drives a balance negative; ``'voucher_redemption'`` transactions have
  ``createdAt`` spread from 2024-03-15 to 2024-12-31, so a ``since`` cut-off selects a subset;
  ``Voucher.currentUses`` is the number of the voucher's redemptions.
- giftregistry: each purchase's ``variantId`` is its item's, so the rollback of
  ``fix_critical_schema_drift`` and the migration's backfill both find their rows; a PAID group
  gift contribution always has its purchase; some sessions hold only an encrypted token.

Timestamps are written as ``'YYYY-MM-DD HH:MM:SS.SSS'`` UTC text: PostgreSQL parses it into
``TIMESTAMP(3)``, and SQLite keeps it as ISO-8601 text (the vouchers-sqlite convention).

Everything is written in one transaction. On PostgreSQL the filled tables' foreign keys and
secondary indexes are dropped before the COPY and re-created after it, as pg_restore does (a
million rows take seconds instead of a minute); the schema afterwards is exactly the same.

Run ``python -m backout.demo.sampledata EXAMPLE URL [--scale N] [--seed S]`` to fill from a shell.
"""

from __future__ import annotations

import base64
import bisect
import functools
import itertools
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

from backout.dialects import dialect_for
from backout.dialects.fill import Row, TableRows
from backout.model.errors import ConfigError, UsageError
from backout.model.urls import parse_url

__all__ = ["EXAMPLES", "fill"]

#: example name → the dialects it can be filled on
EXAMPLES: dict[str, tuple[str, ...]] = {
    "giftregistry": ("postgresql",),
    "vouchers": ("postgresql", "sqlite"),
    "vouchers-sqlite": ("sqlite",),
    "vouchers-mysql": ("mysql",),
}

_T = TypeVar("_T")

_EPOCH = datetime(1970, 1, 1)


def fill(example: str, url: str, *, scale: int = 1000, seed: int = 0) -> dict[str, int]:
    """Fill the migrated, empty database at ``url`` with realistic rows for ``example``.

    Returns the number of rows inserted per table, in insertion order. Everything is written in
    one transaction: on any error nothing is left behind. The dialect writes the rows its
    fastest way (:meth:`backout.dialects.base.Dialect.fill_tables`: PostgreSQL with COPY).
    """
    if example not in EXAMPLES:
        known = ", ".join(sorted(EXAMPLES))
        raise UsageError(f"unknown example {example!r}: expected one of {known}")
    if scale < 1:
        raise UsageError(f"scale must be at least 1, not {scale}")
    parsed = parse_url(url)
    if parsed.dialect not in EXAMPLES[example]:
        allowed = " or ".join(EXAMPLES[example])
        raise ConfigError(
            f"example {example!r} needs a {allowed} database, not {parsed.dialect} "
            f"({parsed.masked()})"
        )
    rng = random.Random(seed)
    # Both vouchers flavours share one generator, so they get the same rows for the same seed.
    if example == "giftregistry":
        tables = _GiftRegistryData(rng, scale).tables()
    else:
        tables = _VoucherData(rng, scale).tables()
    return dialect_for(parsed).fill_tables(parsed, tables)


# --------------------------------------------------------------------------- helpers


@functools.cache
def _date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).date().isoformat()


def _ts(ms: int) -> str:
    """Milliseconds since the epoch → ``'YYYY-MM-DD HH:MM:SS.SSS'`` (UTC)."""
    day, rest = divmod(ms, _DAY)
    seconds, milli = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date(day)} {hour:02d}:{minute:02d}:{second:02d}.{milli:03d}"


def _ms(year: int, month: int, day: int) -> int:
    return int((datetime(year, month, day) - _EPOCH).total_seconds()) * 1000


_DAY = 86_400_000


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST_NAMES = _words(
    """
    Olivia Liam Emma Noah Ava Elijah Sophia James Isabella Lucas Mia Mateo Amelia Ethan
    Harper Leo Evelyn Hiro Priya Kwame Chloe Omar Zoe Diego Nora Arjun Lena Felix Aisha
    Tomás
    """
)
_LAST_NAMES = _words(
    """
    Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Nguyen Kim
    Patel Müller Rossi Dubois Silva Kowalski O'Brien Tanaka Haddad Okafor Johansson Novak
    Cohen Singh Lopez
    """
)
_EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "inbox.example.io")


def _person(rand: Callable[[], float]) -> tuple[str, str]:
    return _pick(rand, _FIRST_NAMES), _pick(rand, _LAST_NAMES)


def _email_local(first: str, last: str) -> str:
    plain = f"{first}.{last}".lower().replace("'", "")
    return plain.replace("ü", "u").replace("á", "a")


def _between(rand: Callable[[], float], lo: int, hi: int) -> int:
    """A uniform integer in ``[lo, hi)``; several times faster than ``randrange``."""
    return lo + int(rand() * (hi - lo))


def _pick(rand: Callable[[], float], seq: Sequence[_T]) -> _T:
    """A uniform choice from ``seq``; several times faster than ``choice``."""
    return seq[int(rand() * len(seq))]


def _weighted(rand: Callable[[], float], cumulative: Sequence[float]) -> int:
    """An index drawn with the given cumulative weights (the last one is the total)."""
    return bisect.bisect_right(cumulative, rand() * cumulative[-1])


def _choose(rand: Callable[[], float], values: Sequence[_T], cumulative: Sequence[float]) -> _T:
    """A choice from ``values`` with the given cumulative weights."""
    return values[_weighted(rand, cumulative)]


def _cuid(rng: random.Random, n: int) -> str:
    """A cuid-shaped id (25 characters, starts with ``c``), unique by ``n``."""
    return f"c{n:08x}{rng.getrandbits(64):016x}"


def _b64(rng: random.Random, nbytes: int) -> str:
    return base64.b64encode(rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big")).decode()


# --------------------------------------------------------------------------- vouchers

_VOUCHERS_END = _ms(2025, 1, 1) - 1  # data "as of" the end of 2024
_VOUCHER_SYSTEM_LIVE = _ms(2024, 3, 15)
_VOUCHER_PREFIXES = (
    "WELCOME",
    "SPRING",
    "SUMMER",
    "LAUNCH",
    "PARTNER",
    "REFERRAL",
    "BLACKFRIDAY",
    "HOLIDAY",
)
_REDEMPTIONS_PER_USER = (35.0, 75.0, 93.0, 100.0)  # 0, 1, 2 or 3, cumulative weights
_PURCHASES_PER_USER = (10.0, 55.0, 85.0, 100.0)
_USAGE_LABELS = ("Image generation", "Document summary", "API batch", "Export to PDF", "Chat")


@dataclass
class _Voucher:
    id: str
    code: str
    type: str
    value: int
    created: int
    expires: int | None
    uses: int = 0
    last_use: int = 0


class _VoucherData:
    """Rows for examples/vouchers; :meth:`tables` must be consumed in its order.

    Later tables read state that earlier ones leave behind (redemption plans, balances), which
    keeps memory proportional to the number of users rather than to the number of rows.
    """

    def __init__(self, rng: random.Random, scale: int) -> None:
        self.rng = rng
        self.n_users = scale
        self.vouchers: list[_Voucher] = []
        self.users: list[tuple[str, int]] = []  # (id, createdAt ms)
        # (user index, voucher index, createdAt ms), in user order
        self.redemptions: list[tuple[int, int, int]] = []
        self.balances: list[tuple[int, int]] = []  # per user: (balance, last change ms)
        self._plan_vouchers(max(5, scale // 20))

    def tables(self) -> list[TableRows]:
        """Tables in foreign-key order, each with a lazy row source."""
        return [
            TableRows("User", _words("id email name createdAt updatedAt"), self._user_rows),
            TableRows(
                "Voucher",
                _words(
                    "id code type value maxUses currentUses status description expiresAt createdAt "
                    "updatedAt"
                ),
                self._voucher_rows,
            ),
            TableRows(
                "VoucherRedemption",
                _words("id voucherId userId tokensGranted createdAt"),
                self._redemption_rows,
            ),
            TableRows(
                "TokenTransaction",
                _words("id userId amount source description createdAt"),
                self._transaction_rows,
                serial="id",
            ),
            TableRows(
                "UserTokenBalance",
                _words("id userId balance updatedAt"),
                self._balance_rows,
            ),
        ]

    def _plan_vouchers(self, count: int) -> None:
        rng = self.rng
        rand = rng.random
        for i in range(count):
            kind = _choose(rand, ("TOKENS", "PERCENT_DISCOUNT", "FREE_TRIAL"), (70.0, 90.0, 100.0))
            if kind == "TOKENS":
                value = _pick(rand, (50, 100, 200, 250, 500))
            elif kind == "PERCENT_DISCOUNT":
                value = _pick(rand, (10, 15, 20, 25, 50))
            else:
                value = _pick(rand, (7, 14, 30))
            created = _between(rand, _VOUCHER_SYSTEM_LIVE, _ms(2024, 11, 1))
            expires = None if rand() < 0.3 else created + _between(rand, 30, 271) * _DAY
            code = f"{_pick(rand, _VOUCHER_PREFIXES)}-{i:05X}{rng.getrandbits(16):04X}"
            self.vouchers.append(_Voucher(_cuid(rng, i), code, kind, value, created, expires))

    def _user_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        n_vouchers = len(self.vouchers)
        for i in range(self.n_users):
            first, last = _pick(rand, _FIRST_NAMES), _pick(rand, _LAST_NAMES)
            created = _between(rand, _ms(2023, 1, 1), _ms(2024, 11, 1))
            user_id = _cuid(rng, i)
            self.users.append((user_id, created))
            # Plan this user's redemptions now: the Voucher rows need their use counts.
            k = _weighted(rand, _REDEMPTIONS_PER_USER)
            for v_index in rng.sample(range(n_vouchers), min(k, n_vouchers)) if k else ():
                voucher = self.vouchers[v_index]
                lo = max(created, voucher.created)
                hi = min(voucher.expires or _VOUCHERS_END, _VOUCHERS_END)
                if lo >= hi:
                    continue
                at = _between(rand, lo, hi)
                self.redemptions.append((i, v_index, at))
                voucher.uses += 1
                voucher.last_use = max(voucher.last_use, at)
            email = f"{_email_local(first, last)}.{i}@{_pick(rand, _EMAIL_DOMAINS)}"
            updated = created + _between(rand, 0, 30 * _DAY)
            yield (user_id, email, f"{first} {last}", _ts(created), _ts(updated))

    def _voucher_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for v in self.vouchers:
            roll = rand()
            if v.expires is not None and v.expires <= _VOUCHERS_END:
                status, max_uses = "EXPIRED", v.uses + _between(rand, 0, 51)
            elif roll < 0.05:
                status, max_uses = "INACTIVE", v.uses + _between(rand, 1, 51)
            elif v.uses > 0 and roll < 0.30:
                status, max_uses = "EXHAUSTED", v.uses
            else:
                status, max_uses = "ACTIVE", v.uses + _pick(rand, (1, 10, 100, 1000))
            what = {
                "TOKENS": f"{v.value} free tokens",
                "PERCENT_DISCOUNT": f"{v.value}% off a token pack",
                "FREE_TRIAL": f"{v.value}-day free trial",
            }[v.type]
            updated = max(v.created, v.last_use)
            yield (
                v.id,
                v.code,
                v.type,
                v.value,
                max(max_uses, 1),
                v.uses,
                status,
                what,
                None if v.expires is None else _ts(v.expires),
                _ts(v.created),
                _ts(updated),
            )

    def _redemption_rows(self) -> Iterator[Row]:
        rng = self.rng
        for n, (u_index, v_index, at) in enumerate(self.redemptions):
            voucher = self.vouchers[v_index]
            granted = voucher.value if voucher.type == "TOKENS" else 0
            yield (_cuid(rng, n), voucher.id, self.users[u_index][0], granted, _ts(at))

    def _transaction_rows(self) -> Iterator[Row]:
        rand = self.rng.random
        next_id = 1
        r = 0  # position in self.redemptions, which is in user order
        for i, (user_id, created) in enumerate(self.users):
            span = max(_VOUCHERS_END - created, 1)
            # (at, amount, source, description)
            credits: list[tuple[int, int, str, str]] = []
            if rand() < 0.3:
                credits.append(
                    (created + _between(rand, 1000, 60_000), 50, "bonus", "Welcome bonus")
                )
            for _ in range(_weighted(rand, _PURCHASES_PER_USER)):
                amount = _pick(rand, (100, 250, 500, 1000))
                at = created + _between(rand, 0, span)
                credits.append((at, amount, "purchase", f"Token pack ({amount} tokens)"))
            credits.sort()
            txs = list(credits)
            # Usage only ever spends bought or bonus tokens already received (never voucher
            # tokens), so no balance is negative at any point in time, and taking voucher
            # tokens back can never make one negative either.
            spendable = 0
            c = 0
            for at in sorted(created + _between(rand, 0, span) for _ in range(int(rand() * 7))):
                while c < len(credits) and credits[c][0] <= at:
                    spendable += credits[c][1]
                    c += 1
                spend = min(_pick(rand, (5, 10, 20, 25, 50, 100)), spendable)
                if spend == 0:
                    continue
                spendable -= spend
                txs.append((at, -spend, "usage", _pick(rand, _USAGE_LABELS)))
                if rand() < 0.03:
                    # Refunded later; never counted as spendable, which only makes usage rarer.
                    refund_at = at + _between(rand, 60_000, _DAY)
                    txs.append((refund_at, spend, "refund", "Refund for a failed job"))
            while r < len(self.redemptions) and self.redemptions[r][0] == i:
                _, v_index, at = self.redemptions[r]
                voucher = self.vouchers[v_index]
                if voucher.type == "TOKENS":
                    txs.append((at, voucher.value, "voucher_redemption", f"Voucher {voucher.code}"))
                r += 1
            txs.sort()
            balance = 0
            for at, amount, source, description in txs:
                balance += amount
                yield (next_id, user_id, amount, source, description, _ts(at))
                next_id += 1
            self.balances.append((balance, txs[-1][0] if txs else created))

    def _balance_rows(self) -> Iterator[Row]:
        rng = self.rng
        for i, ((user_id, _), (balance, at)) in enumerate(
            zip(self.users, self.balances, strict=True)
        ):
            yield (_cuid(rng, i), user_id, balance, _ts(at))


# --------------------------------------------------------------------------- giftregistry

_GIFT_END = _ms(2025, 10, 1)  # data "as of" 2025-10-01
_ENCRYPTION_LIVE = _ms(2025, 7, 20)  # 20250720000000_encrypt_access_tokens
_SCOPES = "read_products,read_customers,write_customers,read_orders,write_metaobjects"
_SHOP_WORDS = _words(
    """
    maple harbor linen copper juniper meadow atlas willow summit cedar pebble lantern orchid
    saffron tidal velvet
    """
)
_SHOP_NOUNS = ("home", "goods", "studio", "market", "supply", "living", "co", "kitchen")
_EVENTS = (
    ("WEDDING", "wedding", 40),
    ("BABY_SHOWER", "baby", 25),
    ("BIRTHDAY", "birthday", 12),
    ("HOUSEWARMING", "home", 10),
    ("GRADUATION", "grad", 5),
    ("OTHER", "gifts", 8),
)
_PRODUCTS = (
    ("Stand Mixer", 429_00),
    ("Dutch Oven 5.5 qt", 359_95),
    ("Espresso Machine", 699_00),
    ("Linen Duvet Set", 289_00),
    ("Bath Towel Set", 89_50),
    ("Chef's Knife 8\"", 149_00),
    ("Wine Glasses (set of 4)", 64_00),
    ("Cast Iron Skillet", 45_99),
    ("Blender", 119_00),
    ("Air Purifier", 249_00),
    ("Robot Vacuum", 499_00),
    ("Dinnerware Set", 219_00),
    ("Throw Blanket", 79_00),
    ("Stroller", 649_00),
    ("Baby Monitor", 179_99),
    ("Crib Sheets (3 pack)", 49_00),
    ("Diaper Bag", 95_00),
    ("Car Seat", 329_00),
    ("Picnic Basket", 129_00),
    ("Cookbook", 35_00),
    ("Luggage Set", 389_00),
    ("Coffee Grinder", 169_00),
    ("Candle Set", 42_00),
    ("Cutting Board", 58_00),
    ("Hand Mixer", 69_99),
    ("Food Processor", 229_00),
    ("Pour-over Kettle", 99_00),
    ("Garden Tool Set", 74_00),
    ("Smart Speaker", 99_99),
    ("Toaster Oven", 199_00),
)
_VARIANTS_PER_PRODUCT = 4
#: (title, product id, variant id, image URL, price in cents, price as text), precomputed
_VARIANTS = tuple(
    (
        title,
        f"gid://shopify/Product/{8_800_000_000 + p}",
        f"gid://shopify/ProductVariant/{45_000_000_000 + p * _VARIANTS_PER_PRODUCT + v}",
        f"https://cdn.shopify.com/s/files/1/0000/products/{p}.jpg",
        cents,
        f"{cents // 100}.{cents % 100:02d}",
    )
    for p, (title, cents) in enumerate(_PRODUCTS)
    for v in range(_VARIANTS_PER_PRODUCT)
)
_ADDRESSES = (
    ("123 Main St", "Springfield", "IL", "62704", "US"),
    ("42 Harbour Rd", "Halifax", "NS", "B3H 1A1", "CA"),
    ("9 Rue des Lilas", "Lyon", None, "69003", "FR"),
    ("77 King St W", "Toronto", "ON", "M5K 1A1", "CA"),
    ("500 Pine Ave", "Portland", "OR", "97205", "US"),
    ("18 Elm Grove", "Manchester", None, "M1 2AB", "GB"),
    ("2200 Ocean Blvd", "San Diego", "CA", "92109", "US"),
)
_AUDIT_EVENTS = (
    ("TOKEN_ENCRYPTED", 40),
    ("SESSION_CREATED", 30),
    ("SESSION_REVOKED", 10),
    ("TOKEN_DECRYPT_FAILED", 3),
    ("KEY_ROTATED", 1),
    ("DATA_PURGED", 6),
)
_USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Shopify/Webhook",
)


@dataclass
class _Registry:
    id: str
    shop: str
    owner: tuple[str, str]
    created: int
    status: str


class _PlannedPurchase(NamedTuple):
    id: str
    item_id: str
    variant: int  # index into _VARIANTS
    at: int
    group: bool


#: the giftregistry tables in foreign-key order: (name, columns, the method yielding rows)
_GIFTREGISTRY_TABLES: tuple[tuple[str, str, str], ...] = (
    (
        "sessions",
        (
            "id shop state isOnline scope expires accessToken userId firstName lastName email "
            "accountOwner locale collaborator emailVerified accessTokenEncrypted "
            "accessTokenIv accessTokenTag encryptionKeyVersion refreshTokenEncrypted "
            "refreshTokenExpires"
        ),
        "_session_rows",
    ),
    (
        "security_audit",
        "id shop sessionId eventType details ipAddress userAgent createdAt",
        "_audit_rows",
    ),
    (
        "registries",
        (
            "id shop customerId slug title description eventType eventDate status isPublic "
            "dataRetentionDays createdAt updatedAt"
        ),
        "_registry_rows",
    ),
    (
        "registry_items",
        (
            "id registryId productId variantId title imageUrl price quantityRequested "
            "quantityPurchased priority notes createdAt updatedAt"
        ),
        "_item_rows",
    ),
    (
        "registry_purchases",
        (
            "id orderId productId variantId quantity amount currency purchaserName "
            "purchaserEmail createdAt giftMessage isGroupGift registryItemId "
            "shopifyLineItemId thankYouSentAt"
        ),
        "_purchase_rows",
    ),
    (
        "group_gift_contributions",
        (
            "id registryItemId purchaseId contributorName contributorEmail amount currency "
            "message status paymentReference createdAt updatedAt"
        ),
        "_contribution_rows",
    ),
    (
        "registry_addresses",
        (
            "id registryId type firstName lastName company address1 address2 city province "
            "zip countryCode phone isDefault createdAt updatedAt"
        ),
        "_address_rows",
    ),
    (
        "registry_invitations",
        "id registryId email name token status sentAt respondedAt expiresAt createdAt",
        "_invitation_rows",
    ),
    (
        "metafield_syncs",
        (
            "id registryId shop ownerType ownerId namespace key metafieldId status attempts "
            "lastError payload syncedAt createdAt updatedAt"
        ),
        "_metafield_rows",
    ),
)


class _GiftRegistryData:
    """Rows for examples/giftregistry; :meth:`tables` must be consumed in its order."""

    def __init__(self, rng: random.Random, scale: int) -> None:
        self.rng = rng
        self.n_registries = scale
        rand = rng.random
        n_shops = max(3, scale // 250)
        self.shops: list[tuple[str, int]] = []  # (domain, installed at)
        for i in range(n_shops):
            domain = f"{_pick(rand, _SHOP_WORDS)}-{_pick(rand, _SHOP_NOUNS)}-{i}.myshopify.com"
            self.shops.append((domain, _between(rand, _ms(2023, 6, 1), _ms(2025, 9, 1))))
        self.registries: list[_Registry] = []
        self.purchases: list[_PlannedPurchase] = []
        # (item id, price in cents, purchase id or None, registry created at)
        self.group_gifts: list[tuple[str, int, str | None, int]] = []
        self._ids = 0

    def _id(self) -> str:
        self._ids += 1
        return _cuid(self.rng, self._ids)

    def tables(self) -> list[TableRows]:
        """Tables in foreign-key order, each with a lazy row source."""
        return [
            TableRows(name, _words(columns), getattr(self, rows))
            for name, columns, rows in _GIFTREGISTRY_TABLES
        ]

    def _encrypted(self) -> tuple[str, str, str, int]:
        rng = self.rng
        rand = rng.random
        return _b64(rng, 38), _b64(rng, 12), _b64(rng, 16), _pick(rand, (1, 1, 1, 2))

    def _session_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for domain, installed in self.shops:
            # Offline token: shops installed before the encryption migration still have the
            # plaintext token, most of them also the encrypted copy written by the backfill job.
            old = installed < _ENCRYPTION_LIVE
            plain = f"shpat_{rng.getrandbits(128):032x}" if old else None
            enc: tuple[str | None, str | None, str | None, int | None] = (None, None, None, None)
            if not old or rand() < 0.6:
                enc = self._encrypted()
            refresh: tuple[str | None, str | None] = (None, None)
            if enc[0] is not None and rand() < 0.3:
                refresh = (_b64(rng, 48), _ts(_GIFT_END + _between(rand, 1, 91) * _DAY))
            yield (
                f"offline_{domain}",
                domain,
                f"{rng.getrandbits(60):015x}",
                False,
                _SCOPES,
                None,
                plain,
                None,
                None,
                None,
                None,
                False,
                None,
                False,
                False,
                *enc,
                *refresh,
            )
            for _ in range(_between(rand, 0, 4)):
                first, last = _person(rand)
                user_id = _between(rand, 70_000_000_000, 80_000_000_000)
                encrypted_only = rand() < 0.5
                token = None if encrypted_only else f"shpua_{rng.getrandbits(128):032x}"
                enc_online = self._encrypted() if encrypted_only else (None, None, None, None)
                yield (
                    f"{domain}_{user_id}",
                    domain,
                    f"{rng.getrandbits(60):015x}",
                    True,
                    _SCOPES,
                    _ts(_GIFT_END + _between(rand, 0, _DAY)),
                    token,
                    user_id,
                    first,
                    last,
                    f"{_email_local(first, last)}@{domain.split('.')[0]}.example.com",
                    rand() < 0.3,
                    _pick(rand, ("en", "en", "fr", "de", "es")),
                    False,
                    True,
                    *enc_online,
                    None,
                    None,
                )

    def _audit_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        names = [e for e, _ in _AUDIT_EVENTS]
        weights = list(itertools.accumulate(float(w) for _, w in _AUDIT_EVENTS))
        for _ in range(max(1, self.n_registries // 2)):
            domain, _installed = _pick(rand, self.shops)
            event = _choose(rand, names, weights)
            details = json.dumps({"keyVersion": _pick(rand, (1, 2)), "source": "app"})
            ip = f"203.0.113.{_between(rand, 1, 255)}"
            yield (
                self._id(),
                domain,
                f"offline_{domain}",
                event,
                details,
                ip,
                _pick(rand, _USER_AGENTS),
                _ts(_between(rand, _ENCRYPTION_LIVE, _GIFT_END)),
            )

    def _registry_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        kinds = list(_EVENTS)
        weights = list(itertools.accumulate(float(w) for _, _, w in _EVENTS))
        for i in range(self.n_registries):
            domain, installed = _pick(rand, self.shops)
            created = _between(rand, max(installed, _ms(2024, 1, 1)), _GIFT_END - _DAY)
            owner = _person(rand)
            partner = _pick(rand, _FIRST_NAMES)
            event, word, _w = _choose(rand, kinds, weights)
            event_date = created + _between(rand, 20, 401) * _DAY
            if rand() < 0.05:
                status = "DRAFT"
            elif event_date < _GIFT_END - 60 * _DAY:
                status = "COMPLETED" if rand() < 0.8 else "ARCHIVED"
            else:
                status = "ACTIVE"
            title = {
                "WEDDING": f"{owner[0]} & {partner}'s Wedding",
                "BABY_SHOWER": f"Baby {owner[1]}",
                "BIRTHDAY": f"{owner[0]}'s Birthday",
                "HOUSEWARMING": f"{owner[0]}'s New Home",
                "GRADUATION": f"{owner[0]} Graduates!",
                "OTHER": f"{owner[0]}'s Wish List",
            }[event]
            retention = 365 if created < _ENCRYPTION_LIVE else 90
            if rand() < 0.1:
                retention = _pick(rand, (30, 180, 730))
            registry = _Registry(self._id(), domain, owner, created, status)
            self.registries.append(registry)
            slug = f"{_email_local(*owner).replace('.', '-')}-{word}-{i:x}"
            yield (
                registry.id,
                domain,
                f"gid://shopify/Customer/{6_100_000_000_000 + i}",
                slug,
                title,
                None if rand() < 0.6 else "Thank you for celebrating with us!",
                event,
                _ts(event_date),
                status,
                rand() < 0.85,
                retention,
                _ts(created),
                _ts(min(created + _between(rand, 0, 60 * _DAY), _GIFT_END)),
            )

    def _item_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for registry in self.registries:
            can_buy = registry.status != "DRAFT"
            for variant in rng.sample(range(len(_VARIANTS)), _between(rand, 3, 14)):
                title, product_id, variant_id, image, price, price_text = _VARIANTS[variant]
                item_id = self._id()
                requested = _pick(rand, (1, 1, 1, 2, 4))
                created = registry.created + int(rand() * 7 * _DAY)
                bought = 0
                purchase_id: str | None = None
                group = price >= 200_00 and rand() < 0.08
                if can_buy and rand() < 0.35:
                    for _ in range(_between(rand, 1, requested + 1)):
                        at = min(created + _between(rand, _DAY, 120 * _DAY), _GIFT_END - 1)
                        purchase = _PlannedPurchase(
                            self._id(), item_id, variant, at, group and bought == 0
                        )
                        self.purchases.append(purchase)
                        purchase_id = purchase_id or purchase.id
                        bought += 1
                if group:
                    self.group_gifts.append((item_id, price, purchase_id, created))
                yield (
                    item_id,
                    registry.id,
                    product_id,
                    variant_id,
                    title,
                    image,
                    price_text,
                    requested,
                    bought,
                    int(rand() * 4),
                    None if rand() < 0.85 else "Any color is fine",
                    _ts(created),
                    _ts(created + int(rand() * 30 * _DAY)),
                )

    def _purchase_rows(self) -> Iterator[Row]:
        rand = self.rng.random
        thanked_before = _ms(2025, 9, 1)
        for n, p in enumerate(self.purchases):
            _title, product_id, variant_id, _image, _cents, price_text = _VARIANTS[p.variant]
            first, last = _person(rand)
            thanked = p.at < thanked_before and rand() < 0.6
            yield (
                p.id,
                f"gid://shopify/Order/{5_500_000_000 + n}",
                product_id,
                variant_id,
                1,
                price_text,
                "USD",
                f"{first} {last}",
                f"{_email_local(first, last)}.{n}@{_pick(rand, _EMAIL_DOMAINS)}",
                _ts(p.at),
                _pick(rand, (None, None, "Congratulations!", "With love, from all of us")),
                p.group,
                p.item_id,
                f"gid://shopify/LineItem/{13_000_000_000 + n}",
                _ts(p.at + _between(rand, 2, 21) * _DAY) if thanked else None,
            )

    def _contribution_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for item_id, price, purchase_id, created in self.group_gifts:
            count = _between(rand, 2, 7)
            share = price // count
            for j in range(count):
                first, last = _person(rand)
                if purchase_id is not None:
                    # Funded and ordered: every share is paid and linked to the purchase.
                    status, linked = "PAID", purchase_id
                else:
                    status = _choose(rand, ("PENDING", "FAILED", "REFUNDED"), (80.0, 90.0, 100.0))
                    linked = None
                at = created + _between(rand, _DAY, 60 * _DAY)
                cents = share if j < count - 1 else price - share * (count - 1)
                yield (
                    self._id(),
                    item_id,
                    linked,
                    f"{first} {last}",
                    f"{_email_local(first, last)}.{j}@{_pick(rand, _EMAIL_DOMAINS)}",
                    f"{cents // 100}.{cents % 100:02d}",
                    "USD",
                    _pick(rand, (None, "Chipping in!", "So happy for you")),
                    status,
                    f"pi_{rng.getrandbits(96):024x}" if status != "PENDING" else None,
                    _ts(at),
                    _ts(at + _between(rand, 0, _DAY)),
                )

    def _address_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for registry in self.registries:
            first, last = registry.owner
            kinds = []
            if rand() < 0.9:
                kinds.append("SHIPPING")
            if rand() < 0.2:
                kinds.append("BILLING")
            for kind in kinds:
                street, city, province, zip_code, country = _pick(rand, _ADDRESSES)
                at = registry.created + _between(rand, 0, _DAY)
                yield (
                    self._id(),
                    registry.id,
                    kind,
                    first,
                    last,
                    None,
                    street,
                    _pick(rand, (None, None, "Apt 4B", "Suite 210")),
                    city,
                    province,
                    zip_code,
                    country,
                    _pick(rand, (None, "+1 555 0100")),
                    kind == "SHIPPING",
                    _ts(at),
                    _ts(at),
                )

    def _invitation_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for n, registry in enumerate(self.registries):
            if registry.status == "DRAFT":
                continue
            for j in range(_between(rand, 0, 5)):
                first, last = _person(rand)
                sent = registry.created + _between(rand, _DAY, 10 * _DAY)
                status = _choose(
                    rand, ("PENDING", "ACCEPTED", "DECLINED", "EXPIRED"), (35.0, 80.0, 90.0, 100.0)
                )
                responded = (
                    sent + _between(rand, 0, 5 * _DAY)
                    if status in ("ACCEPTED", "DECLINED")
                    else None
                )
                yield (
                    self._id(),
                    registry.id,
                    f"{_email_local(first, last)}.{j}@example.com",
                    f"{first} {last}",
                    f"{n:x}g{j}{rng.getrandbits(96):024x}",
                    status,
                    _ts(sent),
                    None if responded is None else _ts(responded),
                    _ts(sent + 30 * _DAY),
                    _ts(registry.created),
                )

    def _metafield_rows(self) -> Iterator[Row]:
        rng = self.rng
        rand = rng.random
        for n, registry in enumerate(self.registries):
            if registry.status == "DRAFT":
                continue
            keys = ["registry"] + (["wishlist"] if rand() < 0.4 else [])
            for key in keys:
                status = _choose(rand, ("SYNCED", "PENDING", "FAILED"), (85.0, 95.0, 100.0))
                synced = registry.created + _between(rand, 60_000, 2 * _DAY)
                payload = json.dumps({"registryId": registry.id, "key": key, "version": 1})
                yield (
                    self._id(),
                    registry.id,
                    registry.shop,
                    "CUSTOMER",
                    f"gid://shopify/Customer/{6_100_000_000_000 + n}",
                    "gift_registry",
                    key,
                    f"gid://shopify/Metafield/{30_000_000_000 + n * 2 + len(key) % 2}"
                    if status == "SYNCED"
                    else None,
                    status,
                    {"SYNCED": 1, "PENDING": 0, "FAILED": 3}[status],
                    "THROTTLED: rate limit exceeded" if status == "FAILED" else None,
                    payload,
                    _ts(synced) if status == "SYNCED" else None,
                    _ts(registry.created),
                    _ts(synced),
                )


if __name__ == "__main__":
    import argparse
    import sys
    import time

    from backout.model.errors import BackoutError

    parser = argparse.ArgumentParser(
        prog="python -m backout.demo.sampledata",
        description="Fill a migrated example database with realistic rows.",
    )
    parser.add_argument("example", choices=sorted(EXAMPLES))
    parser.add_argument("url", help="database URL (the schema at the example's last migration)")
    parser.add_argument("--scale", type=int, default=1000, help="users / registries (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args()
    started = time.perf_counter()
    try:
        result = fill(args.example, args.url, scale=args.scale, seed=args.seed)
    except BackoutError as err:
        print(f"error: {err}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        sys.exit(err.exit_code)
    width = max(len(name) for name in result)
    for name, count in result.items():
        print(f"{name:<{width}}  {count:>10,}")
    print(
        f"{'total':<{width}}  {sum(result.values()):>10,}  ({time.perf_counter() - started:.1f}s)"
    )
