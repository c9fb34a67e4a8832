"""The template engine on its own: rendering, missing variables, spintax, limits and hostile
templates. No database."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openlead.sequences import templates as t

GUIDE_TEMPLATE = (
    "Hi {{first_name}},\n\n"
    "I heard {{company_name}} just closed its {{funding_round}} — congrats!\n\n"
    "Given your role as {{job_title}}, I imagine {{pain_point}} is top of mind.\n"
    "{{mutual_connection}} suggested I reach out..."
)
JORDAN = t.lead_values(
    {"email": "prospect@company.com", "first_name": "Jordan", "company_name": "TechCo"},
    {
        "job_title": "CTO",
        "industry": "Healthcare",
        "pain_point": "manual outreach processes",
        "mutual_connection": "Sarah from YC",
        "funding_round": "Series B",
    },
)
ALEX = t.lead_values(
    {
        "email": "alex@acmecorp.com",
        "first_name": "Alex",
        "last_name": "Chen",
        "company_name": "Acme Corp",
        "location": "San Francisco, CA",
    },
    {
        "job_title": "VP of Sales",
        "industry": "B2B SaaS",
        "company_size": "50-200",
        "linkedin_url": "https://linkedin.com/in/alexchen",
    },
)


def render(source: str, values: dict | None = None, lead_id: int = 1) -> t.Rendered:
    return t.render(t.compile_template(source), values or {}, lead_id, 1, "A")


def syntax_error(source: str) -> t.TemplateSyntaxError:
    with pytest.raises(t.TemplateSyntaxError) as caught:
        t.compile_template(source)
    return caught.value


def test_the_guide_template_renders_for_jordan():
    assert render(GUIDE_TEMPLATE, JORDAN).text == (
        "Hi Jordan,\n\n"
        "I heard TechCo just closed its Series B — congrats!\n\n"
        "Given your role as CTO, I imagine manual outreach processes is top of mind.\n"
        "Sarah from YC suggested I reach out..."
    )


def test_alex_misses_what_he_lacks_and_gets_no_half_message():
    rendered = render(GUIDE_TEMPLATE, ALEX)
    assert rendered.text is None
    assert rendered.missing == ("funding_round", "mutual_connection", "pain_point")


def test_the_guide_template_variables():
    compiled = t.compile_template(GUIDE_TEMPLATE)
    expected = {
        "first_name",
        "company_name",
        "funding_round",
        "job_title",
        "pain_point",
        "mutual_connection",
    }
    assert compiled.variables == compiled.required == expected


def test_names_are_exact_and_case_sensitive():
    assert render("{{Job_Title}}", JORDAN).missing == ("Job_Title",)
    assert render("{{job_title}}", JORDAN).text == "CTO"
    assert render('{{ ["Job Title"] }}', {"Job Title": "CEO"}).text == "CEO"


def test_empty_and_blank_values_are_missing():
    values = t.lead_values(
        {"email": "a@b.com", "first_name": "", "last_name": " \t\n"},
        {"nickname": None, "zero": 0, "no": False, "nbsp": "\u00a0"},
    )
    assert set(values) == {"email", "zero", "no", "nbsp"}
    assert render("{{first_name}}{{last_name}}{{nickname}}", values).missing == (
        "first_name",
        "last_name",
        "nickname",
    )
    assert render("{{zero}} {{no}}", values).text == "0 false"


def test_a_custom_field_shows_through_an_empty_standard_field():
    values = t.lead_values({"first_name": None}, {"first_name": "Sam"})
    assert render("{{first_name}}", values).text == "Sam"
    values = t.lead_values({"first_name": "Al"}, {"first_name": "Sam"})
    assert render("{{first_name}}", values).text == "Al"


def test_default_and_conditions_are_not_missing():
    assert render('Hi {{ first_name | default: "there" }}', {}).text == "Hi there"
    assert render('Hi {{ first_name | upcase | default: "there" }}', {}).text == "Hi there"
    assert render("{% if company %} at {{company}}{% endif %}!", {}).text == "!"
    assert render("{% if company %} at {{company}}{% endif %}!", {"company": "X"}).text == " at X!"
    assert render("{% unless company %}no{% else %}{{company}}{% endunless %}", {}).text == "no"
    assert render("{% if a %}{{ b }}{% else %}ok{% endif %}", {}).text == "ok"
    # A branch that is taken reports what it writes.
    assert render("{% if a %}{{ b }}{% endif %}", {"a": "1"}).missing == ("b",)
    # A filter passes a missing value on: never a half-filled message.
    assert render("{{ first_name | upcase }}", {}).missing == ("first_name",)
    assert render('{{ "Hi " | append: name }}', {}).missing == ("name",)


def test_static_required_set_follows_guards_and_defaults():
    compiled = t.compile_template(
        "{{ a }}{{ b | default: 'x' }}{% if c %}{{ c }}{% endif %}"
        "{% if d and e %}{{ d }}{{ e }}{{ f }}{% endif %}"
        "{% unless g %}{% else %}{{ g }}{% endunless %}"
        "{% if h != blank %}{{ h }}{% endif %}{% case k %}{% when 'x' %}{{ m }}{% endcase %}"
    )
    assert compiled.variables == set("abcdefghkm")
    assert compiled.required == {"a", "f", "m"}


EMPTY_GUARDS = [
    "{% if x != blank %}{{ x }}{% endif %}",
    "{% if x != empty %}{{ x }}{% endif %}",
    '{% if x != "" %}{{ x }}{% endif %}',
    "{% if blank != x %}{{ x }}{% endif %}",
    "{% if x != blank and y != blank %}{{ x }}{{ y }}{% endif %}",
    "{% if x != blank %}{{ x }}{% elsif y != empty %}{{ y }}{% endif %}",
]
GUARDED_VALUES = [None, "", "  ", "a", 0, False, "\u00a0"]


@pytest.mark.parametrize("source", EMPTY_GUARDS, ids=range(len(EMPTY_GUARDS)))
def test_a_guard_against_blank_holds_when_rendering(source):
    compiled = t.compile_template(source)
    assert compiled.required == set()
    for x in GUARDED_VALUES:
        for y in GUARDED_VALUES:
            values = t.lead_values({}, {"x": x, "y": y})
            assert t.render(compiled, values, 1, 1, "A").missing == (), (x, y)


def test_a_missing_value_is_blank_empty_and_the_empty_text():
    for test in ("x == blank", "x == empty", 'x == ""', "x == nil", "blank == x"):
        assert render(f"{{% if {test} %}}yes{{% endif %}}", {}).text == "yes", test
    assert render("{% if x == blank %}yes{% endif %}", {"x": "a"}).text == ""
    assert render("{% if x == empty %}yes{% endif %}", {"x": 0}).text == ""
    case = "{% case x %}{% when blank %}none{% when 'a' %}A{% else %}{{ x }}{% endcase %}"
    assert [render(case, {"x": v} if v else {}).text for v in (None, "a", "b")] == [
        "none",
        "A",
        "b",
    ]


@pytest.mark.parametrize("word", ["empty", "blank", "nil", "null", "true", "false"])
def test_writing_out_a_keyword_is_a_syntax_error(word):
    error = syntax_error(f"Hi\n  {{{{ {word} }}}}")
    assert (error.line, error.column) == (2, 6)
    assert f'{{{{ ["{word}"] }}}}' in error.message
    assert syntax_error(f"{{{{ {word} | upcase }}}}").column == 4
    assert render(f'{{{{ ["{word}"] }}}}', {word: "V"}).text == "V"


def test_keywords_in_conditions_and_arguments_are_fine():
    assert render("{% if x == empty %}e{% endif %}{% if x != nil %}{{ x }}{% endif %}", {}).text
    assert render("{{ x | default: nil }}!", {}).text == "!"
    assert render("{% if true %}t{% endif %}", {}).text == "t"


@pytest.mark.parametrize(
    ("source", "column", "message"),
    [
        ("{{ first_name | upcase: 1, 2 }}", 17, "filter 'upcase' takes no arguments, not 2"),
        ("{{ first_name | split }}", 17, "filter 'split' takes 1 argument, not 0"),
        ("{{ x | truncate: 1, 2, 3 }}", 8, "filter 'truncate' takes at most 2 arguments, not 3"),
        ("{{ x | slice }}", 8, "filter 'slice' takes 1 to 2 arguments, not 0"),
        ("{{ x | replace_last: 'a' }}", 8, "filter 'replace_last' takes 2 arguments, not 1"),
        ("{{ x | strip_html: 1 }}", 8, "filter 'strip_html' takes no arguments"),
        ("{{ x | upcase | default: 'a', allow_falsy: true }}", 17, "no argument 'allow_falsy'"),
        ("{{ x | escape: environment: 1 }}", 8, "filter 'escape' has no argument 'environment'"),
        ("{{ x | truncate: 5, num: 3 }}", 8, "given 'num' twice"),
    ],
)
def test_a_filter_given_the_wrong_arguments_is_a_syntax_error(source, column, message):
    error = syntax_error(source)
    assert (error.line, error.column) == (1, column)
    assert message in error.message


def test_filters_given_arguments_they_take_compile():
    for source in (
        "{{ x | default: 'a', allow_false: true }}",
        "{{ x | truncate: num: 3 }}",
        "{{ x | truncate }}",
        "{{ x | truncatewords: 2, '' }}",
        "{{ x | slice: 1 }}",
        "{{ x | split: ',' | join }}",
        "{{ x | replace: 'a' }}",
    ):
        t.compile_template(source)


def test_spintax_is_stable_per_lead_and_varies_across_leads():
    source = "{Hi|Hello|Hey} {{first_name}}"
    compiled = t.compile_template(source)
    first = [t.render(compiled, JORDAN, lead, 1, "A").text for lead in range(60)]
    again = [t.render(compiled, JORDAN, lead, 1, "A").text for lead in range(60)]
    assert first == again
    assert set(first) == {"Hi Jordan", "Hello Jordan", "Hey Jordan"}
    # Step and variant take part in the choice too.
    other_step = [t.render(compiled, JORDAN, lead, 2, "A").text for lead in range(60)]
    assert other_step != first


def test_nested_spintax_and_liquid_inside_options():
    source = "{Hi {there|friend}|Hello {{first_name}}}!"
    seen = {render(source, JORDAN, lead).text for lead in range(200)}
    assert seen == {"Hi there!", "Hi friend!", "Hello Jordan!"}


def test_what_is_not_spintax_stays_literal():
    assert render("{curly} a|b {open |x", {}).text == "{curly} a|b {open |x"
    assert render('{"a": 1}', {}).text == '{"a": 1}'
    assert render("{% raw %}{a|b}{% endraw %}", {}).text == "{a|b}"
    assert render("{{ '{a|b}' }}", {}).text == "{a|b}"
    # A group does not cross a tag.
    assert render("{a|{% if x %}b{% endif %}}", {}).text == "{a|}"


def test_a_variable_only_in_an_option_not_chosen_is_not_missing():
    compiled = t.compile_template("{x|{{nickname}}}")
    results = {t.render(compiled, {}, lead, 1, "A") for lead in range(40)}
    assert t.Rendered("x") in results
    assert t.Rendered(None, ("nickname",)) in results


@pytest.mark.parametrize(
    ("source", "line", "column", "message"),
    [
        ("Hello\n  {{ x | }}", 2, 3, "expected"),
        ("ab\ncd {% if x %}", 2, 7, "endif"),
        ("x {{ first_name | nosuch }}", 1, 19, "unknown filter 'nosuch'"),
        ("x\n{{ job.title }}", 2, 4, "no parts"),
        ("{% for i in (1..3) %}x{% endfor %}", 1, 4, "unexpected tag 'for'"),
        ("a\n\n{% include 'x' %}", 3, 4, "unexpected tag 'include'"),
        ("{% render 'x' %}", 1, 4, "unexpected tag 'render'"),
        ("{% assign x = 1 %}", 1, 4, "unexpected tag 'assign'"),
        ("{{ x", 1, 1, "'}}'"),
        ("{Hi|{{ x | }}}", 1, 5, "expected"),
    ],
)
def test_syntax_errors_say_where(source, line, column, message):
    error = syntax_error(source)
    assert (error.line, error.column) == (line, column), error
    assert message in error.message


def test_python_objects_are_out_of_reach():
    assert "no parts" in syntax_error("{{ lead.__class__ }}").message
    assert "no parts" in syntax_error("{{ first_name.__class__.__mro__ }}").message
    assert render("{{ self }}", {}).missing == ("self",)
    # Liquid's now/today would read the clock: here they are variables like any other.
    assert render("{{ now }}{{ today }}", {}).missing == ("now", "today")
    assert render("{{ now }}", {"now": "later"}).text == "later"


HOSTILE = [
    "{% for i in (1..1000000000) %}{% for j in (1..1000000000) %}x{% endfor %}{% endfor %}",
    "{% if a %}" * 500 + "x" + "{% endif %}" * 500,
    "{% if a" + " and a" * 5000 + " %}x{% endif %}",
    "{{ 1" + "0" * 5000 + " }}",
    "{{ a | split: '' | join: a | split: '' | join: a }}",
    "{{ a | replace: 'A', a }}",
    "{{ a" + " | append: a" * 40 + " }}",
    "{{ a" + " | append: a" * 19 + " | upcase" * 8000 + " }}",
    "{{ (1..1000000000) | join }}",
    "{{ a }}" * 14_000,
    "{a|" * 3000 + "x" + "}" * 3000,
    '{{ "' + ">" + "<a " * 33000 + '" | strip_html }}',
]


@pytest.mark.parametrize("source", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_templates_are_refused_or_stopped_quickly(source):
    values = {"a": "A" * 5000}
    started = time.perf_counter()
    try:
        result = render(source, values)
    except (t.TemplateSyntaxError, t.RenderError):
        result = None
    assert time.perf_counter() - started < 2
    if result is not None and result.text is not None:
        assert len(result.text) <= t.MAX_OUTPUT_CHARS


def test_limits_have_clear_messages():
    values = {"a": "A" * 5000}
    with pytest.raises(t.RenderError, match="longer than"):
        render("{{ a | replace: 'A', a }}", values)
    with pytest.raises(t.RenderError, match="too long"):
        render("{{ a }}" * 14_000, values)
    with pytest.raises(t.RenderError, match="too much work"):
        render("{{ a" + " | append: a" * 19 + " | upcase" * 8000 + " }}", values)
    assert "nesting" in syntax_error("{% if a %}" * 500 + "{% endif %}" * 500).message


ORDINARY_HTML = [
    "<p>Hello <b>World</b></p>",
    '<a href="https://x.com/?a=1&amp;b=2">a link</a> &amp; more',
    "<html><head><style>p { color: red; }</style><script>var a = '<b>';</script></head>"
    "<body>Hi<br/>there<!-- a note --></body></html>",
    "<SCRIPT type='text/javascript'>track()</SCRIPT>after",
    '<!DOCTYPE html>\n<div class="a">\n  text\n</div>',
    "<img src='a.png' alt='pic'/>caption",
    "<ul><li>one</li><li>two</li></ul>",
    "no tags at all",
    "a < b",
]


@pytest.mark.parametrize("html", ORDINARY_HTML, ids=range(len(ORDINARY_HTML)))
def test_strip_html_removes_tags_scripts_styles_and_comments_as_before(html):
    from liquid.utils.html import strip_tags  # what strip_html was before

    assert render("{{ h | strip_html }}", {"h": html}).text == strip_tags(html)


def test_strip_html_follows_shopify():
    assert render("{{ h | strip_html }}", {"h": "<p>Hi <i>you</i></p>"}).text == "Hi you"
    assert render("{{ h | strip_html }}", {"h": "a<!-- <b> -->b<style>x</style>c"}).text == "abc"
    # A block never closed is not a block: only its tag goes.
    assert render("{{ h | strip_html }}", {"h": "a<script>b"}).text == "ab"
    assert render("{{ h | strip_html }}", {"h": "a <b unclosed"}).text == "a <b unclosed"
    assert render("{{ h | strip_html }}", {"h": "a < b, c > d"}).text == "a  d"


def test_escape_once_escapes_all_but_the_entities_already_there():
    given = "a & b &amp; <x> \"q\" 's' &eacute; &#39; &#x41; &nope"
    expected = (
        "a &amp; b &amp; &lt;x&gt; &quot;q&quot; &#x27;s&#x27; &eacute; &#39; &#x41; &amp;nope"
    )
    assert render("{{ h | escape_once }}", {"h": given}).text == expected
    assert render("{{ h | escape_once | escape_once }}", {"h": given}).text == expected


UNCLOSED_HTML = [
    ">" + "<a " * 33_000,
    "<" * 100_000,
    "<script" * 14_000,
    "<!--" * 25_000,
    "<style<script<!--" * 5_800,
    "<script>" + "</script" * 11_000,
    "<>" * 50_000,
]


@pytest.mark.parametrize("html", UNCLOSED_HTML, ids=range(len(UNCLOSED_HTML)))
def test_strip_html_takes_time_in_proportion_to_its_text(html):
    source = '{{ "' + html + '" | strip_html | size }}'
    started = time.perf_counter()
    assert render(source, {}).text is not None
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    ("statement", "value"),
    [("{{ a | strip_html }}", "<!---->" * 714), ("{{ a | escape_once | size }}", "&#1;" * 1250)],
)
def test_filters_pay_for_what_they_read(statement, value):
    # Each filter call is quick, but thousands on a long value that they reduce to little
    # would take seconds: what they read counts against the render's filter work.
    source = statement * (t.MAX_BODY_CHARS // len(statement))
    started = time.perf_counter()
    with pytest.raises(t.RenderError, match="too much work"):
        render(source, {"a": value})
    assert time.perf_counter() - started < 2


def test_subjects_are_one_line():
    compiled = t.compile_template("Hi {{ note }}")
    assert t.render_subject(compiled, {"note": "a\r\n b\tc"}, 1, 1, "A").text == "Hi a b c"
    with pytest.raises(t.RenderError, match="subject is longer"):
        t.render_subject(compiled, {"note": "x" * 2000}, 1, 1, "A")


def test_control_characters_never_reach_a_body():
    assert render('a{{ "%00%01" | url_decode }}b', {}).text == "ab"


def test_variant_assignment_is_stable_and_spread():
    labels = ["A", "B", "C"]
    chosen = [t.variant_for(lead, 1, labels) for lead in range(300)]
    assert chosen == [t.variant_for(lead, 1, labels) for lead in range(300)]
    assert all(chosen.count(label) > 60 for label in labels)
    assert t.variant_for(7, 1, ["A"]) == "A"


def test_variant_shares_are_kept_and_a_zero_share_is_never_sent():
    labels = ["A", "B", "C"]
    chosen = [t.variant_for(lead, 2, labels, [70, 0, 30]) for lead in range(10_000)]
    assert chosen == [t.variant_for(lead, 2, labels, [70, 0, 30]) for lead in range(10_000)]
    assert chosen.count("B") == 0
    assert 6_700 <= chosen.count("A") <= 7_300
    assert {t.variant_for(lead, 1, labels, [0, 100, 0]) for lead in range(500)} == {"B"}
    # An even split is the one it always was: shares of None change no lead's variant.
    assert [t.variant_for(lead, 1, labels, None) for lead in range(300)] == [
        t.variant_for(lead, 1, labels) for lead in range(300)
    ]


def test_compiled_templates_are_cached_within_a_bound():
    assert t.compile_template("Hi {{ a }}") is t.compile_template("Hi {{ a }}")
    for n in range(30):
        t.compile_template(f"{n} " + "x" * 99_000)
    assert t._cache_chars <= t.CACHE_CHARS
    assert sum(len(source) for source in t._cache) == t._cache_chars


# --- plain templates: joined directly, the same as Liquid renders them ----------------------

NAMES = ("first_name", "company_name", "title", "x")
TEXT = st.text(alphabet=st.sampled_from("ab ,.!?\n\t-é😀<>&'\""), max_size=8)


def _pieces(depth: int) -> st.SearchStrategy[str]:
    value = st.sampled_from(NAMES).map(lambda name: f"{{{{ {name} }}}}")
    fallback = st.tuples(st.sampled_from(NAMES), TEXT.filter(lambda s: '"' not in s)).map(
        lambda p: f'{{{{ {p[0]} | default: "{p[1]}" }}}}'
    )
    options = [TEXT.filter(lambda s: not s.isspace()), value, fallback]
    if depth:
        # An option starting with a brace would make "{{" or "{%": a tag, not spintax.
        option = _pieces(depth - 1).map(lambda text: "o" + text)
        spin = st.lists(option, min_size=2, max_size=3).map(lambda opts: "{" + "|".join(opts) + "}")
        options.append(spin)
    return st.lists(st.one_of(options), max_size=6).map("".join)


VALUES = st.dictionaries(
    st.sampled_from(NAMES),
    st.one_of(TEXT, st.integers(-5, 5), st.floats(allow_nan=False), st.booleans(), st.none()),
)


@given(source=_pieces(2), values=VALUES, lead_id=st.integers(1, 10**9))
@settings(max_examples=400, deadline=None)
def test_a_plain_template_renders_as_liquid_renders_it(source: str, values: dict, lead_id: int):
    compiled = t.compile_template(source)
    through_liquid = dataclasses.replace(compiled, plain=None)
    assert t.render(compiled, values, lead_id, 2, "B") == t.render(
        through_liquid, values, lead_id, 2, "B"
    )


def test_what_the_plain_path_takes():
    assert t.compile_template('Hi {{ first_name }}, {a|{{ x | default: "b" }}}').plain
    for source in (
        "{% if x %}y{% endif %}",
        "{{ x | upcase }}",
        "{{ x | default: 3 }}",
        '{{ x | default: "a", allow_false: true }}',
        '{{ "text" }}',
        "a{% comment %}b{% endcomment %}",
    ):
        assert t.compile_template(source).plain is None, source
    assert render("{% raw %}{{ x }}{% endraw %}", {"x": "y"}).text == "{{ x }}"
