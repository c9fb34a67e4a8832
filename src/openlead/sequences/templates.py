"""Email templates: Liquid with spintax, rendered for one lead. Pure code, no I/O.

A template is compiled once (``compile_template``, cached by its text) and rendered per lead
(``render``). What a template may do is deliberately small, because templates are user input
rendered inside the server:

* Liquid output ``{{ name }}`` and ``{{ name | filter: ... }}``, where a name is a standard lead
  field or a custom-field key, exactly as spelled (``{{ ["odd key"] }}`` for keys that are not
  identifiers). Lead values are text, numbers or booleans, so a path into a value
  (``{{ a.b }}``, ``{{ a[0] }}``) is refused.
* The tags ``if``/``elsif``/``else``, ``unless``, ``case``/``when``, ``comment``, ``raw`` and
  ``{% # ... %}``. Every other tag (``for``, ``assign``, ``capture``, ``include``, ``render``,
  ``cycle``, ...) is refused when the template is saved: no loops, no state, nothing loaded.
* The string filters in ``ALLOWED_FILTERS``. Each one refuses a result longer than
  ``MAX_VALUE_CHARS``, and every render has a budget of ``MAX_FILTER_WORK`` characters that
  filters read and write and ``MAX_OUTPUT_CHARS`` of output, so no template can run for long
  or use much memory, whatever the lead.
* Spintax ``{Hi|Hello|Hey}``, nested too, choosing one option per (lead, step, variant, group).

Spintax and Liquid: ``{{`` and ``{%`` always begin Liquid. Spintax is looked for only in the
text between Liquid tags: a ``{`` there opens a group when a matching ``}`` closes it in the
same stretch of text (before the next ``{% ... %}`` tag) and the group has a ``|`` at its own
level. Otherwise the braces and bars are literal text, so ``{curly}``, ``a | b`` and JSON stay
as written. A group's options may contain ``{{ ... }}`` output and other groups, but not tags;
a group may not start with a nested group (``{{`` would be Liquid), so write
``{Hey|{Hi|Hello} there}``, not ``{{Hi|Hello} there|Hey}``. Text inside ``{% raw %}`` is never
spintax. Groups nest at most ``MAX_SPIN_DEPTH`` deep; a deeper ``{`` is literal.

Missing variables: a lead's value counts only when it is not empty (``None``, or a string of
nothing but spaces, tabs and line breaks, is no value). A variable is missing when a render
writes it out without a value: inside an ``if`` whose branch is not taken it is not written,
``{{ x | default: "y" }}`` writes ``y``, and ``{% if x %}`` only tests it. A filter given a
missing value passes it on as missing (so ``{{ x | upcase | default: "y" }}`` writes ``y`` and
``{{ x | upcase }}`` reports ``x``), which means a message is never half filled.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from io import StringIO
from typing import Any, TextIO

from liquid import BoundTemplate, Environment, RenderContext, Undefined
from liquid.ast import BlockNode, ConditionalBlockNode, Node
from liquid.builtin import content as content_tag
from liquid.builtin import illegal as illegal_tag
from liquid.builtin import output as output_tag
from liquid.builtin.expressions import FilteredExpression, Path
from liquid.builtin.expressions.arguments import KeywordArgument, PositionalArgument
from liquid.builtin.expressions.filtered import Filter
from liquid.builtin.expressions.logical import (
    BooleanExpression,
    EqExpression,
    LogicalAndExpression,
    NeExpression,
)
from liquid.builtin.expressions.logical import _eq as liquid_eq  # Liquid's ``==``
from liquid.builtin.expressions.primitive import (
    Blank,
    Empty,
    FalseLiteral,
    Nil,
    StringLiteral,
    TrueLiteral,
)
from liquid.builtin.output import OutputNode
from liquid.builtin.tags import case_tag, comment_tag, if_tag, inline_comment_tag, unless_tag
from liquid.builtin.tags.case_tag import _AnyExpression as WhenExpression  # a ``when``'s test
from liquid.builtin.tags.if_tag import IfNode
from liquid.builtin.tags.unless_tag import UnlessNode
from liquid.exceptions import (
    FilterValueError,
    LiquidError,
    LiquidSyntaxError,
    OutputStreamLimitError,
)
from liquid.lex import get_lexer
from liquid.parser import get_parser
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import (
    TOKEN_CONTENT,
    TOKEN_EXPRESSION,
    TOKEN_OUTPUT,
    TOKEN_TAG,
    Token,
)
from liquid.undefined import UNDEFINED
from liquid.utils import ReadOnlyChainMap

# --- limits ---------------------------------------------------------------------------------

MAX_SUBJECT_CHARS = 2_000  # a subject template
MAX_BODY_CHARS = 100_000  # a body template
MAX_RENDERED_SUBJECT_CHARS = 1_000
MAX_OUTPUT_CHARS = 1_000_000  # one rendered template
MAX_LEAD_VALUE_CHARS = 5_000  # the import's limit on a lead value (leads/schemas.py)
MAX_VALUE_CHARS = 100_000  # one filter's result
MAX_LIST_ITEMS = 10_000  # one filter's list result (split)
MAX_FILTER_WORK = 5_000_000  # characters filters read and write in one render
MAX_BLOCK_NESTING = 20  # if/unless/case/spintax blocks inside each other
MAX_SPIN_DEPTH = 8  # spintax groups inside each other

STANDARD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company_name",
    "location",
    "phone_number",
    "website",
    "linkedin_profile",
    "company_url",
)
# "Empty" is this and nothing else, here and in the database's check.
BLANK_CHARS = " \t\n\r"

ALLOWED_TAGS = ("if", "unless", "case", "comment", "#", "raw")
ALLOWED_FILTERS = (
    "append",
    "capitalize",
    "default",
    "downcase",
    "escape",
    "escape_once",
    "first",
    "join",
    "last",
    "lstrip",
    "newline_to_br",
    "prepend",
    "remove",
    "remove_first",
    "remove_last",
    "replace",
    "replace_first",
    "replace_last",
    "rstrip",
    "size",
    "slice",
    "split",
    "squish",
    "strip",
    "strip_html",
    "strip_newlines",
    "truncate",
    "truncatewords",
    "upcase",
    "url_decode",
    "url_encode",
)

# Internal tag names. The lexer only makes tag names of word characters, so no template can
# spell these; they exist only in the token streams ``_with_spintax`` builds.
_SPIN = "\x00spin"
_SPIN_OR = "\x00or"
_SPIN_END = "\x00endspin"
# Where a render's spin seed travels in the render context; no lead key has a control character.
_SEED_KEY = "\x00seed"


# --- errors and results ---------------------------------------------------------------------


class TemplateSyntaxError(Exception):
    """A template that cannot be used; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


