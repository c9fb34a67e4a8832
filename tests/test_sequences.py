"""Sequences against the real server, on both backends: saving steps, preview per lead, the
missing-variable check, and bad input."""

from __future__ import annotations

import time

import pytest

from tests.support import query
from tests.test_templates import GUIDE_TEMPLATE

JORDAN = {
    "email": "prospect@company.com",
    "first_name": "Jordan",
    "company_name": "TechCo",
    "custom_fields": {
        "job_title": "CTO",
        "industry": "Healthcare",
        "pain_point": "manual outreach processes",
        "mutual_connection": "Sarah from YC",
        "funding_round": "Series B",
    },
}
ALEX = {
    "email": "alex@acmecorp.com",
    "first_name": "Alex",
    "last_name": "Chen",
    "company_name": "Acme Corp",
    "location": "San Francisco, CA",
    "custom_fields": {
        "job_title": "VP of Sales",
        "industry": "B2B SaaS",
        "company_size": "50-200",
        "linkedin_url": "https://linkedin.com/in/alexchen",
    },
}
JORDAN_BODY = (
    "Hi Jordan,\n\n"
    "I heard TechCo just closed its Series B — congrats!\n\n"
    "Given your role as CTO, I imagine manual outreach processes is top of mind.\n"
    "Sarah from YC suggested I reach out..."
)


def step(number: int, body: str, subject: str = "", delay: int | None = None, **extra) -> dict:
    return {
        "seq_number": number,
        "seq_delay_details": {
            "delay_in_days": (0 if number == 1 else 3) if delay is None else delay
        },
        "subject": subject,
        "email_body": body,
        **extra,
    }


def lead_ids(api, campaign: int) -> dict[str, int]:
    leads = api.get(f"/campaigns/{campaign}/leads", params={"limit": 1000}).json()["leads"]
    return {lead["email"]: lead["id"] for lead in leads}


def save(api, campaign: int, steps: list[dict]):
    return api.post(f"/campaigns/{campaign}/sequences", json={"sequences": steps})


def guide_campaign(api) -> tuple[int, dict[str, int]]:
    campaign = api.campaign()
    api.import_leads(campaign, [JORDAN, ALEX])
    steps = [
        step(
            1,
            GUIDE_TEMPLATE,
            subject="Congrats on the {{ funding_round | default: 'news' }}, {{first_name}}",
            seq_variants=[
                {"variant_label": "B", "subject": "{Quick|Short} question", "email_body": "{{x}}"}
            ],
        ),
        step(2, "Following up, {{ first_name }}.", delay=2),
    ]
    response = save(api, campaign, steps)
    assert response.status_code == 200, response.text
    return campaign, lead_ids(api, campaign)


def test_steps_round_trip_in_smartleads_shape(api):
    campaign, _ = guide_campaign(api)
    body = api.get(f"/campaigns/{campaign}/sequences").json()
    assert body["campaign_id"] == campaign
    first, second = body["sequences"]
    assert first == {
        "seq_number": 1,
        "seq_delay_details": {"delay_in_days": 0},
        "subject": "Congrats on the {{ funding_round | default: 'news' }}, {{first_name}}",
        "email_body": GUIDE_TEMPLATE,
        "seq_variants": [
            {
                "variant_label": "B",
                "subject": "{Quick|Short} question",
                "email_body": "{{x}}",
                "variant_distribution_percentage": None,
            }
        ],
        "variant_distribution_type": "MANUAL_EQUAL",
        "variant_distribution_percentage": None,
    }
    assert second["seq_number"] == 2 and second["seq_delay_details"] == {"delay_in_days": 2}
    assert second["subject"] == "" and second["seq_variants"] == []
    # What GET answers can be sent back as it is, whole or its steps, to this campaign or
    # another; an empty list clears the steps.
    again = save(api, campaign, body["sequences"])
    assert again.status_code == 200 and again.json()["sequences"] == body["sequences"]
    whole = api.post(f"/campaigns/{campaign}/sequences", json=body)
    assert whole.status_code == 200 and whole.json()["sequences"] == body["sequences"]
    copy = api.campaign("copy")
    copied = api.post(f"/campaigns/{copy}/sequences", json=body)
    assert copied.status_code == 200, copied.text
    assert api.get(f"/campaigns/{copy}/sequences").json() == {**body, "campaign_id": copy}
    assert save(api, campaign, []).json()["sequences"] == []
    assert api.get(f"/campaigns/{campaign}/sequences").json()["sequences"] == []


