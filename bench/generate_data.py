#!/usr/bin/env python3
"""Generate a deterministic, deliberately dirty CRM dataset for a hotel group.

Usage:

    python bench/generate_data.py --profiles 3000 --out dbt_project/seeds [--seed 42] [--format csv]

Five CSV files are written into --out: profiles.csv, bookings.csv, hotels.csv,
contact_addresses.csv and subscriptions.csv. They have a header row, commas, `\\n`
line endings, UTF-8 and the csv module's quoting; an empty field means NULL. The
same arguments always give byte-identical files: every table draws from its own
`random.Random` seeded from --seed, and "today" is the fixed REFERENCE_DATE
(2026-11-01), never the clock. Rows are streamed as they are generated, so memory
stays flat however many profiles are asked for (only the hotels are kept).

The model
---------
* hotels: max(40, profiles / 2500) hotels of five brands ("Maison Azur", "Nordlys",
  "Casa Sol", "Alpenrose", "Urban Nest") in the cities of ten countries, 3 to 5 stars.
* profiles: ids 1..N, created_at spread evenly from 2015-01-01 to the reference date
  (so ids grow with time), a home country (FR, DE, GB, ES, IT, US, NL, BE, CH, JP),
  names from that country's culture (15% from any culture, a few Nordic names among
  them), accented names (é, ü, ñ, ø, ō) and apostrophes (O'Brien, D'Angelo, N'Diaye).
  Unique emails end in the profile id and use reserved domains (example.com,
  *.example), so they never reach a real mailbox.
* bookings: made after the profile was created, checkin_date between 2023-01-01 and
  2027-06-30 (some after the reference date), booked_at up to a year before check-in
  and never after the reference date; stays that are over are "completed", later ones
  "confirmed". amount is nights x a nightly rate that depends on the hotel's stars;
  60% of bookings are in a hotel of the guest's home country.
* contact_addresses: extra ways to reach a profile (home, work, mobile, partner),
  the first one of each profile is its only is_primary; verified is only ever true
  for a well-formed email.
* subscriptions: distinct products per profile; renewal_date is the next monthly
  anniversary after the reference date while active, empty otherwise.

The dirt (deliberate; rates are probabilities per row, measured ones land close)
-------------------------------------------------------------------------------
profiles
  email          8% empty; 3% invalid ("n/a", "no-email", "jean.dupont@",
                 "marie@@example.com", a missing dot, a space...); 2% copy a recent
                 profile's email (a family: it also takes that profile's last name),
                 half exactly, a quarter with another case, a quarter padded with
                 spaces (" Anna.Berg12@example.com"), so ~4% of profiles share one.
  phone          15% empty; 5% not E.164: local formats ("06 12 34 56 78",
                 "0049 170 1234567", "(212) 555-0143") and some junk ("unknown");
                 the rest match ^\\+[1-9][0-9]{6,14}$.
  push_token     40% empty; 1% blank (1 to 4 spaces); the rest 32 or 64 hex chars.
  email_opt_in   60% true, 30% false, 10% empty.   sms_opt_in  45/40/15.
  country        2% empty (city and the rest of the address are kept).
  street         5% have neither street nor postal_code.
  loyalty_tier   none 55%, silver 25%, gold 15%, platinum 5%.
bookings
  30% of profiles have none; the others 1 to 8 (40% of them one, 25% two...).
  15% cancelled, 3% pending (even when the stay is long past); 2% have no amount;
  1% belong to a profile_id above N that does not exist (orphans of a bad import).
contact_addresses
  35% of profiles have 1 to 3; their emails and phones are as dirty as the
  profiles' (families share emails among contacts).
subscriptions
  25% of profiles have 1 or 2.

Values with leading or trailing spaces (blank push tokens, padded emails) are written
quoted, since the csv module does not quote them and some readers trim unquoted
fields; such rows are rendered with the same rules plus that one.
"""

from __future__ import annotations

import argparse
import csv
import sys
import unicodedata
from bisect import bisect
from contextlib import ExitStack
from datetime import date
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import NamedTuple

REFERENCE_DATE = date(2026, 11, 1)  # "today" for the whole dataset

# ---------------------------------------------------------------------------------
# Dates and timestamps. Days are date ordinals, timestamps are ordinal * DAY + the
# second of the day; both are rendered from a precomputed table, which is much
# faster than datetime formatting.

DAY = 86_400
_FIRST_DAY = date(1930, 1, 1).toordinal()
_DAY_TEXT = [date.fromordinal(o).isoformat() for o in range(_FIRST_DAY, date(2028, 1, 1).toordinal())]