class RenderError(Exception):
    """A render stopped: a limit was reached or a filter could not work on its value."""


@dataclass(frozen=True)
class Rendered:
    """One rendered template: the text, or the names of the missing variables (sorted)."""

    text: str | None
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledTemplate:
    source: str
    template: BoundTemplate = field(repr=False)
    # Every lead value the template names anywhere.
    variables: frozenset[str]
    # The ones the database check counts: written out by an output statement without a
    # ``default`` filter and not inside ``{% if name %}`` (or ``unless ... else``) on the same name.
    required: frozenset[str]
    spins: bool  # has spintax groups
    # The same template as text, values and spintax alone, when that is all it is.
    plain: tuple[Any, ...] | None = field(default=None, repr=False)


# --- rendering state ------------------------------------------------------------------------


class _RenderState:
    __slots__ = ("missing", "work")

    def __init__(self) -> None:
        self.missing: list[str] = []
        self.work = 0


_STATE: ContextVar[_RenderState | None] = ContextVar("openlead_render_state", default=None)


class _Missing(Undefined):
    """An absent lead value. Writing it out records its names instead of writing nothing."""

    __slots__ = ("names",)

    def __init__(
        self,
        name: str,
        *,
        token: Token | None = None,
        obj: object = UNDEFINED,
        hint: str | None = None,
        names: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, token=token, obj=obj, hint=hint)
        self.names = names or (name,)

    def __str__(self) -> str:
        state = _STATE.get()
        if state is not None:
            state.missing.extend(self.names)
        return ""


def _is_empty_text(value: object) -> bool:
    return isinstance(value, Blank | Empty) or value == ""


def _equal(left: object, right: object) -> bool:
    """Liquid's ``==``, except that a missing value equals ``blank``, ``empty`` and ``""``.

    A missing value is an absent field or an empty one, and an empty text is all three (and in
    Shopify's Liquid nil is blank). Liquid's own ``==`` equates an undefined value with ``nil``
    alone, so ``{% if x != blank %}{{ x }}{% endif %}`` wrote a missing ``x`` out."""
    if isinstance(left, Undefined) and _is_empty_text(right):
        return True
    if isinstance(right, Undefined) and _is_empty_text(left):
        return True
    return liquid_eq(left, right)


# Rendering here is synchronous, so only ``evaluate`` is replaced.
class _EqExpression(EqExpression):
    __slots__ = ()

    def evaluate(self, context: RenderContext) -> object:
        return _equal(self.left.evaluate(context), self.right.evaluate(context))


class _NeExpression(NeExpression):
    __slots__ = ()

    def evaluate(self, context: RenderContext) -> object:
        return not _equal(self.left.evaluate(context), self.right.evaluate(context))


class _WhenExpression(WhenExpression):
    __slots__ = ()

    def evaluate(self, context: RenderContext) -> list[bool]:
        left = self.left.evaluate(context)
        return [_equal(left, right.evaluate(context)) for right in self.expressions]


_COMPARISONS: dict[type, type] = {
    EqExpression: _EqExpression,
    NeExpression: _NeExpression,
    WhenExpression: _WhenExpression,
}


def _compare_missing_as_empty(expression: Any) -> None:
    """Make every comparison in ``expression`` use ``_equal`` (same fields, so the class of
    each parsed node is swapped in place)."""
    ours = _COMPARISONS.get(type(expression))
    if ours is not None:
        expression.__class__ = ours
    for child in expression.children():
        _compare_missing_as_empty(child)


class _Context(RenderContext):
    """The render context without Liquid's ``now`` and ``today``: a template reads the lead
    and nothing else, and renders the same whenever it is rendered."""

    __slots__ = ()

    def __init__(self, template: BoundTemplate, **kwargs: Any) -> None:
        super().__init__(template, **kwargs)
        self.scope = ReadOnlyChainMap(self.locals, self.globals)


