"""Channel activities: candidates, exclusions in their order, multi-level sends.

The channels campaign of the semantics project is built twice: once to create the delivery log,
then with suppressions and recent deliveries in it. Every count of `count --json` is compared with
a computation in Python over the raw rows (read with plain SQL), following the specification.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from conftest import DBT_PROJECT, require, warehouse_params
from semantics_project import make_project

pytestmark = pytest.mark.slow

_EMAIL_PART = r"[^@\s\x00-\x1f\x7f-\x9f\u2028\u2029]+"  # no space, control character or line break
EMAIL = re.compile(f"{_EMAIL_PART}@{_EMAIL_PART}\\.{_EMAIL_PART}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
ORDER = ("no_address", "no_consent", "suppressed", "frequency_cap", "control_group", "duplicate_address")


def trimmed(value):
    return value.strip(" ") if isinstance(value, str) else value


def blank(value) -> bool:
    return value is None or trimmed(value) == ""


@pytest.fixture(scope="module", params=warehouse_params(spark=True))
def built(request, tmp_path_factory):
    target = require(request, request.param)
    project = make_project(tmp_path_factory.mktemp(f"channels_{target}") / "project")
    project.count("channels", target)  # creates the delivery log
    emails = [
        row[0]
        for row in project.query(
            target,
            """
        select email from profiles where email like '%@%.%' order by profile_id""",
        )
    ]
    phones = [row[0] for row in project.query(target, "select phone from profiles where phone like '+%' order by 1")]
    now = datetime.now(UTC).replace(tzinfo=None)
    suppressions = [(emails[0].upper(), "email"), (f"  {emails[1]} ", "email"), (phones[0], "sms"), (emails[2], "sms")]
    deliveries = []  # (address, days ago): twice in the week caps, once or long ago does not
    for i, (address, days) in enumerate(
        [
            (emails[10], 1),
            (emails[10], 3),
            (emails[11], 2),
            (emails[12], 9),
            (emails[12], 10),
            (emails[13].upper(), 1),
            (emails[13], 6),
        ]
    ):
        deliveries.append((f"k{i}", address, now - timedelta(days=days)))
    quote = "`" if target == "spark" else '"'
    schema = f"{quote}{project.schema_of(target)}{quote}"
    values = ", ".join(f"('{a}', '{c}', 'test', timestamp '{now:%Y-%m-%d %H:%M:%S}')" for a, c in suppressions)
    project.query_write(target, f"insert into {schema}.campaign_suppressions values {values}")
    values = ", ".join(
        f"('other', 'mail', 'email', 'once', '0', null, '{k}', '{a}', 'sent', 1, null, "
        f"timestamp '{t:%Y-%m-%d %H:%M:%S}', 'r', null)"
        for k, a, t in deliveries
    )
    columns = (
        "campaign, activity, channel, occurrence, recipient_key, per_key, message_key, address, status, attempts, "
        "error, sent_at, run_id, updated_at"
    )
    project.query_write(target, f"insert into {schema}.campaign_deliveries ({columns}) values {values}")
    result = project.count("channels", target)
    return project, target, result, suppressions, deliveries, now


def expected_channels(project, target, suppressions, deliveries, now) -> dict:
    profiles = project.query(
        target,
        """select profile_id, email, phone, push_token, email_opt_in, sms_opt_in,
                                               street, postal_code, city, country from profiles""",
    )
    bookings = project.query(
        target,
        """select booking_id, profile_id from bookings
                                        where status = 'confirmed' and profile_id is not null""",
    )
    contacts = project.query(target, "select contact_id, profile_id, phone from contact_addresses where verified")
    suppressed = {(trimmed(a).lower() if c == "email" else trimmed(a), c) for a, c in suppressions}
    recent = Counter(trimmed(a).lower() for _, a, t in deliveries if t >= now - timedelta(days=7, minutes=30))
    by_id = {p[0]: p for p in profiles}

    def decide(channel, candidates, consent, cap=None, control=None, use_address=False):
        """candidates: (recipient key, per key, address, consent value, complete) -> result counts.
        An address is kept once per linked row, or once when it is the linked row's (use_address)."""
        reasons, kept = Counter(), {}
        for key, per, address, agreed, complete in sorted(candidates, key=lambda c: (c[0], c[1] or 0)):
            address = trimmed(address)
            norm = address.lower() if channel == "email" and address else address
            place = norm if use_address else (norm, per)
            pattern = {"email": EMAIL, "sms": E164}.get(channel)
            valid = address is not None and complete and (pattern.fullmatch(address) if pattern else address != "")
            if not valid:
                reasons["no_address"] += 1
            elif consent and agreed is not True:
                reasons["no_consent"] += 1
            elif (norm, channel) in suppressed:
                reasons["suppressed"] += 1
            elif cap and recent[norm] >= cap:
                reasons["frequency_cap"] += 1
            elif (
                control
                and hashlib.md5(f"{control[0]}:{key}".encode()).hexdigest()[:8] < f"{int(control[1] / 100 * 16**8):08x}"
            ):
                reasons["control_group"] += 1
            elif place in kept:
                reasons["duplicate_address"] += 1
            else:
                kept[place] = key
        return {
            "channel": channel,
            "messages": len(kept),
            "recipients": len(set(kept.values())),
            "excluded": {r: reasons[r] for r in ORDER if reasons[r]},
        }

    def everyone(column, consent_column=None):
        return [(p[0], None, p[column], p[consent_column] if consent_column else None, True) for p in profiles]

    letters = [
        (p[0], None, ", ".join(trimmed(v) for v in p[6:10] if not blank(v)), None, not any(blank(v) for v in p[6:10]))
        for p in profiles
    ]
    return {
        "mail": decide("email", everyone(1, 4), consent=True, cap=2, control=(3, 10)),
        "booking_mail": decide(
            "email",
            [(pid, bid, by_id[pid][1], by_id[pid][4], True) for bid, pid in bookings if pid in by_id],
            consent=True,
        ),
        "transactional_sms": decide("sms", everyone(2), consent=False),
        "contact_sms": decide(
            "sms",
            [(pid, cid, phone, by_id[pid][5], True) for cid, pid, phone in contacts if pid in by_id],
            consent=True,
            use_address=True,
        ),
        "push": decide("push", everyone(3), consent=False),
        "letter": decide("direct_mail", letters, consent=False),
    }