TODAY = REFERENCE_DATE.toordinal()
PROFILES_FROM = date(2015, 1, 1).toordinal() * DAY
PROFILES_UNTIL = TODAY * DAY
CHECKIN_FROM = date(2023, 1, 1).toordinal()
CHECKIN_UNTIL = date(2027, 6, 30).toordinal()


def day_text(day: int) -> str:
    return _DAY_TEXT[day - _FIRST_DAY]


def timestamp_text(seconds: int) -> str:
    day, second = divmod(seconds, DAY)
    return f"{_DAY_TEXT[day - _FIRST_DAY]} {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"


class Weighted:
    """A fixed discrete distribution: Weighted({"a": 3, "b": 1}).pick(rng) is "a" 75% of the time."""

    def __init__(self, weights: dict):
        self.values = list(weights)
        self.cum_weights = list(accumulate(weights.values()))
        self.total = self.cum_weights[-1]
        self.last = len(self.values) - 1

    def pick(self, rng: Random):
        # As rng.choices(values, cum_weights=...)[0] does, without its per-call overhead.
        return self.values[bisect(self.cum_weights, rng.random() * self.total, 0, self.last)]


# ---------------------------------------------------------------------------------
# Reference data

CULTURES = {
    "french": (
        (
            "Jean",
            "Marie",
            "Pierre",
            "Sophie",
            "Camille",
            "Louis",
            "Chloé",
            "Hélène",
            "Jérôme",
            "Françoise",
            "Léa",
            "Noël",
            "Anne-Sophie",
            "Jean-Pierre",
            "Amélie",
            "Théo",
            "Zoé",
            "Gaëlle",
            "Benoît",
            "Céline",
        ),
        (
            "Martin",
            "Bernard",
            "Dubois",
            "Durand",
            "Lefèvre",
            "Moreau",
            "Girard",
            "Rousseau",
            "Mercier",
            "Dupont",
            "Lambert",
            "Fontaine",
            "Chevalier",
            "Lemaître",
            "N'Diaye",
            "Lévêque",
            "Gauthier",
            "Faure",
            "D'Arcy",
        ),
    ),
    "german": (
        (
            "Anna",
            "Lukas",
            "Jürgen",
            "Sabine",
            "Günter",
            "Jörg",
            "Maximilian",
            "Lena",
            "Katharina",
            "Uwe",
            "Heike",
            "Fynn",
            "Mia",
            "Jonas",
            "Käthe",
        ),
        (
            "Müller",
            "Schmidt",
            "Schneider",
            "Fischer",
            "Weber",
            "Meyer",
            "Wagner",
            "Becker",
            "Schäfer",
            "Köhler",
            "Groß",
            "Hoffmann",
            "Krüger",
            "Weiß",
            "Zimmermann",
        ),
    ),
    "british": (
        (
            "Oliver",
            "Amelia",
            "Harry",
            "Isla",
            "George",
            "Emily",
            "Jack",
            "Charlotte",
            "William",
            "Siobhán",
            "Niamh",
            "James",
            "Grace",
            "Seán",
            "Zoë",
        ),
        (
            "Smith",
            "Jones",
            "Taylor",
            "Brown",
            "Williams",
            "Wilson",
            "Evans",
            "Thomas",
            "O'Brien",
            "O'Connor",
            "McDonald",
            "Fitzgerald",
            "Wright",
            "Walker",
            "O'Neill",
        ),
    ),
    "spanish": (
        (
            "José",
            "María",
            "Lucía",
            "Javier",
            "Sofía",
            "Iñaki",
            "Begoña",
            "Álvaro",
            "Inés",
            "Pablo",
            "Carmen",
            "Raúl",
            "Ángela",
            "Nuria",
            "Íñigo",
        ),
        (
            "García",
            "Fernández",
            "González",
            "Rodríguez",
            "López",
            "Martínez",
            "Sánchez",
            "Pérez",
            "Núñez",
            "Peña",
            "Muñoz",
            "Ibáñez",
            "Castillo",
            "Ortega",
            "Del Río",
        ),
    ),
    "italian": (
        (
            "Giuseppe",
            "Giulia",
            "Francesco",
            "Chiara",
            "Alessandro",
            "Sofia",
            "Niccolò",
            "Lorenzo",
            "Beatrice",
            "Matteo",
            "Federica",
            "Nicolò",
            "Elena",
            "Andrea",
        ),
        (
            "Rossi",
            "Russo",
            "Ferrari",
            "Esposito",
            "Bianchi",
            "Romano",
            "Colombo",
            "Ricci",
            "D'Angelo",
            "D'Amico",
            "Galli",
            "Conti",
            "De Luca",
            "Mancini",
            "Fabbri",
        ),
    ),
    "dutch": (
        (
            "Daan",
            "Emma",
            "Sem",
            "Julia",
            "Lieke",
            "Bram",
            "Sanne",
            "Thijs",
            "Noor",
            "Joris",
            "Femke",
            "Maarten",
            "Anouk",
            "Ruud",
        ),
        (
            "de Jong",
            "Jansen",
            "de Vries",
            "van den Berg",
            "van Dijk",
            "Bakker",
            "Visser",
            "Smit",
            "Meijer",
            "de Boer",
            "Mulder",
            "Bos",
            "van der Meer",
            "Berg",
        ),
    ),
    "japanese": (
        ("Haruto", "Yui", "Sōta", "Hina", "Ren", "Aoi", "Yūki", "Sakura", "Kenji", "Yūko", "Daiki", "Mei"),
        (
            "Satō",
            "Suzuki",
            "Takahashi",
            "Tanaka",
            "Itō",
            "Watanabe",
            "Yamamoto",
            "Nakamura",
            "Kobayashi",
            "Katō",
            "Ōno",
            "Saitō",
        ),
    ),
    # No country of its own: only reached by the 15% of profiles named from any culture.
    "nordic": (
        ("Søren", "Bjørn", "Astrid", "Ingrid", "Sigrid", "Lars", "Freja", "Mads", "Åsa"),
        ("Jørgensen", "Sørensen", "Berg", "Lindqvist", "Håkansson", "Nilsen", "Løkke"),
    ),
}
CULTURE_NAMES = tuple(CULTURES)
FOREIGN_NAME_RATE = 0.15