class _LimitedBuffer(StringIO):
    """Output that stops at ``MAX_OUTPUT_CHARS``."""

    def __init__(self) -> None:
        super().__init__()
        self.size = 0

    def write(self, text: str, /) -> int:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            raise OutputStreamLimitError("the message is too long", token=None)
        return super().write(text)


class _Template(BoundTemplate):
    """A template whose output cannot outgrow the limit: with no loops, every output
    statement runs at most once, so its text plus each statement's largest value bounds it."""

    context_class = _Context

    def _get_buffer(self) -> StringIO:
        return StringIO()


class _CheckedTemplate(_Template):
    """A template with enough output statements to outgrow the limit: every write counts."""

    def _get_buffer(self) -> StringIO:
        return _LimitedBuffer()


# --- filters --------------------------------------------------------------------------------


def _limit(message: str) -> FilterValueError:
    return FilterValueError(message, token=None)


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _check(value: object) -> None:
    if isinstance(value, str):
        if len(value) > MAX_VALUE_CHARS:
            raise _limit(f"a value longer than {MAX_VALUE_CHARS} characters")
    elif isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise _limit(f"a list of more than {MAX_LIST_ITEMS} items")
    elif value is None or isinstance(value, bool | int | float):
        return
    else:
        raise _limit(f"a value of type {type(value).__name__} cannot be filtered")


def _size(value: object) -> int:
    return len(value) if isinstance(value, str | list) else 1


def _spend(amount: int) -> None:
    state = _STATE.get()
    if state is not None:
        state.work += amount
        if state.work > MAX_FILTER_WORK:
            raise _limit("the template does too much work with filters")


def _before_replace(
    value: object, seq: object = "", sub: object = "", *_: object, **__: object
) -> None:
    text, old, new = _as_text(value), _as_text(seq), _as_text(sub)
    count = text.count(old) if old else len(text) + 1
    if len(text) + count * max(0, len(new) - len(old)) > MAX_VALUE_CHARS:
        raise _limit(f"a value longer than {MAX_VALUE_CHARS} characters")


def _before_join(value: object, separator: object = " ", *_: object, **__: object) -> None:
    items = value if isinstance(value, list) else _as_text(value)
    total = sum(len(_as_text(i)) for i in items) + len(_as_text(separator)) * max(0, len(items) - 1)
    if total > MAX_VALUE_CHARS:
        raise _limit(f"a value longer than {MAX_VALUE_CHARS} characters")


_PRECHECKS: dict[str, Callable[..., None]] = {"replace": _before_replace, "join": _before_join}

# ``strip_html`` as Shopify's: script, style and comment blocks go with their content, then
# every ``<...>``. Liquid's own uses ``html.parser``, which is quadratic on runs of unclosed
# tags (``<a <a <a ...``: 100 s for 100,000 characters), and so are the lazy regular
# expressions Shopify uses, once a block or tag is never closed. Here no closer is looked for
# twice over the same text, and no tag past the last ``>``, so the work is linear.
_BLOCK_OPEN = re.compile(r"<(?:(script)|(style)|!--)", re.IGNORECASE)
_BLOCK_CLOSE = (
    re.compile(r"-->"),
    re.compile(r"</script>", re.IGNORECASE),
    re.compile(r"</style>", re.IGNORECASE),
)
_TAG = re.compile(r"<[^>]*>")


def _strip_blocks(text: str) -> str:
    kept: list[str] = []
    start = 0
    # Per kind of block, where the next closer found so far starts and ends; a start past the
    # text when there is none.
    closers = [(-1, -1)] * len(_BLOCK_CLOSE)
    for opened in _BLOCK_OPEN.finditer(text):
        if opened.start() < start:
            continue  # inside a block already removed
        kind = 1 if opened.group(1) else 2 if opened.group(2) else 0
        at, end = closers[kind]
        if at < opened.end():
            found = _BLOCK_CLOSE[kind].search(text, opened.end())
            at, end = closers[kind] = (found.start(), found.end()) if found else (len(text), -1)
        if end >= 0:
            kept.append(text[start : opened.start()])
            start = end
    kept.append(text[start:])
    return "".join(kept)


def strip_html(value: object) -> str:
    """The text without HTML tags, comments, scripts and styles (Shopify's ``strip_html``)."""
    text = "" if value is None else _as_text(value)
    if "<" not in text:
        return text
    text = _strip_blocks(text)
    # Past the last ">" no tag can close: leaving that tail out keeps the search linear.
    last = text.rfind(">") + 1
    return _TAG.sub("", text[:last]) + text[last:]


# ``escape_once`` as Shopify's: what ``escape`` escapes, but an "&" that begins an entity
# stays. Liquid's own unescapes the whole text first, with a call back into Python for each
# entity: a value of "&#1;" runs took over a second a render.
_ESCAPE_ONCE = re.compile(r"[\"'<>]|&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);)")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}


def escape_once(value: object) -> str:
    """The text escaped for HTML, entities already in it left as they are."""
    text = "" if value is None else _as_text(value)
    return _ESCAPE_ONCE.sub(lambda found: _ESCAPES[found.group()], text)


