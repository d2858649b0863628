"""Every activity's semantics on DuckDB, PostgreSQL and Spark.

The project under tests/projects/semantics is built with `campaign count` on generated CRM data
with its dirt (missing and shared emails, NULL consent, guests without bookings, NULL amounts,
orphan bookings). Every count it prints is compared with a count computed independently, by
hand-written SQL over the raw tables, on the same warehouse.
"""

from __future__ import annotations

import pytest
from conftest import Project, require, warehouse_params
from semantics_project import make_project

pytestmark = pytest.mark.slow

# Who the hand-written oracles are about, as SQL snippets over the raw tables.
FR = "select profile_id from profiles where country = 'FR'"
CONFIRMED = "select profile_id from bookings where status = 'confirmed' and profile_id is not null"
SPEND = "(select sum(b.amount) from bookings b where b.profile_id = p.profile_id)"
SAVED_FR = "select profile_id from profiles where country = 'FR' and email_opt_in"
THEIR_BOOKINGS = f"""select * from bookings where profile_id in ({SAVED_FR})
                     and status in ('confirmed', 'completed')"""
ATTENDEES = "files__attendees__raw"


def count_of(where: str, table: str = "profiles p") -> str:
    return f"select count(*) from {table} where {where}"


ORACLES = {
    "targeting": {
        "everyone": "select count(distinct profile_id) from profiles",
        "fr": count_of("country = 'FR'"),
        "no_country": count_of("country is null"),
        "not_opted_in": count_of("email_opt_in = false"),
        "confirmed_bookers": count_of(f"profile_id in ({CONFIRMED})"),
        "never_booked": count_of("profile_id not in (select profile_id from bookings where profile_id is not null)"),
        "never_confirmed": count_of(f"profile_id not in ({CONFIRMED})"),
        "unknown_spend": count_of(f"{SPEND} is null"),
        "not_big": count_of(f"{SPEND} <= 1000"),  # NULL sum: NOT (NULL > 1000) is NULL, not selected
        "paris_guests": count_of("""exists (select 1 from bookings b join hotels h on h.hotel_id = b.hotel_id
                                    where b.profile_id = p.profile_id and b.status <> 'cancelled'
                                    and h.city = 'Paris')"""),
        "either": count_of("""loyalty_tier = 'platinum' or exists (select 1 from subscriptions s
                              where s.profile_id = p.profile_id and s.status = 'active')"""),
        "platinum_from_model": count_of("profile_id in (select profile_id from platinum_list)"),
        "fr_or_confirmed": count_of(f"country = 'FR' or profile_id in ({CONFIRMED})"),
        "fr_and_confirmed": count_of(f"country = 'FR' and profile_id in ({CONFIRMED})"),
        "fr_and_confirmed.fr_unconfirmed": count_of(f"country = 'FR' and profile_id not in ({CONFIRMED})"),
        "fr_not_confirmed": count_of(f"country = 'FR' and profile_id not in ({CONFIRMED})"),
        "fr_not_confirmed.fr_confirmed": count_of(f"country = 'FR' and profile_id in ({CONFIRMED})"),
        "scored_fr": count_of("country = 'FR'"),
        "scored_bookers": count_of(f"profile_id in ({CONFIRMED})"),
        "first_wins": count_of(f"country = 'FR' or profile_id in ({CONFIRMED})"),
        "history": count_of(f"country = 'FR' or profile_id in ({CONFIRMED})"),
        "one_per_email": "select count(distinct email) + count(*) - count(email) from profiles",
        "one_per_email.same_email": "select count(email) - count(distinct email) from profiles",
        "two_per_country": """select (select sum(case when n > 2 then 2 else n end) from
                                (select country, count(*) as n from profiles where country is not null
                                 group by country) c)
                              + (select count(*) from profiles where country is null)""",
        "segments.gold": "select least(20, count(*)) from profiles where loyalty_tier = 'gold'",
        "segments.french": count_of("country = 'FR' and (loyalty_tier <> 'gold' or loyalty_tier is null)"),
        "segments.sample": """select cast(floor(count(*) * 10 / 100.0) as integer) from profiles
                              where (loyalty_tier <> 'gold' or loyalty_tier is null)
                              and (country <> 'FR' or country is null)""",
        "segments.rest": """select count(*) - least(20, count(case when loyalty_tier = 'gold' then 1 end))
                              - count(case when country = 'FR' and (loyalty_tier <> 'gold' or loyalty_tier is null)
                                      then 1 end)
                              - cast(floor(count(case when (loyalty_tier <> 'gold' or loyalty_tier is null)
                                      and (country <> 'FR' or country is null) then 1 end) * 10 / 100.0) as integer)
                            from profiles""",
        "overlapping.fr": count_of("country = 'FR'"),
        "overlapping.top_vip": "select least(5, count(*)) from profiles where loyalty_tier in ('gold', 'platinum')",
        "overlapping.neither": count_of("""not (country = 'FR' and country is not null) and profile_id not in (
                                             select profile_id from profiles
                                             where loyalty_tier in ('gold', 'platinum')
                                             order by profile_id desc limit 5)"""),
        "by_spend.top_spenders": f"""select cast(floor(count(*) * 12.5 / 100) as integer) from profiles
                                     where country = 'FR' or profile_id in ({CONFIRMED})""",
        "by_spend.others": f"""select count(*) - cast(floor(count(*) * 12.5 / 100) as integer) from profiles
                               where country = 'FR' or profile_id in ({CONFIRMED})""",
        "save_fr": count_of("country = 'FR'"),
    },
    "flow": {
        "saved_fr": count_of("country = 'FR' and email_opt_in"),
        "everyone": "select count(*) from profiles",
        "nobody": "select 0",
        "sizes.huge": "select 0",
        "sizes.some": "select count(*) from profiles",
        "sizes.none_of_them": "select 0",
        "empty_check.any": "select 0",
        "empty_check.nothing": "select 0",
        "copies.left": count_of("country = 'FR' and email_opt_in"),
        "copies.right": count_of("country = 'FR' and email_opt_in"),
        "together": count_of("country = 'FR' and email_opt_in"),
        "merged": count_of("country = 'FR' and email_opt_in"),
        "with_nb": count_of("country = 'FR' and email_opt_in"),
        "their_bookings": f"select count(*) from ({THEIR_BOOKINGS}) b",
        "their_hotels": f"select count(distinct hotel_id) from ({THEIR_BOOKINGS}) b",
        "back_to_guests": f"select count(distinct profile_id) from ({THEIR_BOOKINGS}) b",
        "done": f"select count(distinct profile_id) from ({THEIR_BOOKINGS}) b",
    },
    "files": {
        "attendees": f"select count(*) from {ATTENDEES}",
        "unique_rows": f"select count(distinct email) + count(*) - count(email) from {ATTENDEES}",
        "unique_rows.repeated": f"select count(email) - count(distinct email) from {ATTENDEES}",
        "by_email": f"select count(distinct p.profile_id) from profiles p join {ATTENDEES} a on a.email = p.email",
        "by_email.strangers": count_of(
            "not exists (select 1 from profiles p where p.email = a.email)", f"{ATTENDEES} a"
        ),
        "by_email_and_name": f"""select count(distinct p.profile_id) from profiles p join {ATTENDEES} a
                                 on a.email = p.email and a.first_name = p.first_name""",
        "by_email_and_name.no_pair": count_of(
            """not exists (select 1 from profiles p where p.email = a.email
                                                 and p.first_name = a.first_name)""",
            f"{ATTENDEES} a",
        ),
        "upcoming": f"""select count(*) from bookings where checkin_date >= date '2026-11-01' and profile_id in
                        (select p.profile_id from profiles p join {ATTENDEES} a on a.email = p.email)""",
    },
}