class Country(NamedTuple):
    code: str
    cultures: tuple[str, ...]
    calling_code: str
    mobile_prefixes: tuple[str, ...]
    subscriber_digits: int
    national_format: str  # how locals write the number: "#" stands for prefix+subscriber digits
    cities: tuple[tuple[str, tuple[str, ...]], ...]  # (city, its postal codes)
    streets: tuple[str, ...]
    street_format: str  # {s} street, {n} and {m} numbers


COUNTRIES = (
    Country(
        "FR",
        ("french",),
        "33",
        ("6", "7"),
        8,
        "0# ## ## ## ##",
        (
            ("Paris", ("75001", "75008", "75011", "75016")),
            ("Lyon", ("69001", "69002", "69003")),
            ("Marseille", ("13001", "13008")),
            ("Nice", ("06000", "06300")),
            ("Bordeaux", ("33000",)),
            ("Toulouse", ("31000",)),
            ("Lille", ("59000",)),
            ("Nantes", ("44000",)),
            ("Strasbourg", ("67000",)),
            ("Montpellier", ("34000",)),
        ),
        (
            "rue de la Paix",
            "avenue Victor Hugo",
            "boulevard Haussmann",
            "rue du Faubourg Saint-Honoré",
            "place Bellecour",
            "quai des Chartrons",
            "rue d'Alésia",
        ),
        "{n} {s}",
    ),
    Country(
        "DE",
        ("german",),
        "49",
        ("151", "160", "170", "171", "176"),
        7,
        "0### #######",
        (
            ("Berlin", ("10115", "10178", "10435")),
            ("München", ("80331", "80469")),
            ("Hamburg", ("20095", "20354")),
            ("Köln", ("50667",)),
            ("Frankfurt am Main", ("60311",)),
            ("Düsseldorf", ("40213",)),
            ("Stuttgart", ("70173",)),
            ("Leipzig", ("04109",)),
        ),
        ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Königsallee", "Friedrichstraße"),
        "{s} {n}",
    ),
    Country(
        "GB",
        ("british",),
        "44",
        ("7700", "7911", "7400", "7500"),
        6,
        "0#### ######",
        (
            ("London", ("SW1A 1AA", "EC1A 1BB", "W1D 3QU", "N1 9GU")),
            ("Manchester", ("M1 1AE",)),
            ("Edinburgh", ("EH1 1YZ",)),
            ("Bristol", ("BS1 4DJ",)),
            ("Birmingham", ("B1 1BB",)),
            ("Liverpool", ("L1 8JQ",)),
            ("Glasgow", ("G1 1XQ",)),
        ),
        ("High Street", "Station Road", "King's Road", "Church Lane", "Victoria Road", "Queen's Gate"),
        "{n} {s}",
    ),
    Country(
        "ES",
        ("spanish",),
        "34",
        ("6", "7"),
        8,
        "### ## ## ##",
        (
            ("Madrid", ("28001", "28013")),
            ("Barcelona", ("08001", "08002")),
            ("Valencia", ("46001",)),
            ("Sevilla", ("41001",)),
            ("Málaga", ("29001",)),
            ("Bilbao", ("48001",)),
            ("Palma", ("07001",)),
        ),
        ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Paseo de Gràcia", "Avenida de la Constitución"),
        "{s}, {n}",
    ),
    Country(
        "IT",
        ("italian",),
        "39",
        ("32", "33", "34", "36"),
        8,
        "### #######",
        (
            ("Roma", ("00184", "00186")),
            ("Milano", ("20121", "20122")),
            ("Napoli", ("80132",)),
            ("Firenze", ("50122",)),
            ("Torino", ("10121",)),
            ("Venezia", ("30124",)),
            ("Bologna", ("40121",)),
        ),
        ("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via dei Condotti", "Piazza Navona"),
        "{s}, {n}",
    ),
    Country(
        "US",
        ("british",),
        "1",
        ("212", "415", "312", "617", "305", "213", "206"),
        7,
        "(###) ###-####",
        (
            ("New York", ("10001", "10013")),
            ("San Francisco", ("94103",)),
            ("Chicago", ("60601",)),
            ("Boston", ("02108",)),
            ("Miami", ("33131",)),
            ("Los Angeles", ("90012",)),
            ("Seattle", ("98101",)),
        ),
        ("Main St", "Broadway", "Market Street", "5th Avenue", "Ocean Drive"),
        "{n}{m} {s}",
    ),
    Country(
        "NL",
        ("dutch",),
        "31",
        ("6",),
        8,
        "0#-########",
        (
            ("Amsterdam", ("1012 AB", "1017 CT")),
            ("Rotterdam", ("3011 AD",)),
            ("Den Haag", ("2511 CV",)),
            ("Utrecht", ("3511 AX",)),
            ("Eindhoven", ("5611 AB",)),
        ),
        ("Kerkstraat", "Prinsengracht", "Damrak", "Coolsingel", "Oudegracht"),
        "{s} {n}",
    ),
    Country(
        "BE",
        ("french", "dutch"),
        "32",
        ("470", "475", "485", "495"),
        6,
        "0### ## ## ##",
        (
            ("Bruxelles", ("1000", "1050")),
            ("Antwerpen", ("2000",)),
            ("Gent", ("9000",)),
            ("Liège", ("4000",)),
            ("Brugge", ("8000",)),
        ),
        ("Rue Neuve", "Meir", "Korenmarkt", "Avenue Louise"),
        "{s} {n}",
    ),
    Country(
        "CH",
        ("german", "french", "italian"),
        "41",
        ("76", "77", "78", "79"),
        7,
        "0## ### ## ##",
        (
            ("Zürich", ("8001", "8005")),
            ("Genève", ("1201",)),
            ("Basel", ("4051",)),
            ("Bern", ("3011",)),
            ("Lausanne", ("1003",)),
            ("Luzern", ("6004",)),
        ),
        ("Bahnhofstrasse", "Rue du Rhône", "Marktgasse", "Freie Strasse"),
        "{s} {n}",
    ),
    Country(
        "JP",
        ("japanese",),
        "81",
        ("70", "80", "90"),
        8,
        "0##-####-####",
        (
            ("Tokyo", ("100-0005", "150-0002", "160-0022")),
            ("Osaka", ("530-0001",)),
            ("Kyoto", ("600-8216",)),
            ("Yokohama", ("220-0011",)),
            ("Sapporo", ("060-0001",)),
        ),
        ("Ginza", "Shibuya", "Shinjuku", "Umeda", "Gion"),
        "{s} {m}-{n}",
    ),
)
COUNTRY_MIX = Weighted(dict(zip(COUNTRIES, (24, 16, 14, 10, 10, 8, 6, 5, 4, 3))))