# Filters of our own, in place of Liquid's of the same name.
_OWN_FILTERS: dict[str, Callable[..., Any]] = {
    "strip_html": strip_html,
    "escape_once": escape_once,
}


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that passes a missing value on, and keeps every result small."""
    precheck = _PRECHECKS.get(name)

    @functools.wraps(func)
    def guarded(left: object, *args: object, **kwargs: object) -> object:
        absent = [a for a in (left, *args, *kwargs.values()) if isinstance(a, Undefined)]
        if absent:
            names = tuple(n for a in absent for n in getattr(a, "names", (a.name,)))
            return _Missing(names[0], names=names)
        for argument in (left, *args):
            _check(argument)
        if precheck is not None:
            precheck(left, *args, **kwargs)
        # What a filter reads counts as well as what it writes: a filter that reduces a long
        # value to little (strip_html, escape_once, size...) still costs time in proportion.
        _spend(_size(left))
        result = func(left, *args, **kwargs)
        _check(result)
        _spend(_size(result))
        return result

    return guarded


# --- spintax --------------------------------------------------------------------------------


class _SpinNode(Node):
    """One spintax group: renders the option chosen for this render's seed."""

    __slots__ = ("index", "options")

    def __init__(self, token: Token, index: int, options: list[BlockNode]) -> None:
        super().__init__(token)
        self.index = index
        self.options = options
        self.blank = all(option.blank for option in options)

    def __str__(self) -> str:
        return "{" + "|".join(str(option) for option in self.options) + "}"

    def render_to_output(self, context: RenderContext, buffer: TextIO) -> int:
        seed = context.globals.get(_SEED_KEY, 0)
        chosen = self.options[spin_choice(seed, self.index, len(self.options))]
        return chosen.render(context, buffer)

    def children(self, static_context: RenderContext, *, include_partials: bool = True):  # type: ignore[no-untyped-def]
        return self.options


class _SpinTag(Tag):
    name = _SPIN
    end = _SPIN_END

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        index = int(stream.current.value)
        next(stream)
        parse_block = get_parser(self.env).parse_block
        options = [parse_block(stream, (_SPIN_OR, _SPIN_END))]
        while stream.current.kind == TOKEN_TAG and stream.current.value == _SPIN_OR:
            next(stream)
            options.append(parse_block(stream, (_SPIN_OR, _SPIN_END)))
        stream.expect(TOKEN_TAG, _SPIN_END)
        return _SpinNode(token, index, options)


_MASK = (1 << 64) - 1


