"""Every class of bad input: located errors, all at once, exit 2, nothing written."""

from __future__ import annotations

import pytest
from conftest import run_cli
from validation_helpers import DATA_MODEL, PROFILES_CSV, errors_of, run_in_process, with_data_model

C = "campaigns/c.yml"
W = "on every warehouse campaigns compile for (duckdb, postgres, spark)"

# (id, campaign file, the exact errors `campaign validate` prints)
CASES = [
    (
        "duplicate-key",
        """\
campaign: c
activities:
  a: {type: build_audience}
  a: {type: build_audience}
""",
        [f'{C}:4:3: error: key "a" is given twice'],
    ),
    (
        "unknown-top-level-key",
        """\
campain: c
activities:
  a: {type: build_audience}
""",
        [
            f'{C}:1:1: error: a campaign file needs "campaign"',
            f'{C}:1:1: error: unknown key "campain" in a campaign file (did you mean "campaign"?)',
        ],
    ),
    (
        "unknown-activity-key",
        """\
campaign: c
activities:
  a:
    type: build_audience
    wher: "country = 'FR'"
""",
        [f'{C}:5:5: error: unknown key "wher" in build_audience activity "a" (did you mean "where"?)'],
    ),
    (
        "unknown-activity-type",
        """\
campaign: c
activities:
  a: {type: build_audiense}
""",
        [f'{C}:3:13: error: unknown activity type "build_audiense" (did you mean "build_audience"?)'],
    ),
    (
        "bad-activity-id",
        """\
campaign: c
activities:
  Fr-Gold: {type: build_audience}
""",
        [
            f'{C}:3:3: error: activity id "Fr-Gold" is not a valid name (lowercase letters, digits and _, '
            "starting with a letter, at most 40 characters)"
        ],
    ),
    (
        "bad-campaign-name",
        """\
campaign: Summer Promo
activities:
  a: {type: build_audience}
""",
        [
            f'{C}:1:11: error: campaign name "Summer Promo" is not a valid name (lowercase letters, digits and '
            "_, starting with a letter, at most 40 characters)"
        ],
    ),
    (
        "dangling-input",
        """\
campaign: c
activities:
  a: {type: build_audience}
  b: {type: end, input: nope}
""",
        [f'{C}:4:25: error: unknown activity "nope"'],
    ),
    (
        "unknown-output",
        """\
campaign: c
activities:
  a: {type: build_audience}
  s:
    type: split
    input: a
    subsets: [{name: vip}]
  b: {type: end, input: s.vipp}
""",
        [f'{C}:8:25: error: "s" has no output "vipp" (did you mean "vip"?)'],
    ),
    (
        "several-outputs-need-a-name",
        """\
campaign: c
activities:
  a: {type: build_audience}
  s: {type: split, input: a, subsets: [{name: vip}, {name: rest}]}
  b: {type: end, input: s}
""",
        [f'{C}:5:25: error: "s" (split) has several outputs; read one of s.vip, s.rest'],
    ),
    (
        "cycle",
        """\
campaign: c
activities:
  a: {type: build_audience}
  b: {type: combine, mode: union, inputs: [a, c]}
  c: {type: end, input: b}
""",
        [f"{C}:4:47: error: transitions form a cycle: b -> c -> b"],
    ),
    (
        "missing-inputs",
        """\
campaign: c
activities:
  a: {type: build_audience}
  e: {type: end}
  u: {type: combine, mode: union, inputs: [a]}
  o: {type: or_join, inputs: []}
  s: {type: split, input: a}
  z: {type: end, input: s.x}
""",
        [
            f'{C}:4:6: error: end activity "e" needs "input"',
            f'{C}:5:43: error: "inputs" needs at least 2 items',
            f'{C}:6:30: error: "inputs" needs at least 2 items',
            f'{C}:7:6: error: split activity "s" needs "subsets"',
        ],
    ),
    (
        "dimension-mismatch",
        """\
campaign: c
activities:
  people: {type: build_audience}
  stays: {type: build_audience, dimension: bookings}
  both: {type: combine, mode: union, inputs: [people, stays]}
""",
        [f'{C}:5:55: error: "stays" is made of bookings but "people" of profiles: inputs must share a dimension'],
    ),
    (
        "unknown-dimension",
        """\
campaign: c
dimension: guests
activities:
  a: {type: build_audience}
""",
        [f'{C}:2:12: error: unknown dimension "guests": not an entity of campaign_project.yml'],
    ),
    (
        "unknown-column-in-condition",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "country = 'FR' and loyalty_teir = 'gold'"
""",
        [
            f'{C}:5:32: error: unknown column "loyalty_teir" in condition: not a column of "profiles" '
            '(did you mean "loyalty_tier"?)'
        ],
    ),
    (
        "unknown-column-block-scalar",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: |
      country = 'FR'
        and contry is not null
""",
        [
            f'{C}:7:13: error: unknown column "contry" in condition: not a column of "profiles" '
            '(did you mean "country"?)'
        ],
    ),
    (
        "unknown-link",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: {link: booking, where: "status = 'confirmed'"}
""",
        [f'{C}:5:19: error: "profiles" has no link "booking" (did you mean "bookings"?)'],
    ),
    (
        "column-of-linked-entity-checked",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: {link: bookings, where: "statut = 'confirmed'"}
""",
        [f'{C}:5:37: error: unknown column "statut" in condition: not a column of "bookings" (did you mean "status"?)'],
    ),
    (
        "subquery",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "profile_id in (select profile_id from bookings)"
""",
        [f"{C}:5:28: error: subqueries are not allowed in condition"],
    ),
    (
        "qualified-name",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "p.country = 'FR'"
""",
        [f'{C}:5:13: error: qualified name "p.country" is not allowed in condition; write the column name alone'],
    ),
    (
        "aggregate-outside-having",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "count(*) > 2"
""",
        [
            f"{C}:5:13: error: aggregate function COUNT() is not allowed in condition "
            "(aggregates belong in a link condition's having)"
        ],
    ),
    (
        "having-needs-aggregate",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: {link: bookings, having: "amount > 10"}
""",
        [f'{C}:5:38: error: column "amount" must be inside an aggregate function in having'],
    ),
    (
        "window-function",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "row_number() over (order by created_at) < 10"
""",
        [f"{C}:5:13: error: window functions are not allowed in condition"],
    ),
    (
        "several-statements",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "country = 'FR'; drop table profiles"
""",
        [f"{C}:5:12: error: condition must be one SQL expression, not 2 statements"],
    ),
    (
        "not-an-expression",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "drop table profiles"
""",
        [f"{C}:5:12: error: condition must be a SQL expression, not a DROP statement"],
    ),
    (
        "unknown-function",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "pg_sleep(10) is null"
""",
        [
            f'{C}:5:13: error: unknown function "pg_sleep" in condition: functions must exist, with the same '
            "meaning, on every warehouse campaigns compile for (duckdb, postgres, spark)"
        ],
    ),
    (
        "not-portable",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "email similar to 'a%' or dayofweek(created_at) = 1"
""",
        [
            f"{C}:5:13: error: SIMILAR TO is not available alike on every warehouse campaigns compile for (duckdb, "
            "postgres, spark): SIMILAR TO is a regular expression on DuckDB and a SQL pattern on PostgreSQL; use LIKE, or ~ "
            "for a regular expression",
            f"{C}:5:38: error: DAY_OF_WEEK() is not available alike on every warehouse campaigns compile for (duckdb, "
            "postgres, spark): the days of the week are numbered differently: compare dates",
        ],
    ),
    (
        "not-portable-to-spark",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "extract(dow from created_at) = 0 or date_part('epoch', created_at) > 0 or email ~* 'x'"
  b:
    type: build_audience
    where: {link: bookings, where: "cast(amount as integer) = 1 or current_date - checkin_date > 3"}
""",
        [
            f"{C}:5:30: error: extract(dow ...) is not available alike {W}: Spark numbers the days of the week "
            "1 (Sunday) to 7, DuckDB and PostgreSQL 0 to 6; compare dates",
            f"{C}:5:68: error: extract(epoch ...) is not available alike {W}: Spark has no epoch; compare timestamps",
            f"{C}:5:87: error: ~* is not available alike {W}: use ~ on lower(...) with a lowercase pattern",
            f'{C}:8:42: error: "CAST(amount AS INT)" is not the same {W}: a number cast to an integer is rounded '
            "on DuckDB and PostgreSQL, truncated on Spark; cast round(), floor() or ceil() of it",
            f'{C}:8:83: error: "CURRENT_DATE - checkin_date" is not the same {W}: a date minus a date is a number '
            "of days on DuckDB and PostgreSQL, an interval on Spark; compare a date with the other plus a number of days",
        ],
    ),
    (
        "type-mismatch",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "country > 3 or email_opt_in = 'yes' or loyalty_tier in ('gold', 2)"
""",
        [
            f'{C}:5:13: error: cannot compare "country" (text) with "3" (integer)',
            f'{C}:5:52: error: cannot compare "loyalty_tier" (text) with "2" (integer)',
        ],
    ),
    (
        "like-type-mismatch",
        """\
campaign: c
activities:
  a: {type: build_audience, where: "email like 5 or email not like 5 or email ilike 5"}
  b: {type: build_audience, dimension: bookings, where: "amount like '5%' or checkin_date not ilike '2024%'"}
  c: {type: build_audience, where: "email like '%@x.com' and email not like 'a!%' escape '!'"}
  d: {type: build_audience, dimension: bookings, where: "cast(amount as text) like '5%'"}
""",
        [
            f'{C}:3:37: error: cannot compare "email" (text) with "5" (integer)',
            f'{C}:3:53: error: cannot compare "email" (text) with "5" (integer)',
            f'{C}:3:73: error: cannot compare "email" (text) with "5" (integer)',
            f'{C}:4:58: error: LIKE matches text, but "amount" is number: write cast(amount as text)',
            f'{C}:4:78: error: ILIKE matches text, but "checkin_date" is date: write cast(checkin_date as text)',
        ],
    ),
    (
        "comparison-like-type-mismatch",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "country is distinct from 3 or loyalty_tier = any(array['gold', 2]) or phone ~ 5 or profile_id ~ '^1'"
  b:
    type: build_audience
    where: "nullif(country, 1) is null or case loyalty_tier when 2 then email_opt_in else false end"
  c:
    type: build_audience
    where: "country is not distinct from 'FR' and loyalty_tier = any(array['gold', 'vip']) and phone ~ '^[+]33'"
""",
        [
            f'{C}:5:13: error: cannot compare "country" (text) with "3" (integer)',
            f'{C}:5:43: error: cannot compare "loyalty_tier" (text) with "2" (integer)',
            f'{C}:5:83: error: cannot compare "phone" (text) with "5" (integer)',
            (
                f'{C}:5:96: error: a regular expression matches text, but "profile_id" is integer: '
                "write cast(profile_id as text)"
            ),
            f'{C}:8:13: error: cannot compare "country" (text) with "1" (integer)',
            f'{C}:8:48: error: cannot compare "loyalty_tier" (text) with "2" (integer)',
        ],
    ),
    (
        "condition-not-boolean",
        """\
campaign: c
activities:
  a: {type: build_audience, where: "lower(email)"}
  b: {type: build_audience, where: ""}
""",
        [
            f'{C}:3:37: error: condition must be true or false, but "LOWER(email)" is text',
            f"{C}:4:36: error: condition must be SQL text, not empty text",
        ],
    ),
    (
        "file-reading-function",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "read_csv('/etc/passwd') is not null"
""",
        [
            f"{C}:5:13: error: function READ_CSV() is not allowed in condition: it is not a deterministic "
            "scalar function"
        ],
    ),
    (
        "invalid-sql",
        """\
campaign: c
activities:
  a:
    type: build_audience
    where: "country = = 'FR'"
""",
        [
            f"{C}:5:23: error: invalid SQL in condition: Required keyword: 'expression' missing for "
            "<class 'sqlglot.expressions.core.EQ'>"
        ],
    ),
    (
        "missing-file",
        """\
campaign: c
activities:
  f:
    type: load_file
    path: data/missing.csv
    columns: {email: text}
""",
        [f"{C}:5:11: error: file not found: data/missing.csv"],
    ),
    (
        "bad-types-and-values",
        """\
campaign: c
activities:
  a: {type: build_audience}
  s:
    type: split
    input: a
    subsets:
      - name: top
        limit: {percent: 140}
      - name: some
        limit: {count: -1}
""",
        [
            f"{C}:9:26: error: percent must be a number from 0 to 100, not 140",
            f"{C}:11:24: error: count must be at least 0, not -1",
        ],
    ),
    (
        "enrichment-name-clash",
        """\
campaign: c
activities:
  a: {type: build_audience}
  e:
    type: enrichment
    input: a
    add: {email: "lower(email)"}
""",
        [f'{C}:7:11: error: column "email" already exists in the working table or in "profiles"; choose another name'],
    ),
    (
        "test-uses-count-only",
        """\
campaign: c
activities:
  a: {type: build_audience}
  t:
    type: test
    input: a
    conditions: [{name: big, when: "country = 'FR'"}]
""",
        [
            f'{C}:7:37: error: unknown column "country" in when: not a column of a test (only count is available) '
            '(did you mean "count"?)'
        ],
    ),
    (
        "unknown-audience",
        """\
campaign: c
activities:
  a: {type: build_audience, audience: vipz}
""",
        [f'{C}:3:39: error: no campaign saves an audience named "vipz"'],
    ),
    (
        "model-name-too-long",
        """\
campaign: a_rather_long_campaign_name_for_testing
activities:
  an_activity_with_a_very_long_name_as_well: {type: build_audience}
""",
        [
            f'{C}:3:3: error: activity id "an_activity_with_a_very_long_name_as_well" is not a valid name '
            "(lowercase letters, digits and _, starting with a letter, at most 40 characters)"
        ],
    ),
    (
        "relation-name-too-long",
        """\
campaign: a_rather_long_campaign_name_for_test
activities:
  a_long_activity_name_too_abcde: {type: build_audience}
""",
        [
            f'{C}:3:3: error: model name "a_rather_long_campaign_name_for_test__a_long_activity_name_too_abcde" '
            "is 68 characters; warehouses allow 63: shorten the campaign, activity or output name"
        ],
    ),
    (
        "all-errors-at-once",
        """\
campaign: c
activities:
  a: {type: build_audience, where: "contry = 'FR'"}
  b: {type: build_audience, where: {link: hotels}}
  c: {type: end, input: zz}
""",
        [
            f'{C}:3:37: error: unknown column "contry" in condition: not a column of "profiles" (did you mean "country"?)',
            f'{C}:4:43: error: "profiles" has no link "hotels"',
            f'{C}:5:25: error: unknown activity "zz"',
        ],
    ),
    # model names join campaign, activity and output names with "__": none may contain it or end with "_"
    (
        "activity-id-joins-model-names",
        """\
campaign: c
activities:
  everyone: {type: build_audience}
  seg:
    type: split
    input: everyone
    subsets: [{name: vip, where: "loyalty_tier = 'platinum'"}]
  seg__vip: {type: build_audience}
  mail: {type: end, input: seg__vip}
""",
        [
            f'{C}:8:3: error: activity id "seg__vip" may not contain "__" nor end with "_": generated model names '
            'join campaign, activity and output names with "__"'
        ],
    ),
    (
        "output-names-join-model-names",
        """\
campaign: c
activities:
  everyone: {type: build_audience}
  seg: {type: split, input: everyone, subsets: [{name: vip__gold}], complement: rest_}
""",
        [
            f'{C}:4:56: error: output name "vip__gold" may not contain "__" nor end with "_": generated model names '
            'join campaign, activity and output names with "__"',
            f'{C}:4:81: error: output name "rest_" may not contain "__" nor end with "_": generated model names '
            'join campaign, activity and output names with "__"',
        ],
    ),
    (
        "campaign-name-joins-model-names",
        """\
campaign: clash__seg
activities:
  vip: {type: build_audience}
""",
        [
            f'{C}:1:11: error: campaign name "clash__seg" may not contain "__" nor end with "_": generated model names '
            'join campaign, activity and output names with "__"'
        ],
    ),
    (
        "audience-name-joins-model-names",
        """\
campaign: c
activities:
  everyone: {type: build_audience}
  keep: {type: save_audience, input: everyone, name: vip__}
""",
        [
            f'{C}:4:54: error: audience name "vip__" may not contain "__" nor end with "_": generated model names '
            'join campaign, activity and output names with "__"'
        ],
    ),
    (
        "incremental-query-since",
        """\
campaign: c
activities:
  a: {type: incremental_query, since: creatd_at}
  b: {type: incremental_query, since: country}
  h: {type: incremental_query, dimension: hotels, since: city}
  n: {type: incremental_query}
""",
        [
            f'{C}:3:39: error: since names a column of "profiles", not "creatd_at" (did you mean "created_at"?)',
            f'{C}:4:39: error: since needs a timestamp or date column; "country" of "profiles" is text '
            "(its timestamp and date columns: created_at)",
            f'{C}:5:58: error: since needs a timestamp or date column; "city" of "hotels" is text (it has none)',
            f'{C}:6:6: error: incremental_query activity "n" needs "since"',
        ],
    ),
    (
        "reaction-parameters",
        """\
campaign: c
activities:
  a: {type: build_audience}
  mail: {type: email, input: a, template: templates/t.yml}
  r1: {type: reaction, input: a, of: mial, event: open}
  r2: {type: reaction, input: a, of: a, event: opne, within: 3 days}
  w: {type: wait, input: mail, duration: 3d}
  r3: {type: reaction, input: w, of: mail, event: click, within: 3d}
""",
        [
            f'{C}:5:38: error: unknown activity "mial" (did you mean "mail"?): of names a channel activity '
            "of this campaign (mail)",
            f'{C}:6:38: error: "a" (build_audience) is not a channel activity: of names one of this campaign (mail)',
            f"{C}:6:48: error: event must be one of delivered, open, click, bounce, complaint, unsubscribe, "
            'not "opne" (did you mean "open"?)',
            f"{C}:6:62: error: within must be a duration, a number and a unit: 30m, 12h, 3d, 2w (s, m, h, d, w); "
            'not "3 days"',
        ],
    ),
    (
        "reaction-of-other-recipients",
        """\
campaign: c
activities:
  a: {type: build_audience}
  mail: {type: email, input: a, template: templates/t.yml}
  stays: {type: build_audience, dimension: bookings}
  r: {type: reaction, input: stays, of: mail, event: open}
""",
        [
            f'{C}:6:30: error: "stays" is made of bookings but "mail" messages profiles: a reaction reads the '
            "recipients of its channel activity",
            f'{C}:6:41: error: reaction "r" reads the events of "mail", which is not sent before a wait on the way '
            "to it: put a wait between them, so that recipients have time to react",
        ],
    ),
    (
        "reaction-of-a-later-channel",
        """\
campaign: c
activities:
  a: {type: build_audience}
  r: {type: reaction, input: a, of: mail, event: open}
  mail: {type: email, input: r.no, template: templates/t.yml}
  done: {type: end, input: mail}
""",
        [f'{C}:4:37: error: "mail" is downstream of "r": a reaction reads an activity that comes before it'],
    ),
    (
        "waits-and-their-steps",
        """\
campaign: c
activities:
  a: {type: build_audience}
  w1: {type: wait, input: a, duration: 3 days}
  w2: {type: wait, input: a}
  w3: {type: wait, input: a, duration: 1d, until: "2026-01-01"}
  w4: {type: wait, input: a, until: "next monday"}
  w5: {type: wait, input: a, duration: 1d}
  j: {type: or_join, inputs: [a, w5]}
""",
        [
            f"{C}:4:40: error: duration must be a duration, a number and a unit: 30m, 12h, 3d, 2w (s, m, h, d, w); "
            'not "3 days"',
            f'{C}:5:3: error: wait "w2" needs either "duration" (3d, 12h, 30m) or "until" (an ISO time), and has neither',
            f'{C}:6:3: error: wait "w3" needs either "duration" (3d, 12h, 30m) or "until" (an ISO time), not both',
            f'{C}:7:37: error: until must be an ISO 8601 time (2026-03-02T08:00:00Z), not "next monday"',
            f'{C}:9:30: error: or_join joins rows that different waits release: "a" (no wait), "w5" (wait w5); '
            "join them before the waits, or after one wait",
        ],
    ),
    (
        "reactions-in-a-cycle-through-their-channels",
        """\
campaign: c
activities:
  a: {type: build_audience}
  r1: {type: reaction, input: a, of: e1, event: open}
  e1: {type: email, input: r2.yes, template: templates/t.yml}
  r2: {type: reaction, input: a, of: e2, event: open}
  e2: {type: email, input: r1.yes, template: templates/t.yml}
""",
        [f"{C}:4:38: error: transitions form a cycle: r1 -> e2 -> r2 -> e1 -> r1"],
    ),
]


@pytest.mark.parametrize("text, expected", [pytest.param(t, e, id=i) for i, t, e in CASES])
def test_bad_campaign_is_rejected_with_its_location(project, monkeypatch, text, expected):
    with_data_model(project)
    project.write("templates/t.yml", 'subject: "Hello {{ first_name }}"\ntext: "x"\n')
    assert errors_of(project, monkeypatch, text) == expected
    assert not (project.root / "models" / "campaigns").exists()


T = "templates/t.yml"

# (id, campaign file, template, the exact errors): an activity with an error still yields the working
# tables it certainly has, so the activities that read them are checked in the same run
DOWNSTREAM_CASES = [
    (
        "condition-then-template",
        """\
campaign: c
activities:
  segment: {type: build_audience, where: "contry = 'FR'"}
  mail: {type: email, input: segment, template: templates/t.yml}
""",
        'subject: "Hello {{ frist_name }}"\ntext: "Dear {{ first_name }}"\n',
        [
            f'{C}:3:43: error: unknown column "contry" in condition: not a column of "profiles" (did you mean "country"?)',
            f'{T}:1:20: error: unknown variable "frist_name" (did you mean "first_name"?)',
        ],
    ),
    # the bad column is still declared (its type unknown): reading it or its sibling is no mistake
    (
        "enrichment-then-template",
        """\
campaign: c
activities:
  a: {type: build_audience}
  e:
    type: enrichment
    input: a
    add:
      stays: {link: bookings, aggregate: "count(*)"}
      domain: "split_part(emial, '@', 2)"
  s:
    type: split
    input: e
    subsets: [{name: loyal, where: "stays > 2 and domain <> 'example.com'"}]
  m: {type: email, input: s.loyal, template: templates/t.yml}
""",
        'subject: "{{ stays }} stays, {{ frist_name }}"\ntext: "{{ domain }}"\n',
        [
            (
                f'{C}:9:27: error: unknown column "emial" in an enrichment expression: not a column of "profiles" '
                '(did you mean "email"?)'
            ),
            f'{T}:1:33: error: unknown variable "frist_name" (did you mean "first_name"?)',
        ],
    ),
    # every subset's condition is checked, and the complement still has the input's columns
    (
        "split-conditions-then-template",
        """\
campaign: c
activities:
  a: {type: build_audience}
  s:
    type: split
    input: a
    subsets: [{name: x, where: "contry = 'FR'"}, {name: y, where: "emial is null"}]
    complement: rest
  m: {type: email, input: s.rest, template: templates/t.yml}
""",
        'subject: "Hello {{ frist_name }}"\ntext: "x"\n',
        [
            f'{C}:7:33: error: unknown column "contry" in condition: not a column of "profiles" (did you mean "country"?)',
            f'{C}:7:68: error: unknown column "emial" in condition: not a column of "profiles" (did you mean "email"?)',
            f'{T}:1:20: error: unknown variable "frist_name" (did you mean "first_name"?)',
        ],
    ),
    # a file that cannot be read still has the columns it declares
    (
        "missing-file-then-reconciliation",
        """\
campaign: c
activities:
  f: {type: load_file, path: data/missing.csv, columns: {mail: text, points: integr}}
  r: {type: reconciliation, input: f, match: {mial: email}, carry: [points]}
  m: {type: email, input: r, template: templates/t.yml}
""",
        'subject: "Hello {{ frist_name }}"\ntext: "{{ points }}"\n',
        [
            f"{C}:3:30: error: file not found: data/missing.csv",
            (
                f'{C}:3:78: error: type of column "points" must be one of text, integer, number, boolean, date, timestamp, '
                'not "integr" (did you mean "integer"?)'
            ),
            f'{C}:4:47: error: "mial" is not a column of "f" (did you mean "mail"?)',
            f'{T}:1:20: error: unknown variable "frist_name" (did you mean "first_name"?)',
        ],
    ),
    # an unknown dimension leaves the rows unknown: the split is not checked against another entity
    (
        "unknown-dimension-stops-there",
        """\
campaign: c
activities:
  a: {type: build_audience, dimension: booking}
  s: {type: split, input: a, subsets: [{name: big, where: "amount > 100"}]}
  m: {type: email, input: s.big, template: templates/t.yml}
""",
        'subject: "Hello {{ frist_name }}"\ntext: "x"\n',
        [
            (
                f'{C}:3:40: error: unknown dimension "booking": not an entity of campaign_project.yml '
                '(did you mean "bookings"?)'
            )
        ],
    ),
]


@pytest.mark.parametrize("text, template, expected", [pytest.param(c, t, e, id=i) for i, c, t, e in DOWNSTREAM_CASES])
def test_errors_downstream_of_an_error_are_reported_in_the_same_run(project, monkeypatch, text, template, expected):
    with_data_model(project)
    project.write(T, template)
    assert errors_of(project, monkeypatch, text) == expected


def test_campaign_structure_is_checked_when_the_data_model_has_errors(project, monkeypatch):
    with_data_model(project, DATA_MODEL.replace("loyalty_tier: text", "loyalty_tier: txt"))
    # its condition is not checked against a data model with errors: "loyalty_tier" is not unknown
    errors = errors_of(
        project,
        monkeypatch,
        """\
campaign: c
activities:
  a: {type: build_audiense}
  b: {type: build_audience, where: "loyalty_tier = 'gold'"}
  e: {type: end, input: zz}
""",
    )
    assert errors == [
        (
            'campaign_project.yml:8:29: error: type of column "loyalty_tier" must be one of text, integer, number, '
            'boolean, date, timestamp, not "txt" (did you mean "text"?)'
        ),
        f'{C}:3:13: error: unknown activity type "build_audiense" (did you mean "build_audience"?)',
        f'{C}:5:25: error: unknown activity "zz"',
    ]


def test_yaml_syntax_error_is_located(project, monkeypatch):
    with_data_model(project)
    errors = errors_of(project, monkeypatch, "campaign: c\nactivities:\n  a: {type: build_audience\n")
    assert len(errors) == 1 and errors[0].startswith(f"{C}:4:1: error: invalid YAML: ")
    assert "','" in errors[0]  # libyaml: "did not find expected ',' or '}'"; PyYAML: "expected ',' or '}'..."


TEMPLATE_CASES = [
    (
        "unknown-variable",
        'subject: "Hello {{ frist_name }}"\ntext: |\n  Dear {{ first_name }},\n  {{ emial }}\n',
        None,
        [
            'templates/t.yml:1:20: error: unknown variable "frist_name" (did you mean "first_name"?)',
            'templates/t.yml:4:6: error: unknown variable "emial" (did you mean "email"?)',
        ],
    ),
    (
        "syntax-error",
        'subject: "Hello {{ first_name"\ntext: "x"\n',
        None,
        [
            "templates/t.yml:1:11: error: invalid template: unexpected end of template, expected 'end of print statement'."
        ],
    ),
    (
        "unknown-column-of-the-linked-row",
        'subject: "{{ booking.checkin }}"\ntext: "{{ booking }}"\n',
        {"link": "bookings", "as": "booking"},
        [
            'templates/t.yml:1:22: error: "booking" has no column "checkin" (did you mean "checkin_date"?)',
            'templates/t.yml:2:11: error: use one column of the linked row: "booking.<column>"',
        ],
    ),
    (
        "missing-part",
        'subject: "Hi"\n',
        None,
        ['templates/t.yml:1:1: error: an email template needs "text", "html" or both'],
    ),
    (
        "unknown-key",
        'subject: "Hi"\ntext: "x"\nbodyy: "y"\n',
        None,
        ['templates/t.yml:3:1: error: unknown key "bodyy" in an email template'],
    ),
    (
        "nested-too-deeply",
        'subject: "{{ ' + "(" * 2000 + "first_name" + ")" * 2000 + ' }}"\ntext: "x"\n',
        None,
        ["templates/t.yml:1:11: error: invalid template: nested too deeply to be read"],
    ),
]


@pytest.mark.parametrize("template, per, expected", [pytest.param(t, p, e, id=i) for i, t, p, e in TEMPLATE_CASES])
def test_bad_template_is_rejected_with_its_location(project, monkeypatch, template, per, expected):
    with_data_model(project)
    project.write("templates/t.yml", template)
    per_line = f"    per: {{link: {per['link']}, as: {per['as']}}}\n" if per else ""
    errors = errors_of(
        project,
        monkeypatch,
        "campaign: c\nactivities:\n  a: {type: build_audience}\n"
        f"  m:\n    type: email\n    input: a\n{per_line}"
        "    template: templates/t.yml\n",
    )
    assert errors == expected


PER_DATA_MODEL = """\
version: 1
entities:
  customers:
    model: customers
    key: customer_id
    columns: {customer_id: integer, email: text}
    addresses: {email: email}
    links:
      phones: {entity: phones, on: {customer_id: customer_id}}
  phones:
    model: phones
    key: phone_id
    columns: {phone_id: integer, customer_id: integer, number: text}
    addresses: {sms: number}
    links:
      customer: {entity: customers, on: {customer_id: customer_id}}
      calls: {entity: calls, on: {phone_id: phone_id}}
      texts: {entity: texts, on: {phone_id: phone_id}}
  calls:
    model: calls
    key: call_id
    columns: {call_id: integer, phone_id: integer}
    links:
      phone: {entity: phones, on: {phone_id: phone_id}}
  texts:
    model: texts
    key: text_id
    columns: {text_id: integer, phone_id: integer}
"""
PER_SEEDS = {
    "customers": "customer_id,email",
    "phones": "phone_id,customer_id,number",
    "calls": "call_id,phone_id",
    "texts": "text_id,phone_id",
}

# (id, campaign file, the exact errors): a multi-level send is one message per row of a many-link
PER_CASES = [
    (
        "one-link",
        """\
campaign: c
dimension: phones
activities:
  a: {type: build_audience}
  m:
    type: sms
    input: a
    per: {link: customer, as: owner}
    template: templates/t.yml
""",
        [f'{C}:8:17: error: "customer" is a one-link (to customers): per needs a many-link of "phones" (calls, texts)'],
    ),
    (
        "one-link-and-no-many-link",
        """\
campaign: c
dimension: calls
activities:
  a: {type: build_audience}
  m:
    type: sms
    input: a
    per:
      link: phone
      as: line
    template: templates/t.yml
""",
        [f'{C}:9:13: error: "phone" is a one-link (to phones): per needs a many-link, and "calls" has none'],
    ),
]


@pytest.mark.parametrize("text, expected", [pytest.param(t, e, id=i) for i, t, e in PER_CASES])
def test_per_needs_a_many_link(project, monkeypatch, text, expected):
    with_data_model(project, PER_DATA_MODEL)
    for name, header in PER_SEEDS.items():
        project.write(f"seeds/{name}.csv", header + "\n")
    project.write("templates/t.yml", 'body: "Hi"\n')
    assert errors_of(project, monkeypatch, text) == expected
    assert not (project.root / "models" / "campaigns").exists()


CHANNEL_CASES = [
    (
        "unknown-provider",
        "email: {provider: smtpp, host: h, from: a@b.c}",
        'campaign_project.yml:{line}:21: error: provider must be one of outbox, smtp, not "smtpp" (did you mean "smtp"?)',
    ),
    (
        "missing-host",
        "email: {provider: smtp, from: a@b.c}",
        'campaign_project.yml:{line}:10: error: smtp settings of email needs "host"',
    ),
    (
        "wrong-channel",
        "sms: {provider: smtp, host: h, from: a@b.c}",
        'campaign_project.yml:{line}:19: error: provider must be one of outbox, http, not "smtp"',
    ),
    (
        "bad-value",
        "email: {provider: smtp, host: h, from: a@b.c, tls: yes, connections: 0}",
        'campaign_project.yml:{line}:54: error: tls must be one of none, starttls, ssl, not "yes"',
    ),
    (
        "bad-in-flight",
        "email: {provider: smtp, host: h, from: a@b.c, in_flight: 0}",
        "campaign_project.yml:{line}:60: error: in_flight must be at least 1, not 0",
    ),
]


@pytest.mark.parametrize("channel, expected", [pytest.param(c, e, id=i) for i, c, e in CHANNEL_CASES])
def test_bad_provider_settings_are_rejected_with_their_location(project, monkeypatch, channel, expected):
    data_model = DATA_MODEL + f"channels:\n  {channel}\n"
    with_data_model(project, data_model)
    line = data_model.count("\n")
    errors = errors_of(project, monkeypatch, "campaign: c\nactivities:\n  a: {type: build_audience}\n")
    assert errors[0] == expected.format(line=line)


OWNED = "is inside {folder}/, which the dbt project owns: give extracts a folder of their own (exports/, say)"
EXTRACT_PATH_CASES = [
    ("absolute", "/tmp/x_{occurrence}.csv", "must be relative to the project directory"),
    ("parent", "../../x_{occurrence}.csv", "must stay inside the project directory"),
    ("parent-inside", "exports/../../x_{occurrence}.csv", "must stay inside the project directory"),
    ("project-file", "campaign_project.yml", "must name a .csv file"),
    ("no-csv", "exports/{occurrence}", "must name a .csv file"),
    ("seeds", "seeds/profiles_{occurrence}.csv", OWNED.format(folder="seeds")),
    ("models", "models/campaigns/x_{occurrence}.csv", OWNED.format(folder="models")),
    ("campaigns", "campaigns/x_{occurrence}.csv", OWNED.format(folder="campaigns")),
    ("templates", "templates/x_{occurrence}.csv", OWNED.format(folder="templates")),
    ("macros", "macros/x_{occurrence}.csv", OWNED.format(folder="macros")),
    ("target", "target/x_{occurrence}.csv", OWNED.format(folder="target")),
    ("packages", "dbt_packages/x_{occurrence}.csv", OWNED.format(folder="dbt_packages")),
    (
        "git",
        ".git/x_{occurrence}.csv",
        "is inside the hidden folder .git/: give extracts a folder of their own (exports/, say)",
    ),
    ("symlink", "linked/x_{occurrence}.csv", "leads outside the project directory (through a symbolic link)"),
    ("symlink-to-seeds", "seedlink/x_{occurrence}.csv", OWNED.format(folder="seeds")),
    (
        "placeholder-folder",
        "{campaign}/x_{occurrence}.csv",
        "must start with a folder written out, not {campaign}: the names put in its place could be any folder",
    ),
    (
        "unknown-placeholder",
        "exports/{date}_{occurrence}.csv",
        "may use {campaign}, {occurrence}, {activity} and {target}, not {date}",
    ),
    (
        "no-occurrence",
        "exports/{campaign}.csv",
        "must contain {occurrence}: each occurrence has an extract of its own (its message keys are those of "
        "every other occurrence)",
    ),
]


@pytest.mark.parametrize("value, expected", [pytest.param(v, e, id=i) for i, v, e in EXTRACT_PATH_CASES])
def test_the_file_provider_writes_only_an_extract_of_its_own_inside_the_project(
    project, monkeypatch, tmp_path, value, expected
):
    (tmp_path / "elsewhere").mkdir()
    (project.root / "linked").symlink_to(tmp_path / "elsewhere")
    (project.root / "seedlink").symlink_to(project.root / "seeds")
    line = f'  direct_mail: {{provider: file, path: "{value}"}}'
    data_model = DATA_MODEL + f"channels:\n{line}\n"
    with_data_model(project, data_model)
    errors = errors_of(project, monkeypatch, "campaign: c\nactivities:\n  a: {type: build_audience}\n")
    assert errors == [
        f"campaign_project.yml:{data_model.count(chr(10))}:{line.index(chr(34)) + 1}: error: "
        f'path of the file provider "{value}" {expected}'
    ]
    assert not list(project.root.rglob("x_*")) and not list((tmp_path / "elsewhere").iterdir())


def test_the_file_provider_may_write_anywhere_else_in_the_project(project, monkeypatch):
    for value in (
        "exports/{campaign}/{occurrence}_{activity}.csv",
        "letters_{occurrence}.csv",
        "out/{target}/{campaign}_{occurrence}.csv",
    ):
        with_data_model(project, DATA_MODEL + f'channels:\n  direct_mail: {{provider: file, path: "{value}"}}\n')
        assert errors_of(project, monkeypatch, "campaign: c\nactivities:\n  a: {type: build_audience}\n") == []


def test_compile_writes_nothing_when_any_campaign_is_invalid(project, monkeypatch):
    with_data_model(project)
    project.write("campaigns/good.yml", "campaign: good\nactivities:\n  a: {type: build_audience}\n")
    project.write("campaigns/bad.yml", "campaign: bad\nactivities:\n  a: {type: nope}\n")
    code, _, err = run_in_process(project, monkeypatch, "compile", "good", "bad")
    assert code == 2
    assert "campaigns/bad.yml:3:13: error: unknown activity type" in err
    assert not (project.root / "models" / "campaigns").exists()


def test_names_that_made_the_same_model_across_campaigns_are_refused(project, monkeypatch):
    """`clash__seg`'s activity `vip` and `clash`'s split `seg`, subset `vip`, were both the model
    clash__seg__vip: validate and compile refuse the project, and compile writes nothing."""
    with_data_model(project)
    project.write(
        "campaigns/clash.yml",
        """\
campaign: clash
activities:
  everyone: {type: build_audience}
  seg: {type: split, input: everyone, subsets: [{name: vip, where: "loyalty_tier = 'platinum'"}]}
""",
    )
    project.write("campaigns/clash_seg.yml", "campaign: clash__seg\nactivities:\n  vip: {type: build_audience}\n")
    expected = [
        'campaigns/clash_seg.yml:1:11: error: campaign name "clash__seg" may not contain "__" nor end with '
        '"_": generated model names join campaign, activity and output names with "__"'
    ]
    for command in ("validate", "compile"):
        code, _, err = run_in_process(project, monkeypatch, command)
        assert code == 2, err
        assert [line for line in err.splitlines() if ": error: " in line] == expected
    assert not (project.root / "models" / "campaigns").exists()


def test_a_generated_name_taken_by_a_model_of_the_project_is_refused_at_both(project, monkeypatch):
    with_data_model(project)
    project.write("models/marts/c__everyone.sql", "select 1 as id\n")
    project.write("campaigns/c.yml", "campaign: c\nactivities:\n  everyone: {type: build_audience}\n")
    code, _, err = run_in_process(project, monkeypatch, "compile", "c")
    assert code == 2, err
    message = (
        '"c__everyone" names two dbt nodes: the model of activity "everyone" (campaigns/c.yml:3:3) and '
        "the project's model models/marts/c__everyone.sql; rename one of them"
    )
    assert [line for line in err.splitlines() if ": error: " in line] == [
        f"campaigns/c.yml:3:3: error: {message}",
        f"models/marts/c__everyone.sql:1:1: error: {message}",
    ]
    assert not (project.root / "models" / "campaigns").exists()


def test_a_saved_audience_table_named_like_another_campaign_s_model_is_refused_at_both(project, monkeypatch):
    """A saved audience is the table audience__<name>: campaign `audience`'s activity `vip` is one too."""
    with_data_model(project)
    project.write(
        "campaigns/keep.yml",
        """\
campaign: keep
activities:
  everyone: {type: build_audience}
  save: {type: save_audience, input: everyone, name: vip}
""",
    )
    project.write("campaigns/audience.yml", "campaign: audience\nactivities:\n  vip: {type: build_audience}\n")
    code, _, err = run_in_process(project, monkeypatch, "validate", "audience")
    assert code == 2, err
    message = (
        '"audience__vip" names two dbt nodes: the model of activity "vip" (campaigns/audience.yml:3:3) and '
        'the table of the audience saved by activity "save" (campaigns/keep.yml:4:3); rename one of them'
    )
    assert [line for line in err.splitlines() if ": error: " in line] == [
        f"campaigns/audience.yml:3:3: error: {message}",
        f"campaigns/keep.yml:4:3: error: {message}",
    ]


def test_two_models_of_one_name_are_found_whatever_made_them(project, monkeypatch):
    """The whole-project check stands on its own: with names allowed to hold "__", both clashes of the
    trial are reported at both definitions."""
    from campaign_compiler.reader import Reader

    monkeypatch.setattr(Reader, "name_part", Reader.identifier)
    with_data_model(project)
    project.write(
        "campaigns/c.yml",
        """\
campaign: c
activities:
  everyone: {type: build_audience}
  seg: {type: split, input: everyone, subsets: [{name: vip}]}
  seg__vip: {type: build_audience}
""",
    )
    project.write("campaigns/d.yml", "campaign: c__seg\nactivities:\n  vip: {type: build_audience}\n")
    code, _, err = run_in_process(project, monkeypatch, "compile", "d")
    assert code == 2, err
    message = (
        '"c__seg__vip" names 3 dbt nodes: the model of activity "seg" (campaigns/c.yml:4:3), the model of '
        'activity "seg__vip" (campaigns/c.yml:5:3) and the model of activity "vip" (campaigns/d.yml:3:3); '
        "rename one of them"
    )
    assert [line for line in err.splitlines() if ": error: " in line] == [
        f"campaigns/c.yml:4:3: error: {message}",
        f"campaigns/c.yml:5:3: error: {message}",
        f"campaigns/d.yml:3:3: error: {message}",
    ]
    assert not (project.root / "models" / "campaigns").exists()


def test_unknown_campaign_name(project, monkeypatch):
    with_data_model(project)
    project.write("campaigns/summer.yml", "campaign: summer\nactivities:\n  a: {type: build_audience}\n")
    code, _, err = run_in_process(project, monkeypatch, "validate", "sumer")
    assert code == 2
    assert err.splitlines()[0] == 'error: no campaign named "sumer" in campaigns/ (did you mean "summer"?)'


DATA_MODEL_CASES = [
    (
        "unknown-column-type",
        "columns: {profile_id: integer, email: string}",
        'campaign_project.yml:6:43: error: type of column "email" must be one of text, integer, number, boolean, '
        'date, timestamp, not "string"',
    ),
    (
        "key-not-a-column",
        "key: id\n    columns: {profile_id: integer}",
        'campaign_project.yml:5:10: error: key "id" is not a declared column of "profiles"',
    ),
    (
        "unknown-entity-key",
        "columns: {profile_id: integer}\n    adresses: {email: email}",
        'campaign_project.yml:7:5: error: unknown key "adresses" in entity "profiles" (did you mean "addresses"?)',
    ),
    (
        "link-to-unknown-entity",
        "columns: {profile_id: integer}\n    links: {b: {entity: bookingz, on: {profile_id: profile_id}}}",
        'campaign_project.yml:7:25: error: link "b" targets unknown entity "bookingz"',
    ),
    (
        "address-not-a-column",
        "columns: {profile_id: integer}\n    addresses: {email: mail}",
        'campaign_project.yml:7:24: error: address column "mail" is not a declared column of "profiles"',
    ),
    (
        "consent-not-boolean",
        "columns: {profile_id: integer, email_opt_in: text}\n    consent: {email: email_opt_in}",
        'campaign_project.yml:7:22: error: consent column "email_opt_in" must be boolean, not text',
    ),
]


@pytest.mark.parametrize("entity_body, expected", [pytest.param(b, e, id=i) for i, b, e in DATA_MODEL_CASES])
def test_bad_data_model_is_rejected_with_its_location(project, monkeypatch, entity_body, expected):
    if not entity_body.startswith("key:"):
        entity_body = "key: profile_id\n    " + entity_body
    with_data_model(
        project,
        f"""\
version: 1
entities:
  profiles:
    model: profiles
    {entity_body}
""",
    )
    errors = errors_of(project, monkeypatch, "campaign: c\nactivities:\n  a: {type: build_audience}\n")
    assert errors == [expected]


def test_unknown_model_and_source_are_located(project, monkeypatch):
    with_data_model(
        project,
        """\
version: 1
entities:
  profiles:
    model: profilez
    key: profile_id
    columns: {profile_id: integer}
  bookings:
    source: crm.bookings
    key: booking_id
    columns: {booking_id: integer}
""",
    )
    errors = errors_of(
        project, monkeypatch, "campaign: c\ndimension: profiles\nactivities:\n  a: {type: build_audience}\n"
    )
    assert errors == [
        'campaign_project.yml:4:12: error: no dbt model or seed named "profilez" in the project (did you mean "profiles"?)',
        'campaign_project.yml:8:13: error: no dbt source named "crm" in the project',
    ]


# -- limits: hostile or runaway input is refused, located, quickly -----------------------------------
HEAD = "campaign: c\nactivities:\n  a:\n    type: build_audience\n"


def _laughs() -> str:
    """A few hundred bytes that stand for a billion values: each list repeats the previous one ten times."""
    lines = ["campaign: c", "x1: &a [x, x, x, x, x, x, x, x, x, x]"]
    for number, (anchor, alias) in enumerate(zip("bcdefghi", "abcdefgh"), start=2):
        lines.append(f"x{number}: &{anchor} [" + ", ".join([f"*{alias}"] * 10) + "]")
    return "\n".join(lines) + "\nactivities:\n  a: {type: build_audience}\n"


def _parentheses(depth: int) -> str:
    return HEAD + '    where: "' + "(" * depth + "country = 'FR'" + ")" * depth + '"\n'


# (id, file written, its text, the exact errors `campaign validate c` prints)
LIMIT_CASES = [
    # 12,353 values before x5's list, then 11,111 for each *d: the 8th passes 100,000
    (
        "billion-laughs",
        C,
        _laughs(),
        [f"{C}:6:37: error: this file holds more than 100,000 values once its aliases are expanded"],
    ),
    (
        "recursive-alias",
        C,
        "campaign: c\nactivities: &a\n  a: *a\n",
        [f"{C}:3:6: error: alias *a stands for a collection that contains it"],
    ),
    # the 51st level is the "[" of the 24th group (7 characters each) after '    where: '
    (
        "nested-condition-groups",
        C,
        HEAD + "    where: " + "{all: [" * 400 + "\"country = 'FR'\"" + "]}" * 400 + "\n",
        [f"{C}:5:{11 + 23 * 7 + 6 + 1}: error: values are nested more than 50 levels deep"],
    ),
    (
        "nested-yaml-lists",
        C,
        "campaign: c\nactivities: {a: {type: build_audience}}\ndescription: " + "[" * 500 + "]" * 500,
        [f"{C}:3:{14 + 49}: error: values are nested more than 50 levels deep"],
    ),
    (
        "nested-parentheses",
        C,
        _parentheses(3000),
        [f"{C}:5:{12 + 20 + 1}: error: condition has more than 20 nested parentheses"],
    ),
    (
        "nested-not",
        C,
        HEAD + '    where: "' + "not " * 3000 + "country = 'FR'\"\n",
        [f"{C}:5:12: error: condition is nested too deeply to be read"],
    ),
    (
        "big-campaign-file",
        C,
        HEAD + "description: '" + "x" * 2_000_000 + "'\n",
        [f"{C}:1:1: error: the file is 2,000,070 bytes; the compiler reads files of at most 1,000,000 bytes (1 MB)"],
    ),
    (
        "big-project-file",
        "campaign_project.yml",
        DATA_MODEL + "# " + "x" * 1_000_000 + "\n",
        [
            f"campaign_project.yml:1:1: error: the file is {len(DATA_MODEL) + 1_000_003:,} bytes; the compiler reads "
            "files of at most 1,000,000 bytes (1 MB)"
        ],
    ),
]


@pytest.mark.parametrize("file, text, expected", [pytest.param(f, t, e, id=i) for i, f, t, e in LIMIT_CASES])
def test_input_beyond_the_limits_is_refused_quickly_with_its_location(project, file, text, expected):
    with_data_model(project)
    if file == C:
        project.write(C, text)
    else:
        project.write(C, "campaign: c\nactivities:\n  a: {type: build_audience}\n")
        (project.root / file).write_text(text, encoding="utf-8")
    # a generous timeout: before these limits, some took a minute and gigabytes of memory
    result = run_cli("validate", "c", cwd=project.root, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert (result.code, result.errors) == (2, expected)


def test_a_file_beyond_the_limits_does_not_stop_the_other_campaigns(project):
    with_data_model(project)
    project.write("campaigns/ok.yml", "campaign: ok\nactivities:\n  a: {type: build_audience}\n")
    project.write("campaigns/laughs.yml", _laughs())
    project.write("campaigns/big.yml", HEAD + "description: '" + "x" * 2_000_000 + "'\n")
    result = run_cli("validate", "ok", cwd=project.root, timeout=60)
    assert (result.code, result.stdout) == (0, "ok: ok (1 activity, 1 working table)\n"), result.stderr[-2000:]


def test_nesting_within_the_limits_compiles(project, monkeypatch):
    """The deepest conditions the limits allow are read, checked and generated without trouble."""
    with_data_model(project)
    groups = 22  # 2 levels each, under the 6 levels of the campaign file and the activity
    condition = "(" * 20 + "country = 'FR'" + ")" * 20
    text = HEAD + "    where: " + "{any: [" * groups + f'"{condition}"' + "]}" * groups + "\n"
    project.write(C, text)
    result = run_cli("compile", "c", cwd=project.root, timeout=60)
    assert result.code == 0, result.stderr[-2000:]


# -- load_file: what compile or the warehouse could not load is refused by validate ----------------
def _late(line: bytes) -> bytes:
    """A CSV file that is fine for more than the first 64 KB, then has `line` (its line 5,002)."""
    return b"email,name\n" + b"anna@example.com,Anna\n" * 5000 + line + b"ben@example.com,Ben\n"


F = "data/f.csv"
LOAD_FILE_CASES = [
    (
        "field-too-long",
        b"email,name\nanna@example.com," + b"A" * 200_000 + b"\n",
        [f"{F}:2:1: error: invalid CSV: field larger than field limit (131072)"],
    ),
    (
        "not-utf8-late",
        _late(b"cleo@example.com,Cl\xe9o\n"),
        [f"{F}:5002:20: error: invalid UTF-8 (byte 0xe9): CSV files are read as UTF-8"],
    ),
    (
        "nul-character",
        _late(b"cleo@example.com,Cl\x00o\n"),
        [f"{F}:5002:20: error: NUL character: warehouses cannot store it in text"],
    ),
]


@pytest.mark.parametrize("content, expected", [pytest.param(c, e, id=i) for i, c, e in LOAD_FILE_CASES])
def test_a_csv_file_that_cannot_be_loaded_is_refused_with_its_line(project, monkeypatch, content, expected):
    with_data_model(project)
    (project.root / "data").mkdir()
    (project.root / F).write_bytes(content)
    text = f"campaign: c\nactivities:\n  f: {{type: load_file, path: {F}, columns: {{email: text, name: text}}}}\n"
    assert errors_of(project, monkeypatch, text) == expected
    code, _, err = run_in_process(project, monkeypatch, "compile", "c")
    assert code == 2 and "Traceback" not in err
    assert not (project.root / "seeds" / "campaigns").exists()


@pytest.mark.parametrize(
    "path, expected",
    [
        pytest.param('"data/f.csv\\0"', "path must not contain a NUL character", id="nul"),
        pytest.param("data/" + "f" * 5000 + ".csv", "path cannot be read: File name too long", id="name-too-long"),
    ],
)
def test_a_load_file_path_that_is_no_file_name_is_refused(project, monkeypatch, path, expected):
    with_data_model(project)
    text = f"campaign: c\nactivities:\n  f:\n    type: load_file\n    path: {path}\n    columns: {{email: text}}\n"
    assert errors_of(project, monkeypatch, text) == [f"{C}:5:11: error: {expected}"]


# -- numbers that end up in SQL: ranges every warehouse accepts ------------------------------------
BIG = 2_147_483_648  # one more than the largest integer of every warehouse
RANGE_CASES = [
    (
        "frequency-cap",
        f"""\
campaign: c
activities:
  a: {{type: build_audience}}
  m:
    type: email
    input: a
    template: templates/t.yml
    frequency_cap:
      max: {BIG}
      days: 100000000000
    control_group:
      percent: 5
      seed: {BIG}
""",
        [
            f"{C}:9:12: error: max must be at most 2147483647, not {BIG}",
            f"{C}:10:13: error: days must be at most 36500, not 100000000000",
            f"{C}:13:13: error: seed must be at most 2147483647, not {BIG}",
        ],
    ),
    (
        "split-limits",
        f"""\
campaign: c
activities:
  a: {{type: build_audience}}
  s:
    type: split
    input: a
    subsets:
      - name: many
        limit:
          count: {BIG}
      - name: fine
        limit:
          percent: 12.3456789
      - name: sample
        limit:
          percent: 10
          random: true
          seed: -{BIG}
""",
        [
            f"{C}:10:18: error: count must be at most 2147483647, not {BIG}",
            f"{C}:13:20: error: percent may have at most 6 decimals, not 12.3456789",
            f"{C}:18:17: error: seed must be at least -2147483647, not -{BIG}",
        ],
    ),
    (
        "dedup-and-rank",
        f"""\
campaign: c
activities:
  a: {{type: build_audience}}
  d:
    type: deduplication
    input: a
    keys: [email]
    count: {BIG}
  e:
    type: enrichment
    input: a
    add:
      booking:
        link: bookings
        order_by: amount
        rank: {BIG}
        column: booking_id
""",
        [
            f"{C}:8:12: error: count must be at most 2147483647, not {BIG}",
            f"{C}:16:15: error: rank must be at most 2147483647, not {BIG}",
        ],
    ),
    (
        "integer-too-long-to-read",
        "campaign: c\nactivities:\n  a: {type: build_audience}\n  d:\n"
        "    type: deduplication\n    input: a\n    keys: [email]\n    count: " + "9" * 5000 + "\n",
        [f"{C}:8:12: error: number of more than 4,300 digits"],
    ),
]


@pytest.mark.parametrize("text, expected", [pytest.param(t, e, id=i) for i, t, e in RANGE_CASES])
def test_numbers_beyond_what_every_warehouse_accepts_are_refused(project, monkeypatch, text, expected):
    with_data_model(project)
    project.write("templates/t.yml", 'subject: "Hi"\ntext: "x"\n')
    assert errors_of(project, monkeypatch, text) == expected


@pytest.mark.slow
def test_the_largest_numbers_accepted_build_on_every_warehouse(project, target):
    project.write("campaign_project.yml", DATA_MODEL)
    project.write("seeds/profiles.csv", PROFILES_CSV + "4,Dan,dan@example.com,,DE,gold,true,2023-01-01 00:00:00\n")
    project.write(
        "seeds/bookings.csv",
        """\
booking_id,profile_id,hotel_id,status,amount,checkin_date
10,1,1,confirmed,100.50,2024-01-01
11,1,1,confirmed,200.00,2024-02-01
""",
    )
    project.write("seeds/hotels.csv", "hotel_id,city\n1,Paris\n")
    project.write("templates/t.yml", 'subject: "Hi {{ first_name }}"\ntext: "x"\n')
    project.write(
        "campaigns/big.yml",
        """\
campaign: big
activities:
  everyone: {type: build_audience}
  ranked:
    type: enrichment
    input: everyone
    add:
      far_booking: {link: bookings, order_by: amount, rank: 2147483647, column: booking_id}
  dedup: {type: deduplication, input: ranked, keys: [country], count: 2147483647}
  parts:
    type: split
    input: dedup
    subsets:
      - {name: counted, where: "country = 'FR'", limit: {count: 2147483647}}
      - {name: seeded, where: "country = 'DE'", limit: {percent: 99.999999, random: true, seed: -2147483647}}
    complement: rest
  mail:
    type: email
    input: parts.counted
    template: templates/t.yml
    frequency_cap: {max: 2147483647, days: 36500}
    control_group: {percent: 0.000001, seed: 2147483647}
""",
    )
    result = project.count("big", target)
    assert {k: v for k, v in result["counts"].items() if not k.startswith("mail")} == {
        "everyone": 4,
        "ranked": 4,
        "dedup": 4,
        "parts.counted": 2,
        "parts.seeded": 1,
        "parts.rest": 1,
    }
    assert result["channels"]["mail"] == {
        "channel": "email",
        "messages": 1,
        "recipients": 1,
        "excluded": {"no_address": 1},
    }