BRANDS = {"Maison Azur": (4, 5), "Nordlys": (3, 4), "Casa Sol": (3, 5), "Alpenrose": (4, 5), "Urban Nest": (3, 3)}
BRAND_NAMES = tuple(BRANDS)
NIGHTLY_RATE = {3: (80, 160), 4: (140, 280), 5: (260, 650)}  # euros, by stars

EMAIL_DOMAINS = Weighted(
    {
        "example.com": 40,
        "example.org": 15,
        "example.net": 15,
        "mail.example": 10,
        "inbox.example": 10,
        "post.example": 10,
    }
)
EMAIL_LOCAL_PARTS = ("{f}.{l}{n}", "{f}{l}{n}", "{i}{l}{n}", "{l}.{f}{n}", "{f}_{l}{n}")
JUNK_EMAILS = ("n/a", "no-email", "none", "-", "noemail@", "x", "?")
JUNK_PHONES = ("unknown", "n/a", "0000000000", "-", "tbd", "123")


def _ascii_slug(name: str) -> str:
    """ "Jérôme" -> "jerome", "D'Angelo" -> "dangelo", "van der Meer" -> "vandermeer"."""
    name = name.lower().replace("ø", "o").replace("ß", "ss").replace("'", "").replace(" ", "")
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")


SLUGS = {name: _ascii_slug(name) for firsts, lasts in CULTURES.values() for name in firsts + lasts}