@pytest.fixture(scope="module", params=warehouse_params(spark=True))
def built(request, tmp_path_factory):
    target = require(request, request.param)
    project = make_project(tmp_path_factory.mktemp(f"semantics_{target}") / "project")
    counts = {name: project.count(name, target)["counts"] for name in ORACLES}
    return project, target, counts


def pytest_generate_tests(metafunc):
    if "oracle" in metafunc.fixturenames:
        cases = [(c, k) for c, oracles in ORACLES.items() for k in oracles]
        metafunc.parametrize("oracle", cases, ids=[f"{c}:{k}" for c, k in cases])


def test_count_equals_hand_written_sql(built, oracle):
    project, target, counts = built
    campaign, key = oracle
    expected = int(project.scalar(target, ORACLES[campaign][key]))
    assert counts[campaign][key] == expected


def keys(project: Project, target: str, sql: str) -> set:
    return {row[0] for row in project.query(target, sql)}


def pairs(project: Project, target: str, sql: str) -> dict:
    return {row[0]: row[1] for row in project.query(target, sql)}


def test_union_takes_each_row_from_the_first_input_that_has_it(built):
    project, target, _ = built
    scores = pairs(project, target, "select score, count(*) from targeting__first_wins group by score")
    assert scores == {
        1: project.scalar(target, count_of("country = 'FR'")),
        2: project.scalar(target, count_of(f"(country <> 'FR' or country is null) and profile_id in ({CONFIRMED})")),
    }