def test_preview_renders_the_guide_template_for_jordan(api):
    campaign, ids = guide_campaign(api)
    response = api.get(f"/campaigns/{campaign}/leads/{ids['prospect@company.com']}/preview")
    assert response.status_code == 200, response.text
    preview = response.json()
    first, second = preview["steps"]
    main = first["variants"][0]
    assert main == {
        "variant_label": "A",
        "subject": "Congrats on the Series B, Jordan",
        "email_body": JORDAN_BODY,
        "missing": [],
        "error": None,
    }
    variant_b = first["variants"][1]
    assert variant_b["subject"] is None and variant_b["missing"] == ["x"]
    assert preview["ok"] is False
    # The follow-up replies in the thread of the step-1 email the lead is sent.
    sent = first["sent_variant"]
    assert sent in ("A", "B")
    follow_up = second["variants"][0]
    if sent == "A":
        assert follow_up["subject"] == "Re: Congrats on the Series B, Jordan"
        assert follow_up["email_body"] == "Following up, Jordan."
    else:
        assert follow_up["subject"] in ("Re: Quick question", "Re: Short question")
    assert second["delay_in_days"] == 2


def test_a_follow_up_subject_that_renders_to_nothing_replies_in_the_thread(api):
    campaign = api.campaign()
    api.import_leads(campaign, [JORDAN, {"email": "nobody@company.com", "first_name": "No"}])
    steps = [
        step(1, "Hi {{ first_name }}", subject="Hello {{ first_name }}"),
        step(2, "Again", subject="{% if company_name %}News for {{ company_name }}{% endif %}"),
    ]
    assert save(api, campaign, steps).status_code == 200
    ids = lead_ids(api, campaign)
    subjects = {}
    for email, lead in ids.items():
        preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        subjects[email] = preview["steps"][1]["variants"][0]["subject"]
    assert subjects == {
        "prospect@company.com": "News for TechCo",
        "nobody@company.com": "Re: Hello No",
    }


# SmartLead's own example of saving a sequence: step 1 with a day's delay, its variants
# (labelled from "A") in seq_variants with no body of the step's own, SmartLead's ids and its
# A/B-test settings.
SMARTLEAD_SEQUENCE = {
    "sequences": [
        {
            "id": 8494,
            "seq_number": 1,
            "seq_delay_details": {"delay_in_days": 1},
            "variant_distribution_type": "MANUAL_EQUAL",
            "lead_distribution_percentage": 40,
            "winning_metric_property": "OPEN_RATE",
            "seq_variants": [
                {
                    "subject": "Subject",
                    "email_body": "<p>Hi<br><br>How are you?<br><br>Hope you're doing good</p>",
                    "variant_label": "A",
                    "id": 2535,
                    "variant_distribution_percentage": 20,
                },
                {
                    "subject": "Ema a",
                    "email_body": "<p>This is a new game a</p>",
                    "variant_label": "B",
                    "id": 2536,
                    "variant_distribution_percentage": 60,
                },
            ],
        },
        {
            "id": 8495,
            "seq_number": 2,
            "seq_type": "EMAIL",
            "seq_delay_details": {"delay_in_days": 1},
            "subject": "",
            "email_body": "<p>Bye</p>",
        },
    ]
}


def test_smartleads_own_sequence_body_is_taken(api):
    campaign = api.campaign()
    response = api.post(f"/campaigns/{campaign}/sequences", json=SMARTLEAD_SEQUENCE)
    assert response.status_code == 200, response.text
    first, second = api.get(f"/campaigns/{campaign}/sequences").json()["sequences"]
    # Step 1 goes first whatever delay it names; variant A is the step's own.
    assert first["seq_delay_details"] == {"delay_in_days": 0}
    assert (first["subject"], first["email_body"]) == (
        "Subject",
        SMARTLEAD_SEQUENCE["sequences"][0]["seq_variants"][0]["email_body"],
    )
    assert [v["variant_label"] for v in first["seq_variants"]] == ["B"]
    # MANUAL_EQUAL: the percentages it also sends are not used.
    assert first["variant_distribution_type"] == "MANUAL_EQUAL"
    assert first["seq_variants"][0]["variant_distribution_percentage"] is None
    assert second["seq_delay_details"] == {"delay_in_days": 1} and second["subject"] == ""