# ---------------------------------------------------------------------------------
# Distributions (see the module docstring)

EMAIL_MISSING, EMAIL_INVALID, EMAIL_FAMILY = 0.08, 0.03, 0.02
EMAIL_MEMORY = 1000  # how many recent emails a family copy is drawn from
PHONE_MISSING, PHONE_NOT_E164, PHONE_JUNK_SHARE = 0.15, 0.05, 0.2
TOKEN_MISSING, TOKEN_BLANK = 0.40, 0.01
COUNTRY_MISSING, ADDRESS_MISSING = 0.02, 0.05
EMAIL_OPT_IN = Weighted({"true": 60, "false": 30, None: 10})
SMS_OPT_IN = Weighted({"true": 45, "false": 40, None: 15})
LOYALTY_TIER = Weighted({"none": 55, "silver": 25, "gold": 15, "platinum": 5})

BOOKINGS_PER_PROFILE = Weighted({0: 30, 1: 28, 2: 17.5, 3: 9.1, 4: 6.3, 5: 4.2, 6: 2.8, 7: 1.4, 8: 0.7})
NIGHTS = Weighted(
    {1: 18, 2: 22, 3: 18, 4: 12, 5: 8, 6: 6, 7: 7, 8: 2, 9: 1.5, 10: 1.5, 11: 1, 12: 0.8, 13: 0.6, 14: 1.6}
)
BOOKING_CHANNEL = Weighted({"web": 45, "app": 30, "agency": 15, "phone": 10})
BOOKING_CANCELLED, BOOKING_PENDING = 0.15, 0.03
BOOKING_NO_AMOUNT, BOOKING_ORPHAN, HOME_COUNTRY_HOTEL = 0.02, 0.01, 0.6
BOOKING_LEAD_DAYS = 365

CONTACTS_PER_PROFILE = Weighted({0: 65, 1: 21, 2: 10.5, 3: 3.5})
CONTACT_KINDS = ("home", "work", "mobile", "partner")
CONTACT_VERIFIED = 0.7

SUBSCRIPTIONS_PER_PROFILE = Weighted({0: 75, 1: 19, 2: 6})
SUBSCRIPTION_STATUS = Weighted({"active": 55, "cancelled": 25, "expired": 20})
MONTHLY_PRICES = {"newsletter": ("0.00",), "loyalty_plus": ("9.90", "14.90"), "spa_pass": ("29.00", "49.00")}
PRODUCTS = tuple(MONTHLY_PRICES)

# ---------------------------------------------------------------------------------
# Contact points, shared by profiles and contact_addresses


class EmailMaker:
    """Draws emails with the documented dirt.

    It remembers the last EMAIL_MEMORY unique emails it made, so that a family copy
    can reuse one (with its last name). `serial` makes unique emails unique.
    """

    def __init__(self, rng: Random):
        self.rng = rng
        self.recent: list[tuple[str, str]] = []
        self.made = 0

    def draw(self, first: str, last: str, serial: int) -> tuple[str | None, str, bool]:
        """(email or None, last name, whether the email is clean: well-formed and unpadded)."""
        r = self.rng.random()
        if r < EMAIL_MISSING:
            return None, last, False
        if r < EMAIL_MISSING + EMAIL_INVALID:
            return self._invalid(first, last), last, False
        if r < EMAIL_MISSING + EMAIL_INVALID + EMAIL_FAMILY and self.recent:
            email, family = self.recent[self.rng.randrange(len(self.recent))]
            return self._variant(email, family)
        email = self._unique(first, last, serial)
        self._remember(email, last)
        return email, last, True

    def _unique(self, first: str, last: str, serial: int) -> str:
        first_slug, last_slug = SLUGS[first], SLUGS[last]
        local = self.rng.choice(EMAIL_LOCAL_PARTS).format(f=first_slug, l=last_slug, i=first_slug[0], n=serial)
        return f"{local}@{EMAIL_DOMAINS.pick(self.rng)}"

    def _invalid(self, first: str, last: str) -> str:
        rng = self.rng
        local = f"{SLUGS[first]}.{SLUGS[last]}"
        return rng.choice(
            (
                rng.choice(JUNK_EMAILS),
                f"{local}@",
                f"{SLUGS[first]}@@example.com",
                f"{local}.example.com",
                f"{local}@example",
                f"{first} {last}@example.com",
            )
        )

    def _variant(self, email: str, family: str) -> tuple[str, str, bool]:
        r = self.rng.random()
        if r < 0.5:
            return email, family, True
        if r < 0.75:
            return self.rng.choice((email.upper(), email.title(), email.capitalize())), family, True
        return self.rng.choice((f" {email}", f"{email} ", f"  {email} ")), family, False

    def _remember(self, email: str, last: str) -> None:
        if len(self.recent) < EMAIL_MEMORY:
            self.recent.append((email, last))
        else:
            self.recent[self.made % EMAIL_MEMORY] = (email, last)
        self.made += 1