def test_split_limit_keeps_the_first_rows_in_order_with_ties_by_key(built):
    project, target, _ = built
    expected = keys(
        project,
        target,
        """select profile_id from (
        select profile_id, row_number() over (order by created_at, profile_id) as n
        from profiles where loyalty_tier = 'gold') ranked where n <= 20""",
    )
    assert keys(project, target, "select profile_id from targeting__segments__gold") == expected


def test_random_limit_is_a_seeded_md5_order_the_same_on_every_warehouse(built):
    import hashlib

    project, target, _ = built
    eligible = keys(
        project,
        target,
        """select profile_id from profiles
        where (loyalty_tier <> 'gold' or loyalty_tier is null) and (country <> 'FR' or country is null)""",
    )
    ordered = sorted(eligible, key=lambda k: (hashlib.md5(f"5:{k}".encode()).hexdigest(), k))
    expected = set(ordered[: len(eligible) * 10 // 100])
    assert keys(project, target, "select profile_id from targeting__segments__sample") == expected


def test_deduplication_keeps_the_first_row_by_its_order_and_every_null_key(built):
    project, target, _ = built
    expected = keys(
        project,
        target,
        """
        select profile_id from (select profile_id, row_number() over (
            partition by email order by created_at desc, profile_id) as n
            from profiles where email is not null) ranked where n = 1
        union all select profile_id from profiles where email is null""",
    )
    assert keys(project, target, "select profile_id from targeting__one_per_email") == expected


def test_link_enrichments_aggregate_rank_and_fall_back_over_zero_rows(built):
    project, target, _ = built
    members = f"select profile_id from profiles where country = 'FR' or profile_id in ({CONFIRMED})"
    got = {
        row[0]: row[1:]
        for row in project.query(
            target,
            """
        select profile_id, nb_bookings, total_spent, cancelled, last_status, second_booking from targeting__history""",
        )
    }
    expected = {
        row[0]: row[1:]
        for row in project.query(
            target,
            f"""
        select p.profile_id,
               (select count(*) from bookings b where b.profile_id = p.profile_id),
               (select sum(amount) from bookings b where b.profile_id = p.profile_id
                and b.status in ('confirmed', 'completed')),
               (select count(*) from bookings b where b.profile_id = p.profile_id
                and b.status = 'cancelled' and b.amount > 100),
               (select status from bookings b where b.profile_id = p.profile_id
                order by booked_at desc, booking_id limit 1),
               (select booking_id from bookings b where b.profile_id = p.profile_id
                order by booked_at, booking_id limit 1 offset 1)
        from profiles p where p.profile_id in ({members})""",
        )
    }
    assert got == expected
    assert any(row[0] == 0 for row in got.values())  # count over no booking is 0, not NULL
    # the aggregates over bookings share one scan (FILTER per where): a guest whose bookings are none
    # of a column's still gets its value over no row
    assert any(row[0] > 0 and row[1] is None for row in got.values())
    assert any(row[0] > 0 and row[2] == 0 for row in got.values())


def test_reconciliation_carries_the_first_matching_incoming_row(built):
    project, target, _ = built
    got = pairs(project, target, "select profile_id, badge from files__by_email")
    expected = pairs(
        project,
        target,
        f"""
        select p.profile_id, cast(a.badge as integer) from profiles p join {ATTENDEES} a on a.email = p.email
        where a.file_row = (select min(f.file_row) from {ATTENDEES} f where f.email = p.email)""",
    )
    assert got == expected


def test_change_dimension_to_a_many_link_carries_upstream_columns(built):
    project, target, _ = built
    got = pairs(project, target, "select booking_id, nb from flow__their_bookings")
    expected = pairs(
        project,
        target,
        f"""
        select b.booking_id, (select count(*) from bookings c where c.profile_id = b.profile_id)
        from ({THEIR_BOOKINGS}) b""",
    )
    assert got == expected