def spin_seed(lead_id: int, seq_number: int, variant_label: str) -> int:
    """The seed of one lead's message: the same on every machine and in every version."""
    key = f"{lead_id}/{seq_number}/{variant_label}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def spin_choice(seed: int, index: int, options: int) -> int:
    """Which option group ``index`` shows for ``seed`` (splitmix64 of the two)."""
    z = (seed + (index + 1) * 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return (z ^ (z >> 31)) % options


@dataclass
class _Frame:
    open_at: int
    bars: list[int] = field(default_factory=list)
    options: list[list[Any]] = field(default_factory=list)
    current: list[Any] = field(default_factory=list)


@dataclass
class _Group:
    open_at: int
    bars: list[int]
    close_at: int
    options: list[list[Any]]


_BRACES = re.compile(r"[{|}]")


def _text_position(token: Token) -> int:
    """Where a content token's text starts in the source (whitespace control may have
    stripped some of what the lexer matched)."""
    if token.source.startswith(token.value, token.start_index):
        return token.start_index
    found = token.source.find(token.value, token.start_index)
    return found if found >= 0 else token.start_index


def _is_raw(token: Token) -> bool:
    return token.kind == TOKEN_CONTENT and token.source.startswith("{%", token.start_index)


def _group_run(run: list[Any]) -> list[Any]:
    """Find the spintax groups in one stretch of text and output statements.

    ``run`` holds ``(text, position)`` pieces and ``(output token, expression token)`` pairs;
    the answer holds the same pieces with groups made into ``_Group``s."""
    top: list[Any] = []
    stack: list[_Frame] = []

    def emit(item: Any) -> None:
        (stack[-1].current if stack else top).append(item)

    def as_literal(frame: _Frame) -> list[Any]:
        items: list[Any] = [("{", frame.open_at)]
        for option, bar in zip(frame.options, frame.bars, strict=True):
            items += [*option, ("|", bar)]
        return items + frame.current

    for piece in run:
        if isinstance(piece[0], Token):
            emit(piece)
            continue
        text, position = piece
        start = 0
        for match in _BRACES.finditer(text):
            at = match.start()
            if at > start:
                emit((text[start:at], position + start))
            start = at + 1
            char, where = match.group(), position + at
            if char == "{":
                if len(stack) < MAX_SPIN_DEPTH:
                    stack.append(_Frame(where))
                else:
                    emit(("{", where))
            elif not stack:
                emit((char, where))
            elif char == "|":
                frame = stack[-1]
                frame.options.append(frame.current)
                frame.bars.append(where)
                frame.current = []
            else:  # "}"
                frame = stack.pop()
                if frame.options:
                    emit(_Group(frame.open_at, frame.bars, where, [*frame.options, frame.current]))
                else:
                    for item in [("{", frame.open_at), *frame.current, ("}", where)]:
                        emit(item)
        if start < len(text):
            emit((text[start:], position + start))
    while stack:  # braces never closed are text
        for item in as_literal(stack.pop()):
            emit(item)
    return top


class _Tokens:
    def __init__(self, source: str) -> None:
        self.source = source
        self.out: list[Token] = []
        self.groups = 0

    def text(self, value: str, position: int) -> None:
        last = self.out[-1] if self.out else None
        if last is not None and last.kind == TOKEN_CONTENT and getattr(last, "_ours", False):
            merged = _OurToken(TOKEN_CONTENT, last.value + value, last.start_index, self.source)
            self.out[-1] = merged
        else:
            self.out.append(_OurToken(TOKEN_CONTENT, value, position, self.source))

    def tag(self, name: str, position: int) -> None:
        self.out.append(Token(TOKEN_TAG, name, position, self.source))

    def items(self, items: Iterable[Any]) -> None:
        for item in items:
            if isinstance(item, _Group):
                index = self.groups
                self.groups += 1
                self.tag(_SPIN, item.open_at)
                self.out.append(Token(TOKEN_EXPRESSION, str(index), item.open_at, self.source))
                for number, option in enumerate(item.options):
                    if number:
                        self.tag(_SPIN_OR, item.bars[number - 1])
                    self.items(option)
                self.tag(_SPIN_END, item.close_at)
            elif isinstance(item[0], Token):
                self.out.extend(item)
            else:
                self.text(*item)


class _OurToken(Token):
    """A content token made here (so that neighbouring pieces of text merge again)."""

    _ours = True


def _with_spintax(tokens: Iterator[Token], source: str) -> tuple[list[Token], int]:
    """The lexer's tokens, with each spintax group as internal spin/or/endspin tags."""
    built = _Tokens(source)
    run: list[Any] = []
    pending_output: Token | None = None

    def flush() -> None:
        if run:
            built.items(_group_run(run))
            run.clear()

    for token in tokens:
        if pending_output is not None:
            run.append((pending_output, token))  # an output token and its expression
            pending_output = None
        elif token.kind == TOKEN_OUTPUT:
            pending_output = token
        elif token.kind == TOKEN_CONTENT and not _is_raw(token):
            run.append((token.value, _text_position(token)))
        else:
            flush()
            built.out.append(token)
    if pending_output is not None:  # the lexer always follows an output with its expression
        run.append((pending_output,))
    flush()
    return built.out, built.groups


# --- the environment ------------------------------------------------------------------------


def _pinned(tag: type[Tag]) -> type[Tag]:
    """The tag, with every parse error pinned to a place in the template.

    Some of Liquid's errors (an expression that ends too early, a block never closed) carry no
    position; those are reported at the tag or output statement they were found in."""

    class Pinned(tag):  # type: ignore[valid-type, misc]
        def parse(self, stream: TokenStream) -> Node:
            start = stream.current
            try:
                return super().parse(stream)
            except LiquidError as err:
                if err.token is None or err.token.start_index < 0 or not err.token.source:
                    err.token = start
                raise
            except (RecursionError, ValueError, TypeError, IndexError) as err:
                raise LiquidSyntaxError("this is too complex to read", token=start) from err

    Pinned.__name__ = Pinned.__qualname__ = f"Pinned{tag.__name__}"
    return Pinned


class _Environment(Environment):
    block_nesting_limit = MAX_BLOCK_NESTING
    context_depth_limit = 10
    loop_iteration_limit = 1_000
    local_namespace_limit = 100_000
    template_class = _Template

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        for tag in (
            content_tag.Literal,
            illegal_tag.Illegal,
            _pinned(output_tag.Output),
            _pinned(if_tag.IfTag),
            _pinned(unless_tag.UnlessTag),
            _pinned(case_tag.CaseTag),
            comment_tag.CommentTag,
            inline_comment_tag.InlineCommentTag,
            _SpinTag,
        ):
            self.add_tag(tag)
        stock = Environment()
        for name in ALLOWED_FILTERS:
            func = _OWN_FILTERS.get(name) or stock.filters[name]
            self.add_filter(name, func if name == "default" else _guarded(name, func))


ENVIRONMENT = _Environment(undefined=_Missing, strict_filters=True)


# --- compiling ------------------------------------------------------------------------------


def _position(source: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(source)))
    line = source.count("\n", 0, index) + 1
    column = index - (source.rfind("\n", 0, index) + 1) + 1
    return line, column


def _syntax_error(source: str, err: LiquidError) -> TemplateSyntaxError:
    message = str(err.message if err.message is not None else "invalid template")
    token = err.token
    index = token.start_index if token is not None and token.start_index >= 0 else 0
    if token is not None and token.value in (_SPIN, _SPIN_OR, _SPIN_END):
        message = message.replace(repr(token.value), "spintax")
    message = message.replace(_SPIN_END, "'}'").replace(_SPIN_OR, "'|'").replace(_SPIN, "'{'")
    return TemplateSyntaxError(message.rstrip(".") + ".", *_position(source, index))


def _root(path: Path, source: str) -> str:
    segments = path.path
    if len(segments) != 1 or not isinstance(segments[0], str):
        raise TemplateSyntaxError(
            f"'{path}': lead values are text or numbers and have no parts; write a field name "
            "alone (use a filter such as | size or | first for more)",
            *_position(source, path.token.start_index),
        )
    return segments[0]


def _paths(expression: Any) -> Iterator[Path]:
    if isinstance(expression, Path):
        yield expression
        return
    for child in expression.children():
        yield from _paths(child)