def draw_phone(rng: Random, country: Country) -> str | None:
    r = rng.random()
    if r < PHONE_MISSING:
        return None
    prefix = rng.choice(country.mobile_prefixes)
    subscriber = f"{rng.randrange(10**country.subscriber_digits):0{country.subscriber_digits}d}"
    if r >= PHONE_MISSING + PHONE_NOT_E164:
        return f"+{country.calling_code}{prefix}{subscriber}"
    if rng.random() < PHONE_JUNK_SHARE:
        return rng.choice(JUNK_PHONES)
    return rng.choice(
        (
            _fill(country.national_format, prefix + subscriber),
            f"00{country.calling_code} {prefix} {subscriber}",
            f"+{country.calling_code} {prefix} {subscriber}",
        )
    )


def _fill(pattern: str, digits: str) -> str:
    """_fill("0# ## ## ## ##", "612345678") -> "06 12 34 56 78"."""
    it = iter(digits)
    return "".join(next(it) if c == "#" else c for c in pattern)


def draw_push_token(rng: Random) -> str | None:
    r = rng.random()
    if r < TOKEN_MISSING:
        return None
    if r < TOKEN_MISSING + TOKEN_BLANK:
        return " " * rng.randint(1, 4)
    if r < (1 + TOKEN_MISSING + TOKEN_BLANK) / 2:  # half of the tokens
        return f"{rng.getrandbits(128):032x}"
    return f"{rng.getrandbits(256):064x}"


# ---------------------------------------------------------------------------------
# Tables


class Hotel(NamedTuple):
    columns = ("hotel_id", "name", "brand", "city", "country", "stars")

    id: int
    name: str
    brand: str
    city: str
    country: str
    stars: int


def make_hotels(rng: Random, count: int) -> list[Hotel]:
    hotels, names_used = [], {}
    for hotel_id in range(1, count + 1):
        country = COUNTRY_MIX.pick(rng)
        city = rng.choice(country.cities)[0]
        brand = rng.choice(BRAND_NAMES)
        name = f"{brand} {city}"
        names_used[name] = names_used.get(name, 0) + 1
        if names_used[name] > 1:
            name = f"{name} {names_used[name]}"
        hotels.append(Hotel(hotel_id, name, brand, city, country.code, rng.randint(*BRANDS[brand])))
    return hotels


class Person(NamedTuple):
    """What the other tables need to know about a profile."""

    id: int
    country: Country  # the home country, even when the profile's country column is empty
    culture: str
    first_name: str
    last_name: str
    created: int  # created_at, as a timestamp (see timestamp_text)