def test_a_step_split_by_percentage(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": f"p{i}@split.com"} for i in range(40)])
    split = step(
        1,
        "A body",
        subject="A subject",
        variant_distribution_type="MANUAL_PERCENTAGE",
        variant_distribution_percentage=0,
        seq_variants=[
            {
                "variant_label": "B",
                "subject": "B subject",
                "email_body": "B body",
                "variant_distribution_percentage": 100,
            },
            {"variant_label": "C", "subject": "C", "email_body": "C body"},
        ],
    )
    response = save(api, campaign, [split])
    assert response.status_code == 200, response.text
    (saved,) = api.get(f"/campaigns/{campaign}/sequences").json()["sequences"]
    assert saved["variant_distribution_type"] == "MANUAL_PERCENTAGE"
    assert saved["variant_distribution_percentage"] == 0
    shares = [v["variant_distribution_percentage"] for v in saved["seq_variants"]]
    assert shares == [100, 0]  # a variant left without one gets none
    # What GET answers saves back the same.
    assert save(api, campaign, [saved]).json()["sequences"] == [saved]
    # A variant at 0% is never sent: every lead gets B.
    for lead in lead_ids(api, campaign).values():
        preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        assert preview["steps"][0]["sent_variant"] == "B"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        # Percentages that do not add up to 100.
        (
            {
                "variant_distribution_type": "MANUAL_PERCENTAGE",
                "variant_distribution_percentage": 60,
            },
            "invalid_distribution",
        ),
        # No body of its own and no variant "A".
        ({"email_body": None}, "missing_email_body"),
        ({"variant_distribution_type": "SOMETIMES"}, "invalid_request"),
        ({"winning_metric_property": "LUCK"}, "invalid_request"),
    ],
)
def test_a_step_that_cannot_be_split_is_refused(api, change, code):
    campaign = api.campaign()
    given = step(
        1,
        "A body",
        subject="A subject",
        seq_variants=[
            {
                "variant_label": "B",
                "subject": "B",
                "email_body": "B body",
                "variant_distribution_percentage": 30,
            }
        ],
    )
    response = save(api, campaign, [{**given, **change}])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert api.get(f"/campaigns/{campaign}/sequences").json()["sequences"] == []


def test_a_first_subject_or_a_body_that_renders_to_nothing_is_an_error_for_that_lead(api):
    campaign = api.campaign()
    api.import_leads(
        campaign,
        [JORDAN, {"email": "nobody@company.com", "first_name": "No"}],
    )
    steps = [
        step(
            1,
            "Hi {{ first_name }}",
            subject="{% if company_name %}News for {{ company_name }}{% endif %}",
        ),
        step(2, "{% if company_name %}More on {{ company_name }}{% endif %}", subject=""),
    ]
    assert save(api, campaign, steps).status_code == 200
    ids = lead_ids(api, campaign)
    previews = {
        email: api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()["steps"]
        for email, lead in ids.items()
    }
    first, second = (s["variants"][0] for s in previews["prospect@company.com"])
    assert first["subject"] == "News for TechCo" and second["email_body"] == "More on TechCo"
    first, second = (s["variants"][0] for s in previews["nobody@company.com"])
    assert first["subject"] is None and first["error"] == "the subject renders to nothing"
    assert second["email_body"] is None and second["error"] == "the body renders to nothing"


def test_preview_reports_what_alex_lacks(api):
    campaign, ids = guide_campaign(api)
    preview = api.get(f"/campaigns/{campaign}/leads/{ids['alex@acmecorp.com']}/preview").json()
    main = preview["steps"][0]["variants"][0]
    assert main["subject"] is None and main["email_body"] is None
    assert main["missing"] == ["funding_round", "mutual_connection", "pain_point"]


def test_preview_is_stable_and_spintax_varies_across_leads(api):
    campaign = api.campaign()
    api.import_leads(
        campaign, [{"email": f"s{i}@spin.com", "first_name": f"N{i}"} for i in range(30)]
    )
    assert save(api, campaign, [step(1, "{Hi|Hello|Hey} {{first_name}}", "{A|B} subject")])
    ids = lead_ids(api, campaign)
    bodies = {}
    for email, lead in ids.items():
        one = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        two = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        assert one == two
        bodies[email] = one["steps"][0]["variants"][0]["email_body"]
    assert {b.split()[0] for b in bodies.values()} == {"Hi", "Hello", "Hey"}