def _truthy_names(expression: Any) -> set[str]:
    """Names that must have a value when ``expression`` holds (a small, safe subset)."""
    if isinstance(expression, BooleanExpression):
        return _truthy_names(expression.expression)
    if isinstance(expression, Path) and len(expression.path) == 1:
        return {str(expression.path[0])}
    if isinstance(expression, LogicalAndExpression):
        return _truthy_names(expression.left) | _truthy_names(expression.right)
    if isinstance(expression, NeExpression | EqExpression):
        left, right = expression.left, expression.right
        if isinstance(right, Path):
            left, right = right, left
        if not isinstance(left, Path) or len(left.path) != 1:
            return set()
        if isinstance(expression, NeExpression) and (
            isinstance(right, Blank | Empty | Nil)
            or (isinstance(right, StringLiteral) and right.value == "")
        ):
            return {str(left.path[0])}
        if isinstance(expression, EqExpression) and isinstance(right, StringLiteral):
            return {str(left.path[0])} if right.value.strip(BLANK_CHARS) else set()
    return set()


# Written out alone, each of these is a constant ("" or true/false), never a lead's field.
_KEYWORDS = (Blank, Empty, Nil, TrueLiteral, FalseLiteral)


@functools.cache
def _parameters(name: str) -> inspect.Signature:
    """What a filter takes after its value (Liquid passes ``environment`` itself)."""
    func = ENVIRONMENT.filters[name]
    signature = inspect.signature(func)  # through the wrappers, to Liquid's function
    parameters = list(signature.parameters.values())[1:]
    if getattr(func, "with_environment", False):
        parameters = [p for p in parameters if p.name != "environment"]
    return signature.replace(parameters=parameters)