class Profiles:
    columns = (
        "profile_id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "push_token",
        "email_opt_in",
        "sms_opt_in",
        "country",
        "city",
        "street",
        "postal_code",
        "loyalty_tier",
        "birth_date",
        "created_at",
    )

    def __init__(self, rng: Random, count: int):
        self.rng, self.count = rng, count
        self.emails = EmailMaker(rng)

    def make(self, profile_id: int) -> tuple[Person, list]:
        rng = self.rng
        country = COUNTRY_MIX.pick(rng)
        culture = rng.choice(CULTURE_NAMES) if rng.random() < FOREIGN_NAME_RATE else rng.choice(country.cultures)
        firsts, lasts = CULTURES[culture]
        first = rng.choice(firsts)
        email, last, _ = self.emails.draw(first, rng.choice(lasts), profile_id)
        city, postal_codes = rng.choice(country.cities)
        if rng.random() < ADDRESS_MISSING:
            street = postal_code = None
        else:
            street = country.street_format.format(
                s=rng.choice(country.streets), n=rng.randint(1, 120), m=rng.randint(1, 30)
            )
            postal_code = rng.choice(postal_codes)
        # Profiles are created in id order, evenly over the period.
        period = PROFILES_UNTIL - PROFILES_FROM
        created = PROFILES_FROM + int((profile_id - 1 + rng.random()) * period / self.count)
        birth_day = TODAY - int(rng.triangular(18, 90, 40) * 365.25)
        row = [
            profile_id,
            first,
            last,
            email,
            draw_phone(rng, country),
            draw_push_token(rng),
            EMAIL_OPT_IN.pick(rng),
            SMS_OPT_IN.pick(rng),
            None if rng.random() < COUNTRY_MISSING else country.code,
            city,
            street,
            postal_code,
            LOYALTY_TIER.pick(rng),
            day_text(birth_day),
            timestamp_text(created),
        ]
        return Person(profile_id, country, culture, first, last, created), row