def test_case_matters(api):
    campaign = api.campaign()
    api.import_leads(campaign, [JORDAN])
    assert save(api, campaign, [step(1, "{{Job_Title}} / {{job_title}}", "s")]).status_code == 200
    lead = lead_ids(api, campaign)["prospect@company.com"]
    variant = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()["steps"][0]["variants"][
        0
    ]
    assert variant["missing"] == ["Job_Title"]
    check = api.get(f"/campaigns/{campaign}/sequences/check").json()
    by_name = {v["name"]: v for v in check["variables"]}
    assert by_name["Job_Title"]["leads_missing"] == 1
    assert by_name["job_title"]["leads_missing"] == 0


def test_preview_of_a_lead_outside_the_campaign_is_404(api):
    campaign, _ = guide_campaign(api)
    other = api.campaign("other")
    api.import_leads(other, [{"email": "elsewhere@x.com"}])
    outsider = lead_ids(api, other)["elsewhere@x.com"]
    response = api.get(f"/campaigns/{campaign}/leads/{outsider}/preview")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert api.get(f"/campaigns/{campaign}/leads/999999/preview").status_code == 404


def test_check_counts_missing_leads_in_the_database(api):
    campaign, ids = guide_campaign(api)
    check = api.get(f"/campaigns/{campaign}/sequences/check")
    assert check.status_code == 200, check.text
    report = check.json()
    assert report["total_leads"] == 2 and report["errors"] == [] and report["ok"] is False
    by_name = {v["name"]: v for v in report["variables"]}
    alex = ids["alex@acmecorp.com"]
    for name in ("funding_round", "mutual_connection", "pain_point"):
        assert by_name[name]["leads_missing"] == 1
        assert by_name[name]["sample_lead_ids"] == [alex]
    assert by_name["first_name"]["leads_missing"] == 0
    assert by_name["x"]["leads_missing"] == 2
    assert sorted(by_name["x"]["sample_lead_ids"]) == sorted(ids.values())
    # funding_round is used with a default in the subject but bare in the body: counted.
    assert by_name["funding_round"]["required"] is True


def test_check_agrees_with_the_preview_on_odd_keys_and_values(api):
    keys = ["plain", "with.dot", 'quo"te', "back\\slash", "sp ace", "Üñí", "[0]", "$x"]
    leads = []
    for i in range(12):
        custom: dict = {}
        for n, key in enumerate(keys):
            choice = (i + n) % 6
            if choice == 0:
                custom[key] = "value"
            elif choice == 1:
                custom[key] = ""
            elif choice == 2:
                custom[key] = " \t\n"
            elif choice == 3:
                custom[key] = 0
            elif choice == 4:
                custom[key] = False
        leads.append(
            {
                "email": f"odd{i}@keys.com",
                "first_name": ["Ann", "", None, " "][i % 4],
                "custom_fields": custom | ({"first_name": "Fallback"} if i % 3 == 0 else {}),
            }
        )
    campaign = api.campaign()
    api.import_leads(campaign, leads)
    body = "".join(
        f"{{{{ [{key!r}] }}}}" if "'" not in key else f'{{{{ ["{key}"] }}}}' for key in keys
    )
    body = body.replace("'back\\\\slash'", "'back\\slash'")
    response = save(api, campaign, [step(1, "{{ first_name }} " + body, "s")])
    assert response.status_code == 200, response.text
    report = api.get(f"/campaigns/{campaign}/sequences/check").json()
    counted = {v["name"]: v["leads_missing"] for v in report["variables"]}
    expected = dict.fromkeys(counted, 0)
    for lead in lead_ids(api, campaign).values():
        preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        for name in preview["steps"][0]["variants"][0]["missing"]:
            expected[name] += 1
    assert counted == expected
    assert set(counted) == {"first_name", *keys}
    assert sum(counted.values()) > 0


def test_check_ignores_defaulted_and_guarded_variables(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "g@x.com"}])
    body = "{{ a | default: 'x' }}{% if b %}{{ b }}{% endif %}{{ c }}"
    assert save(api, campaign, [step(1, body, "s")]).status_code == 200
    report = api.get(f"/campaigns/{campaign}/sequences/check").json()
    assert [(v["name"], v["required"], v["leads_missing"]) for v in report["variables"]] == [
        ("a", False, 0),
        ("b", False, 0),
        ("c", True, 1),
    ]