def _arity(parameters: inspect.Signature) -> str:
    positional = [
        p
        for p in parameters.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    most = len(positional)
    least = sum(1 for p in positional if p.default is p.empty)
    if most == 0:
        return "no arguments"
    plural = "s" if most > 1 else ""
    if least == most:
        return f"{most} argument{plural}"
    return f"at most {most} argument{plural}" if least == 0 else f"{least} to {most} arguments"


def _argument_problem(item: Filter) -> str | None:
    """Why a filter call would fail whatever the values, or None. Only the number of
    arguments and their names are checked: those fail for every lead alike."""
    parameters = _parameters(item.name)
    positional = [a for a in item.args if isinstance(a, PositionalArgument)]
    keywords = [a.name for a in item.args if isinstance(a, KeywordArgument)]
    try:
        parameters.bind(*positional, **dict.fromkeys(keywords))
    except TypeError:
        pass
    else:
        return None
    unknown = [name for name in keywords if name not in parameters.parameters]
    if unknown:
        named = [p.name for p in parameters.parameters.values() if p.kind == p.KEYWORD_ONLY]
        return f"filter '{item.name}' has no argument '{unknown[0]}'" + (
            f" (it takes {', '.join(named)})" if named else ""
        )
    by_position = list(parameters.parameters)[: len(positional)]
    twice = [name for name in keywords if name in by_position]
    if twice:
        return f"filter '{item.name}' is given '{twice[0]}' twice, by position and by name"
    return f"filter '{item.name}' takes {_arity(parameters)}, not {len(item.args)}"


def _fix_comparisons(node: Node, context: RenderContext) -> None:
    for expression in node.expressions():
        _compare_missing_as_empty(expression)
    for child in node.children(context, include_partials=False):
        _fix_comparisons(child, context)


class _Analysis:
    def __init__(self, template: BoundTemplate, source: str) -> None:
        self.source = source
        self.context = _Context(template)
        self.variables: set[str] = set()
        self.required: set[str] = set()
        # The most text the template's output statements can write in one render.
        self.output_bound = 0

    def used(self, expression: Any) -> set[str]:
        names = {_root(path, self.source) for path in _paths(expression)}
        self.variables |= names
        return names

    def filters(self, expression: FilteredExpression) -> None:
        for item in expression.filters or ():
            if item.name not in ENVIRONMENT.filters:
                raise TemplateSyntaxError(
                    f"unknown filter '{item.name}'; the filters are {', '.join(ALLOWED_FILTERS)}",
                    *_position(self.source, item.token.start_index),
                )
            problem = _argument_problem(item)
            if problem is not None:
                raise TemplateSyntaxError(problem, *_position(self.source, item.token.start_index))

    def keyword(self, expression: Any) -> None:
        """Refuse writing out a keyword, which would never be the lead's field of that name."""
        value = expression.left if isinstance(expression, FilteredExpression) else expression
        if isinstance(value, _KEYWORDS):
            word = value.token.value
            raise TemplateSyntaxError(
                f"'{word}' is a Liquid keyword, not a lead value; to write a field named "
                f'{word}, write {{{{ ["{word}"] }}}}',
                *_position(self.source, value.token.start_index),
            )

    def output(self, node: OutputNode, guards: frozenset[str]) -> None:
        expression = node.expression
        self.keyword(expression)
        filtered = not isinstance(expression, FilteredExpression) or bool(expression.filters)
        self.output_bound += MAX_VALUE_CHARS if filtered else MAX_LEAD_VALUE_CHARS
        if not isinstance(expression, FilteredExpression):
            self.used(expression)
            return
        self.filters(expression)
        chain = expression.filters or []
        defaulted = next((i for i, f in enumerate(chain) if f.name == "default"), len(chain))
        covered = self.used(expression.left)
        for item in chain[:defaulted]:
            for argument in item.args:
                covered |= self.used(argument.value)
        exposed: set[str] = set()
        for item in chain[defaulted:]:
            for argument in item.args:
                exposed |= self.used(argument.value)
        if defaulted == len(chain):
            exposed |= covered
        self.required |= exposed - guards

    def walk(self, node: Node, guards: frozenset[str]) -> None:
        if isinstance(node, OutputNode):
            self.output(node, guards)
            return
        if isinstance(node, IfNode | UnlessNode):
            self.used(node.condition)
            holds = frozenset(_truthy_names(node.condition))
            first = guards | holds if isinstance(node, IfNode) else guards
            self.walk(node.consequence, first)
            for alternative in node.alternatives:
                self.used(alternative.expression)
                self.walk(alternative.block, guards | _truthy_names(alternative.expression))
            if node.default is not None:
                last = guards | holds if isinstance(node, UnlessNode) else guards
                self.walk(node.default, last)
            return
        for expression in node.expressions():
            self.used(expression)
        for child in node.children(self.context, include_partials=False):
            inner = child.block if isinstance(child, ConditionalBlockNode) else child
            if isinstance(child, ConditionalBlockNode):
                self.used(child.expression)
            self.walk(inner, guards)


# Compiled templates are kept by their text, least recently used out first, up to this many
# characters of source in all (a parsed template takes some 60 times its text in memory).
CACHE_CHARS = 2_000_000
_cache: OrderedDict[str, CompiledTemplate] = OrderedDict()
_cache_chars = 0
_cache_lock = threading.Lock()


def compile_template(source: str) -> CompiledTemplate:
    """Parse, check and analyse one template (cached). Raises ``TemplateSyntaxError``."""
    global _cache_chars
    with _cache_lock:
        compiled = _cache.get(source)
        if compiled is not None:
            _cache.move_to_end(source)
            return compiled
    compiled = _compile(source)
    with _cache_lock:
        if source not in _cache and len(source) <= CACHE_CHARS:
            _cache[source] = compiled
            _cache_chars += len(source)
            while _cache_chars > CACHE_CHARS:
                dropped, _ = _cache.popitem(last=False)
                _cache_chars -= len(dropped)
    return compiled


def _compile(source: str) -> CompiledTemplate:
    try:
        tokens, groups = _with_spintax(get_lexer()(source), source)
        nodes = get_parser(ENVIRONMENT).parse(TokenStream(iter(tokens)))
    except LiquidError as err:
        raise _syntax_error(source, err) from None
    except RecursionError:
        raise TemplateSyntaxError("the template is nested too deeply", 1, 1) from None
    analysis = _Analysis(_Template(env=ENVIRONMENT, nodes=nodes), source)
    for node in nodes:
        _fix_comparisons(node, analysis.context)
        analysis.walk(node, frozenset())
    bounded = len(source) + analysis.output_bound <= MAX_OUTPUT_CHARS
    kind = _Template if bounded else _CheckedTemplate
    return CompiledTemplate(
        source=source,
        template=kind(env=ENVIRONMENT, nodes=nodes),
        variables=frozenset(analysis.variables),
        required=frozenset(analysis.required),
        spins=groups > 0,
        plain=_plain(nodes) if bounded else None,
    )


# --- plain templates ------------------------------------------------------------------------
#
# Most templates are text, lead values written out (``{{ first_name }}``, ``{{ company_name |
# default: "your team" }}``) and spintax. For those, Liquid's evaluation (a render context, a
# scope lookup per value, a filter call, an output buffer) is nearly all of what rendering
# costs, and the sender renders two templates for every message. Such a template is also kept
# as a list of pieces joined directly; whatever the pieces cannot say for certain (a value
# that is missing or is not text) is left to Liquid, so what is rendered is the same either
# way (tests/test_templates.py compares the two).


@dataclass(frozen=True, slots=True)
class _Value:
    name: str
    fallback: str | None  # the ``default`` filter's text, if it has one


@dataclass(frozen=True, slots=True)
class _Spin:
    index: int
    options: tuple[tuple[Any, ...], ...]


def _plain_value(node: OutputNode) -> _Value | None:
    expression = node.expression
    if not isinstance(expression, FilteredExpression) or not isinstance(expression.left, Path):
        return None
    segments = expression.left.path
    if len(segments) != 1 or not isinstance(segments[0], str):
        return None
    if not expression.filters:
        return _Value(segments[0], None)
    if len(expression.filters) != 1:
        return None
    only = expression.filters[0]
    arguments = only.args
    if only.name != "default" or len(arguments) != 1:
        return None
    if not isinstance(arguments[0], PositionalArgument):
        return None
    argument = arguments[0].value
    if not isinstance(argument, StringLiteral):
        return None
    return _Value(segments[0], argument.value)


def _plain(nodes: Iterable[Node]) -> tuple[Any, ...] | None:
    pieces: list[Any] = []
    for node in nodes:
        if isinstance(node, content_tag.ContentNode):
            pieces.append(node.text)
        elif isinstance(node, OutputNode):
            value = _plain_value(node)
            if value is None:
                return None
            pieces.append(value)
        elif isinstance(node, _SpinNode):
            options = [_plain(option.nodes) for option in node.options]
            if any(option is None for option in options):
                return None
            pieces.append(_Spin(node.index, tuple(o for o in options if o is not None)))
        else:
            return None
    return tuple(pieces)


def _render_plain(pieces: tuple[Any, ...], values: Mapping[str, object], seed: int) -> str | None:
    """The text, or None when Liquid must decide (a value missing, or neither text nor a
    number)."""
    out: list[str] = []
    for piece in pieces:
        kind = piece.__class__
        if kind is str:
            out.append(piece)
        elif kind is _Value:
            value = values.get(piece.name)
            if value.__class__ is str and value:
                out.append(value)  # type: ignore[arg-type]
            elif value.__class__ is int or value.__class__ is float:
                out.append(str(value))  # as Liquid writes numbers, and ``default`` keeps 0
            elif value is None and piece.fallback is not None:
                out.append(piece.fallback)
            else:
                return None
        else:
            chosen = piece.options[spin_choice(seed, piece.index, len(piece.options))]
            text = _render_plain(chosen, values, seed)
            if text is None:
                return None
            out.append(text)
    return "".join(out)


# --- rendering ------------------------------------------------------------------------------


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip(BLANK_CHARS))