class Bookings:
    columns = (
        "booking_id",
        "profile_id",
        "hotel_id",
        "status",
        "amount",
        "nights",
        "booked_at",
        "checkin_date",
        "booking_channel",
    )

    def __init__(self, rng: Random, profile_count: int, hotels: list[Hotel]):
        self.rng, self.profile_count, self.hotels = rng, profile_count, hotels
        self.hotels_by_country: dict[str, list[Hotel]] = {}
        for hotel in hotels:
            self.hotels_by_country.setdefault(hotel.country, []).append(hotel)
        self.next_id = 1

    def rows_for(self, person: Person):
        rng = self.rng
        for _ in range(BOOKINGS_PER_PROFILE.pick(rng)):
            local_hotels = self.hotels_by_country.get(person.country.code)
            hotel = rng.choice(local_hotels if local_hotels and rng.random() < HOME_COUNTRY_HOTEL else self.hotels)
            nights = NIGHTS.pick(rng)
            # Check in after the profile exists; book at most a year ahead, and not after today.
            checkin = rng.randint(max(CHECKIN_FROM, person.created // DAY + 1), CHECKIN_UNTIL)
            booked_at = rng.randint(
                max(person.created, (checkin - BOOKING_LEAD_DAYS) * DAY), min(checkin * DAY, PROFILES_UNTIL)
            )
            r = rng.random()
            if r < BOOKING_CANCELLED:
                status = "cancelled"
            elif r < BOOKING_CANCELLED + BOOKING_PENDING:
                status = "pending"
            else:
                status = "completed" if checkin + nights <= TODAY else "confirmed"
            low, high = NIGHTLY_RATE[hotel.stars]
            cents = nights * rng.randint(low * 100, high * 100)
            amount = None if rng.random() < BOOKING_NO_AMOUNT else f"{cents // 100}.{cents % 100:02d}"
            profile_id = person.id
            if rng.random() < BOOKING_ORPHAN:
                profile_id = self.profile_count + 1 + rng.randrange(self.profile_count)
            yield [
                self.next_id,
                profile_id,
                hotel.id,
                status,
                amount,
                nights,
                timestamp_text(booked_at),
                day_text(checkin),
                BOOKING_CHANNEL.pick(rng),
            ]
            self.next_id += 1


class ContactAddresses:
    columns = ("contact_id", "profile_id", "kind", "email", "phone", "is_primary", "verified")

    def __init__(self, rng: Random, profile_count: int):
        self.rng, self.profile_count = rng, profile_count
        self.emails = EmailMaker(rng)
        self.next_id = 1

    def rows_for(self, person: Person):
        rng = self.rng
        kinds = rng.sample(CONTACT_KINDS, CONTACTS_PER_PROFILE.pick(rng))
        for position, kind in enumerate(kinds):
            first = rng.choice(CULTURES[person.culture][0]) if kind == "partner" else person.first_name
            # Serials above the profile ids keep these emails apart from the profiles' own.
            email, _, clean = self.emails.draw(first, person.last_name, self.profile_count + self.next_id)
            yield [
                self.next_id,
                person.id,
                kind,
                email,
                draw_phone(rng, person.country),
                "true" if position == 0 else "false",
                "true" if clean and rng.random() < CONTACT_VERIFIED else "false",
            ]
            self.next_id += 1


class Subscriptions:
    columns = ("subscription_id", "profile_id", "product", "status", "started_at", "renewal_date", "monthly_price")

    def __init__(self, rng: Random):
        self.rng = rng
        self.next_id = 1

    def rows_for(self, person: Person):
        rng = self.rng
        for product in rng.sample(PRODUCTS, SUBSCRIPTIONS_PER_PROFILE.pick(rng)):
            started = rng.randint(person.created // DAY, TODAY)
            status = SUBSCRIPTION_STATUS.pick(rng)
            renewal = _next_monthly_anniversary(started) if status == "active" else None
            yield [
                self.next_id,
                person.id,
                product,
                status,
                day_text(started),
                renewal,
                rng.choice(MONTHLY_PRICES[product]),
            ]
            self.next_id += 1


def _next_monthly_anniversary(started: int) -> str:
    """The first day after REFERENCE_DATE with the day of month of `started` (capped to 28)."""
    day_of_month = min(date.fromordinal(started).day, 28)
    if day_of_month > REFERENCE_DATE.day:
        return REFERENCE_DATE.replace(day=day_of_month).isoformat()
    month = REFERENCE_DATE.month % 12 + 1
    year = REFERENCE_DATE.year + (month == 1)
    return date(year, month, day_of_month).isoformat()


# ---------------------------------------------------------------------------------
# Output


class CsvTable:
    """One output file, written row by row.

    The csv module quotes only what must be quoted; values in `padded_columns` that
    start or end with a space are quoted too, so that they survive readers that
    trim unquoted fields.
    """

    def __init__(self, directory: Path, name: str, columns: tuple[str, ...], padded_columns: tuple[str, ...] = ()):
        self.path = directory / f"{name}.csv"
        self.rows = 0
        self._file = open(self.path, "w", encoding="utf-8", newline="", buffering=1 << 20)
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(columns)
        self._padded = tuple(columns.index(column) for column in padded_columns)

    def write(self, row: list) -> None:
        if any(_is_padded(row[i]) for i in self._padded):
            self._file.write(",".join(map(_quoted_field, row)) + "\n")
        else:
            self._writer.writerow(row)
        self.rows += 1

    def close(self) -> None:
        self._file.close()


def _is_padded(value) -> bool:
    return bool(value) and (value[0] == " " or value[-1] == " ")


def _quoted_field(value) -> str:
    """A field as csv.writer writes it, except that padded values are quoted as well."""
    if value is None:
        return ""
    text = str(value)
    if _is_padded(text) or any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def hotel_count(profiles: int) -> int:
    return max(40, profiles // 2500)


def generate(profile_count: int, seed: int, out: Path) -> list[CsvTable]:
    """Write the five files into `out` and return them (closed), for their row counts."""
    out.mkdir(parents=True, exist_ok=True)
    # One stream per table: changing how one table is drawn leaves the others as they were.
    streams = {
        name: Random(f"{seed}/{name}") for name in ("hotels", "profiles", "bookings", "contacts", "subscriptions")
    }
    hotels = make_hotels(streams["hotels"], hotel_count(profile_count))
    profiles = Profiles(streams["profiles"], profile_count)
    bookings = Bookings(streams["bookings"], profile_count, hotels)
    contacts = ContactAddresses(streams["contacts"], profile_count)
    subscriptions = Subscriptions(streams["subscriptions"])

    with ExitStack() as stack:

        def table(name: str, columns: tuple[str, ...], padded: tuple[str, ...] = ()) -> CsvTable:
            opened = CsvTable(out, name, columns, padded)
            stack.callback(opened.close)
            return opened

        profiles_csv = table("profiles", Profiles.columns, padded=("email", "push_token"))
        bookings_csv = table("bookings", Bookings.columns)
        hotels_csv = table("hotels", Hotel.columns)
        contacts_csv = table("contact_addresses", ContactAddresses.columns, padded=("email",))
        subscriptions_csv = table("subscriptions", Subscriptions.columns)
        for hotel in hotels:
            hotels_csv.write(list(hotel))
        for profile_id in range(1, profile_count + 1):
            person, row = profiles.make(profile_id)
            profiles_csv.write(row)
            for row in bookings.rows_for(person):
                bookings_csv.write(row)
            for row in contacts.rows_for(person):
                contacts_csv.write(row)
            for row in subscriptions.rows_for(person):
                subscriptions_csv.write(row)
    return [profiles_csv, bookings_csv, hotels_csv, contacts_csv, subscriptions_csv]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, required=True, help="how many profiles to generate (1 or more)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the CSV files into")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument("--format", choices=("csv",), default="csv", help="output format (only csv for now)")
    args = parser.parse_args(argv)
    if args.profiles < 1:
        parser.error("--profiles must be at least 1")
    for written in generate(args.profiles, args.seed, args.out):
        print(f"{written.path.name}: {written.rows} rows -> {written.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