def test_every_exclusion_and_message_count_matches_the_specification(built):
    project, target, result, suppressions, deliveries, now = built
    expected = expected_channels(project, target, suppressions, deliveries, now)
    assert result["channels"] == expected
    assert {k: v for k, v in result["counts"].items() if k in expected} == {
        k: v["messages"] for k, v in expected.items()
    }
    # every reason occurs in this data, so that each is really checked
    seen = {reason for counts in expected.values() for reason in counts["excluded"]}
    assert seen == set(ORDER)


def test_message_keys_and_template_columns(built):
    project, target, *_ = built
    rows = project.query(
        target,
        "select message_key, profile_id, booking_id, first_name, booking__booking_id from channels__booking_mail",
    )
    assert rows
    for key, profile_id, booking_id, _, per_booking in rows:
        assert key == hashlib.md5(f"channels|booking_mail|{profile_id}|{booking_id}".encode()).hexdigest()
        assert per_booking == booking_id
    listing = f"""
        select column_name from information_schema.columns
        where table_schema = '{project.schema_of(target)}' and table_name = 'channels__mail' order by ordinal_position"""
    if target == "spark":  # no information_schema: the catalog lists a table's columns in their order
        listing = "show columns in channels__mail"
    columns = [row[0] for row in project.query(target, listing)]
    assert columns == ["message_key", "profile_id", "address", "first_name", "last_name", "country"]