def test_check_and_preview_agree_on_guards_against_blank(api):
    values = [None, "", "  ", "a", 0, False, "\u00a0"]
    leads = []
    for i, x in enumerate(values):
        for j, y in enumerate(values):
            custom = {k: v for k, v in (("x", x), ("y", y)) if v is not None}
            leads.append({"email": f"g{i}{j}@blank.com", "custom_fields": custom})
    campaign = api.campaign()
    api.import_leads(campaign, leads)
    guards = [
        "{% if x != empty %}{{ x }}{% endif %}",
        '{% if x != "" %}{{ x }}{% endif %}',
        "{% if x != blank and y != blank %}{{ x }}{{ y }}{% endif %}",
    ]
    variants = [
        {"variant_label": f"V{n}", "subject": "s", "email_body": body}
        for n, body in enumerate(guards)
    ]
    body = "{% if x != blank %}{{ x }}{% endif %}"
    assert save(api, campaign, [step(1, body, "s", seq_variants=variants)]).status_code == 200
    report = api.get(f"/campaigns/{campaign}/sequences/check").json()
    counted = {v["name"]: (v["required"], v["leads_missing"]) for v in report["variables"]}
    previewed = dict.fromkeys(counted, 0)
    for lead in lead_ids(api, campaign).values():
        preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
        missing = {n for v in preview["steps"][0]["variants"] for n in v["missing"]}
        for name in missing:
            previewed[name] += 1
    assert counted == {"x": (False, 0), "y": (False, 0)}
    assert previewed == {"x": 0, "y": 0}
    assert report["ok"] is True


def test_a_keyword_written_out_is_refused_with_its_place(api):
    campaign = api.campaign()
    error = _error(save(api, campaign, [step(1, "Hi\n{{ empty }}", "s")]), "template_syntax_error")
    assert error["message"].startswith("Step 1, email_body: line 2, column 4:")
    assert '{{ ["empty"] }}' in error["message"]
    assert (error["details"][0]["line"], error["details"][0]["column"]) == (2, 4)
    for word in ("blank", "nil", "null", "true", "false"):
        _error(save(api, campaign, [step(1, "x", f"{{{{ {word} }}}}")]), "template_syntax_error")
    body = '{% if x == empty %}{{ ["empty"] }}{% endif %}'
    assert save(api, campaign, [step(1, body, "s")]).status_code == 200


def test_a_filter_given_the_wrong_arguments_is_refused_with_its_place(api):
    campaign = api.campaign()
    response = save(api, campaign, [step(1, "{{ first_name | upcase: 1, 2 }}", "s")])
    error = _error(response, "template_syntax_error")
    assert error["message"] == (
        "Step 1, email_body: line 1, column 17: filter 'upcase' takes no arguments, not 2."
    )
    response = save(api, campaign, [step(1, "x", "{{ first_name | split }}")])
    assert "filter 'split' takes 1 argument" in _error(response, "template_syntax_error")["message"]
    assert api.get(f"/campaigns/{campaign}/sequences").json()["sequences"] == []


def test_strip_html_on_unclosed_tags_previews_quickly(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "html@x.com"}])
    body = '{{ "' + ">" + "<a " * 33_000 + '" | strip_html | size }}'
    assert save(api, campaign, [step(1, body, "s")]).status_code == 200
    lead = lead_ids(api, campaign)["html@x.com"]
    started = time.perf_counter()
    preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
    assert time.perf_counter() - started < 2
    assert preview["steps"][0]["variants"][0]["email_body"] == "99001"


def test_check_of_a_campaign_without_steps(api):
    campaign = api.campaign()
    report = api.get(f"/campaigns/{campaign}/sequences/check").json()
    assert report == {
        "campaign_id": campaign,
        "ok": True,
        "total_leads": 0,
        "errors": [],
        "variables": [],
    }


def _error(response, code: str) -> dict:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error