def lead_values(
    standard: Mapping[str, object], custom_fields: Mapping[str, object] | None
) -> dict[str, object]:
    """The values a template sees: custom fields, then the standard fields over them, each
    only when it has a value (a standard field left empty lets a custom field of the same
    name show through). Longer values than the import accepts are cut to its limit."""
    values: dict[str, object] = {}
    for source in (custom_fields or {}), standard:
        for name, value in source.items():
            if value is None:
                continue
            if value.__class__ is str:
                if not value.strip(BLANK_CHARS):
                    continue
                if len(value) > MAX_LEAD_VALUE_CHARS:
                    value = value[:MAX_LEAD_VALUE_CHARS]
            values[name] = value
    return values


_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SUBJECT_BREAKS = re.compile(r"\s*[\t\r\n\u2028\u2029\x85]\s*")
_SUBJECT_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def render(
    compiled: CompiledTemplate,
    values: Mapping[str, object],
    lead_id: int,
    seq_number: int,
    variant_label: str,
) -> Rendered:
    """Render for one lead's values (from ``lead_values``); spintax choices follow the lead,
    the step and the variant. Raises ``RenderError``."""
    if compiled.plain is not None:
        seed = spin_seed(lead_id, seq_number, variant_label) if compiled.spins else 0
        text = _render_plain(compiled.plain, values, seed)
        if text is not None:
            return Rendered(_BODY_CONTROL.sub("", text) if _BODY_CONTROL.search(text) else text)
    state = _RenderState()
    reset = _STATE.set(state)
    try:
        if compiled.spins:
            seed = spin_seed(lead_id, seq_number, variant_label)
            text = compiled.template.render(values, **{_SEED_KEY: seed})
        else:
            text = compiled.template.render(values)
    except LiquidError as err:
        raise RenderError(_render_message(err)) from None
    except (RecursionError, MemoryError):
        raise RenderError("the template is too complex to render") from None
    finally:
        _STATE.reset(reset)
    if state.missing:
        return Rendered(None, tuple(sorted(set(state.missing))))
    if _BODY_CONTROL.search(text):
        text = _BODY_CONTROL.sub("", text)
    return Rendered(text)


def _render_message(err: LiquidError) -> str:
    message = str(err.message if err.message is not None else "the template failed")
    return message.rstrip(".") + "."


def one_line(text: str) -> str:
    """A subject: line breaks and tabs become one space, other control characters go."""
    return _SUBJECT_CONTROL.sub("", _SUBJECT_BREAKS.sub(" ", text)).strip()


def render_subject(
    compiled: CompiledTemplate,
    values: Mapping[str, object],
    lead_id: int,
    seq_number: int,
    variant_label: str,
) -> Rendered:
    """``render``, made one line (a subject is a header) and kept short."""
    rendered = render(compiled, values, lead_id, seq_number, variant_label)
    if rendered.text is None:
        return rendered
    subject = one_line(rendered.text)
    if len(subject) > MAX_RENDERED_SUBJECT_CHARS:
        raise RenderError(f"the subject is longer than {MAX_RENDERED_SUBJECT_CHARS} characters")
    return Rendered(subject)


def variant_for(
    lead_id: int, seq_number: int, labels: list[str], shares: list[int] | None = None
) -> str:
    """The variant of a step a lead is sent, the same every time: spread evenly, or with
    ``shares`` (percentages adding up to 100) each label's share of the leads."""
    if len(labels) == 1:
        return labels[0]
    seed = spin_seed(lead_id, seq_number, "")
    if shares is None:
        return labels[spin_choice(seed, 0, len(labels))]
    point = spin_choice(seed, 0, sum(shares))
    for label, share in zip(labels, shares, strict=True):
        if point < share:
            return label
        point -= share
    raise ValueError("the shares add up to nothing")


__all__ = [
    "ALLOWED_FILTERS",
    "ALLOWED_TAGS",
    "BLANK_CHARS",
    "MAX_BODY_CHARS",
    "MAX_SUBJECT_CHARS",
    "STANDARD_FIELDS",
    "CompiledTemplate",
    "RenderError",
    "Rendered",
    "TemplateSyntaxError",
    "compile_template",
    "is_blank",
    "lead_values",
    "one_line",
    "render",
    "render_subject",
    "spin_choice",
    "spin_seed",
    "variant_for",
]