KEYS_DATA_MODEL = """\
version: 1
entities:
  customers:
    model: customers
    key: customer_id
    columns: {customer_id: integer, name: text, push_token: text, address: text, city: text}
    addresses: {push: push_token, direct_mail: [address, city]}
    links:
      orders: {entity: orders, on: {customer_id: customer_id}}
  orders:
    model: orders
    key: order_id
    columns: {order_id: integer, customer_id: integer}
"""
KEYS_CAMPAIGN = """\
campaign: keys
dimension: customers
activities:
  everyone: {type: build_audience}
  numbered:
    type: enrichment
    input: everyone
    add: {order_id: "customer_id * 100"}
  note: {type: push, input: everyone, template: templates/note.yml}
  receipt:
    type: push
    input: numbered
    per: {link: orders, as: order}
    template: templates/receipt.yml
  letter: {type: direct_mail, input: everyone, columns: [customer_id, address, name]}
"""


def test_templates_may_use_the_columns_a_message_model_has_of_its_own(project, target):
    """The recipient key, the linked row's key and `address` are columns of the message models; a
    template or an extract that uses them (or an entity column named `address`) gets the right
    value, and every model has each column once."""
    project.write(
        "dbt_project.yml",
        DBT_PROJECT
        + """\
    customers:
      +column_types: {customer_id: integer}
    orders:
      +column_types: {order_id: integer, customer_id: integer}
""",
    )
    project.write("campaign_project.yml", KEYS_DATA_MODEL)
    project.write(
        "seeds/customers.csv",
        "customer_id,name,push_token,address,city\n1,Ann,tok-a,1 Main St,Paris\n2,Bob,tok-b,2 High St,Lyon\n",
    )
    project.write("seeds/orders.csv", "order_id,customer_id\n11,1\n12,1\n21,2\n")
    project.write("campaigns/keys.yml", KEYS_CAMPAIGN)
    project.write(
        "templates/note.yml", 'title: "Hi {{ name }}"\nbody: "{{ address }}"\ndata: {customer: "{{ customer_id }}"}\n'
    )
    project.write(
        "templates/receipt.yml", 'title: "Order {{ order.order_id }}"\nbody: "{{ order_id }} for {{ customer_id }}"\n'
    )
    counts = project.count("keys", target)["counts"]
    assert (counts["note"], counts["receipt"], counts["letter"]) == (2, 3, 2)

    def columns(model):
        return [
            row[0]
            for row in project.query(
                target,
                f"""
            select column_name from information_schema.columns
            where table_schema = '{project.schema_of(target)}' and table_name = '{model}' order by ordinal_position""",
            )
        ]

    assert columns("keys__note") == ["message_key", "customer_id", "address", "name", "recipient__address"]
    assert columns("keys__receipt") == ["message_key", "customer_id", "order__order_id", "address", "order_id"]
    assert columns("keys__letter") == ["message_key", "customer_id", "address", "recipient__address", "name", "city"]
    for model in ("note", "receipt", "letter"):
        for suffix in ("", "__candidates", "__excluded"):
            names = [name.lower() for name in columns(f"keys__{model}{suffix}")]
            assert len(names) == len(set(names)), (model, suffix, names)

    assert project.run("send", "keys", "--yes", "--target", target).code == 0
    outbox = project.root / "target" / "outbox" / target / "keys" / "once"
    customers = project.query(target, "select customer_id, name, push_token, address, city from customers")
    orders = project.query(target, "select order_id, customer_id from orders")

    def key(activity, customer, order=""):
        return hashlib.md5(f"keys|{activity}|{customer}|{order}".encode()).hexdigest()

    def sent(activity):
        return {
            m["message_key"]: (m["to"], m["title"], m["body"], m.get("data"))
            for m in map(json.loads, (outbox / activity / "messages.jsonl").read_text().splitlines())
        }

    assert sent("note") == {
        key("note", c): (token, f"Hi {name}", address, {"customer": str(c)}) for c, name, token, address, _ in customers
    }
    tokens = {c: token for c, _, token, _, _ in customers}
    assert sent("receipt") == {
        key("receipt", c, o): (tokens[c], f"Order {o}", f"{c * 100} for {c}", None) for o, c in orders
    }
    with (outbox / "letter" / "extract.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    assert sorted(rows) == sorted(
        [key("letter", c), f"{address}, {city}", str(c), address, name] for c, name, _, address, city in customers
    )