def test_bad_steps_are_refused_and_store_nothing(api):
    campaign, _ = guide_campaign(api)
    before = api.get(f"/campaigns/{campaign}/sequences").json()
    ok_body = "Hi"
    _error(save(api, campaign, [step(1, ok_body, "s"), step(3, ok_body)]), "invalid_sequence")
    _error(save(api, campaign, [step(1, ok_body, "s"), step(1, ok_body, "t")]), "invalid_sequence")
    _error(save(api, campaign, [step(2, ok_body, "s")]), "invalid_sequence")
    _error(
        save(api, campaign, [step(1, ok_body, "s"), step(2, ok_body, delay=366)]), "invalid_request"
    )
    _error(
        save(api, campaign, [step(1, ok_body, "s"), step(2, ok_body, delay=-1)]), "invalid_request"
    )
    bad_type = step(1, ok_body, "s")
    bad_type["seq_delay_details"] = {"delay_in_days": "1"}
    _error(save(api, campaign, [bad_type]), "invalid_request")
    _error(save(api, campaign, [step(1, ok_body, "")]), "missing_subject")
    _error(save(api, campaign, [step(1, "  ", "s")]), "empty_body")
    _error(save(api, campaign, [step(1, ok_body, "s", delay_days=1)]), "invalid_request")
    twice = [{"variant_label": "B", "email_body": "x"}, {"variant_label": "B", "email_body": "y"}]
    _error(save(api, campaign, [step(1, ok_body, "s", seq_variants=twice)]), "invalid_variant")
    main_label = [{"variant_label": "A", "subject": "s", "email_body": "x"}]
    _error(save(api, campaign, [step(1, ok_body, "s", seq_variants=main_label)]), "invalid_variant")
    _error(save(api, campaign, [step(n, ok_body, "s") for n in range(1, 22)]), "invalid_request")
    _error(save(api, campaign, [step(1, "x" * 100_001, "s")]), "invalid_request")
    assert api.get(f"/campaigns/{campaign}/sequences").json() == before


def test_a_syntax_error_names_step_variant_field_line_and_column(api):
    campaign = api.campaign()
    variants = [{"variant_label": "B", "subject": "ok", "email_body": "Hi\n  {{ name | }}"}]
    response = save(api, campaign, [step(1, "fine", "s"), step(2, "fine", seq_variants=variants)])
    error = _error(response, "template_syntax_error")
    assert error["message"].startswith("Step 2, variant B, email_body: line 2, column 3:")
    assert error["details"] == [
        {
            "seq_number": 2,
            "variant_label": "B",
            "field": "email_body",
            "message": error["details"][0]["message"],
            "line": 2,
            "column": 3,
        }
    ]
    error = _error(save(api, campaign, [step(1, "x", "{% if a %}hi")]), "template_syntax_error")
    assert error["message"].startswith("Step 1, subject: line 1, column 4:")
    assert error["details"][0]["variant_label"] is None
    assert api.get(f"/campaigns/{campaign}/sequences").json()["sequences"] == []


def test_hostile_templates_are_refused_quickly(api):
    campaign = api.campaign()
    hostile = [
        "{% for i in (1..1000000000) %}{% for j in (1..1000000000) %}x{% endfor %}{% endfor %}",
        "{% include 'secrets' %}",
        "{% render '/etc/passwd' %}",
        "{{ lead.__class__ }}",
        "{% if a %}" * 200 + "{% endif %}" * 200,
        "{% assign s = 'x' %}{{ s }}",
    ]
    for body in hostile:
        started = time.perf_counter()
        _error(save(api, campaign, [step(1, body, "s")]), "template_syntax_error")
        assert time.perf_counter() - started < 5


def test_a_blowup_at_render_time_is_an_error_in_the_preview(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "big@x.com", "custom_fields": {"a": "A" * 5000}}])
    body = "{{ a | split: '' | join: a }}"
    assert save(api, campaign, [step(1, body, "s")]).status_code == 200
    lead = lead_ids(api, campaign)["big@x.com"]
    started = time.perf_counter()
    preview = api.get(f"/campaigns/{campaign}/leads/{lead}/preview").json()
    assert time.perf_counter() - started < 5
    variant = preview["steps"][0]["variants"][0]
    assert variant["email_body"] is None and "longer than" in variant["error"]
    assert preview["ok"] is False


def test_steps_are_stored_per_account(api, server):
    campaign, _ = guide_campaign(api)
    rows = query(
        server.database_url,
        "SELECT account_id, seq_number, variant_label, delay_in_days FROM sequence_steps "
        "WHERE campaign_id = :c ORDER BY seq_number, id",
        c=campaign,
    )
    assert [r[1:] for r in rows] == [(1, "A", 0), (1, "B", 0), (2, "A", 2)]
    assert len({r[0] for r in rows}) == 1