PHONES_DATA_MODEL = """\
version: 1
entities:
  guests:
    model: guests
    key: guest_id
    columns: {guest_id: integer, name: text, email: text}
    addresses: {email: email}
    links:
      contacts: {entity: contacts, on: {guest_id: guest_id}}
      bookings: {entity: bookings, on: {guest_id: guest_id}}
  contacts:
    model: contacts
    key: contact_id
    columns: {contact_id: integer, guest_id: integer, phone: text}
    addresses: {sms: phone}
  bookings:
    model: bookings
    key: booking_id
    columns: {booking_id: integer, guest_id: integer}
"""
PHONES_CAMPAIGN = """\
campaign: phones
dimension: guests
activities:
  everyone: {type: build_audience}
  contact_sms:
    type: sms
    input: everyone
    per: {link: contacts, as: contact, use_address: true}
    template: templates/sms.yml
  booking_mail:
    type: email
    input: everyone
    per: {link: bookings, as: booking}
    template: templates/mail.yml
"""


def test_a_phone_of_the_linked_rows_gets_one_message(project, target):
    """With use_address the address alone makes a duplicate: a guest with the same phone on two
    contact rows, or two guests sharing a contact phone, get one SMS — the lowest guest key's, then
    the lowest contact key's. Without it, one email per booking still goes to the guest's address."""
    project.write(
        "dbt_project.yml",
        DBT_PROJECT
        + """\
    guests:
      +column_types: {guest_id: integer}
    contacts:
      +column_types: {contact_id: integer, guest_id: integer, phone: text}
    bookings:
      +column_types: {booking_id: integer, guest_id: integer}
""",
    )
    project.write("campaign_project.yml", PHONES_DATA_MODEL)
    project.write(
        "seeds/guests.csv",
        "guest_id,name,email\n1,Ann,ann@example.com\n2,Bob,bob@example.com\n"
        "3,Cid,cid@example.com\n4,Dee,dee@example.com\n",
    )
    # Ann's phone twice (the higher contact key first, once padded); Bob and Cid share a phone, Cid's row first
    project.write(
        "seeds/contacts.csv",
        'contact_id,guest_id,phone\n11,1,"+33600000001 "\n10,1,+33600000001\n'
        "20,3,+33600000002\n21,2,+33600000002\n30,4,+33600000003\n",
    )
    project.write("seeds/bookings.csv", "booking_id,guest_id\n100,1\n101,1\n102,2\n")
    project.write("campaigns/phones.yml", PHONES_CAMPAIGN)
    project.write("templates/sms.yml", 'body: "Hi {{ name }}"\n')
    project.write("templates/mail.yml", 'subject: "Booking {{ booking.booking_id }}"\ntext: "Hi {{ name }}"\n')
    result = project.count("phones", target)

    kept = project.query(
        target,
        """
        select contact.guest_id, min(contact.contact_id), trim(contact.phone)
        from contacts as contact
        where contact.guest_id = (select min(other.guest_id) from contacts as other
                                  where trim(other.phone) = trim(contact.phone))
        group by contact.guest_id, trim(contact.phone)""",
    )
    assert sorted(kept) == [(1, 10, "+33600000001"), (2, 21, "+33600000002"), (4, 30, "+33600000003")]
    assert sorted(project.query(target, "select guest_id, contact_id, address from phones__contact_sms")) == sorted(
        kept
    )
    duplicates = project.query(
        target,
        f"""
        select contact_id, 'duplicate_address' from contacts
        where contact_id not in ({", ".join(str(row[1]) for row in kept)})""",
    )
    assert sorted(
        project.query(target, "select contact_id, exclusion_reason from phones__contact_sms__excluded")
    ) == sorted(duplicates)
    assert result["channels"]["contact_sms"] == {
        "channel": "sms",
        "messages": len(kept),
        "recipients": len(kept),
        "excluded": {"duplicate_address": len(duplicates)},
    }

    bookings = project.query(
        target,
        """
        select booking.guest_id, booking.booking_id, guest.email
        from bookings as booking join guests as guest on guest.guest_id = booking.guest_id""",
    )
    assert sorted(project.query(target, "select guest_id, booking_id, address from phones__booking_mail")) == sorted(
        bookings
    )
    assert result["channels"]["booking_mail"]["messages"] == len(bookings) == 3
