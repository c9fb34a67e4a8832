"""Turning a rendered step into the email that goes out. Pure.

What goes into every message: threading headers for follow-ups, ``List-Unsubscribe`` with a
signed link and ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058), and an
unsubscribe footer. Unless the campaign's track settings say otherwise, an HTML message also
gets an open pixel and its links rewritten to go through the click endpoint. A plain-text
message (``send_as_plain_text``) has neither: there is nowhere to put a pixel, and a rewritten
address in plain text is what the reader sees (docs/sending.md).
"""

from __future__ import annotations

import binascii
import html
import os
import random
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import Header

DEFAULT_UNSUBSCRIBE_TEXT = "Unsubscribe"
ONE_CLICK = "List-Unsubscribe=One-Click"

_HTML_TAG = re.compile(
    r"</?(html|body|p|div|br|a|span|table|tr|td|b|i|u|strong|em|ul|ol|li|h[1-6]|img|font"
    r"|center|blockquote|hr)\b",
    re.IGNORECASE,
)
# An anchor's href: the attribute's value, quoted either way.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_TRACKABLE = re.compile(r"^https?://", re.IGNORECASE)
_BREAKS = re.compile(r"<\s*br\s*/?\s*>|</\s*(p|div|li|tr|h[1-6])\s*>", re.IGNORECASE)
_ANCHOR = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>(.*?)</\s*a\s*>""", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")
_BLANK_LINES = re.compile(r"\n{3,}")


def is_html(body: str) -> bool:
    return _HTML_TAG.search(body) is not None


def as_html(body: str, markup: bool) -> str:
    """The body as HTML: as written when it is HTML (``markup``), otherwise escaped, lines
    kept."""
    if markup:
        return body
    return html.escape(body).replace("\r\n", "\n").replace("\n", "<br>\n")


def as_text(body: str, markup: bool) -> str:
    """A plain-text rendering of the body: as it is when it is text, else the HTML's words (a
    link keeps its address beside its words)."""
    if not markup:
        return body

    def anchor(match: re.Match[str]) -> str:
        target, words = html.unescape(match.group(2)), _TAGS.sub("", match.group(3)).strip()
        return target if not words or html.unescape(words) == target else f"{words} ({target})"

    text = _ANCHOR.sub(anchor, body)
    text = _BREAKS.sub("\n", text)
    text = html.unescape(_TAGS.sub("", text))
    return _BLANK_LINES.sub("\n\n", text).strip()


def rewrite_links(
    body_html: str, click_url: Callable[[int], str], found: list[str] | None = None
) -> str:
    """Each trackable (http or https) anchor pointed at ``click_url(index)``, counting from 0
    in document order; the original links appended to ``found``, in that order."""
    index = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal index
        target = html.unescape(match.group(3))
        if not _TRACKABLE.match(target.strip()):
            return match.group(0)
        if found is not None:
            found.append(target)
        url = click_url(index)
        index += 1
        return f"{match.group(1)}{match.group(2)}{html.escape(url)}{match.group(2)}"

    return _HREF.sub(replace, body_html)


@dataclass(frozen=True)
class Draft:
    """A rendered step, addressed."""

    from_name: str
    from_email: str
    to_email: str
    to_name: str
    subject: str
    body: str
    # Whether the body is HTML, as its template was written: a lead's values must not turn a
    # text template into HTML (a value with tags would drop its lines and get its links
    # tracked), so this is never judged from the rendered body.
    body_is_html: bool
    message_id: str
    sent_at: datetime
    references: Sequence[str] = field(default_factory=tuple)  # earlier Message-IDs, oldest first


@dataclass(frozen=True)
class Tracking:
    unsubscribe_url: str
    unsubscribe_text: str | None
    plain_text: bool
    open_pixel_url: str | None = None
    click_url: Callable[[int], str] | None = None


# Message-IDs and boundaries need to be unique, not secret: the standard library's
# ``make_msgid`` uses the same generator, but asks the kernel for the process id each time.
_unique = random.Random()
_process = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _process.__setitem__(0, os.getpid()))


def new_message_id(from_email: str) -> str:
    """Unique, and names the process that sent it (which worker, when several run)."""
    domain = from_email.rpartition("@")[2] or "openlead.invalid"
    return f"<{time.time_ns():x}.{_process[0]}.{_unique.getrandbits(96):024x}@{domain}>"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def header_date(moment: datetime) -> str:
    """An RFC 5322 date in UTC, as ``email.utils.format_datetime`` writes it (without its
    locale-free detour through a time tuple)."""
    utc = moment.astimezone(UTC)
    return (
        f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year:04d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} +0000"
    )


def _footer_words(tracking: Tracking) -> str:
    """The campaign's text, or the default when it shows nothing: the footer cannot be turned
    off, and a link whose words are blank (white space, or only format characters such as a
    zero-width space) would be a way out nobody sees."""
    words = (tracking.unsubscribe_text or "").strip()
    if any(not c.isspace() and unicodedata.category(c) != "Cf" for c in words):
        return words
    return DEFAULT_UNSUBSCRIBE_TEXT


def _footer_text(tracking: Tracking) -> str:
    return f"{_footer_words(tracking)}: {tracking.unsubscribe_url}"


def _footer_html(tracking: Tracking) -> str:
    words = html.escape(_footer_words(tracking))
    return f'<br>\n<br>\n<a href="{html.escape(tracking.unsubscribe_url)}">{words}</a>'


def _parts(draft: Draft, tracking: Tracking, links: list[str]) -> tuple[str, str | None]:
    """The text part and, unless plain text, the HTML part (its rewritten links added to
    ``links``)."""
    text = f"{as_text(draft.body, draft.body_is_html)}\n\n{_footer_text(tracking)}\n"
    if tracking.plain_text:
        return text, None
    body = as_html(draft.body, draft.body_is_html)
    if tracking.click_url is not None:
        body = rewrite_links(body, tracking.click_url, links)
    body += _footer_html(tracking)
    if tracking.open_pixel_url is not None:
        pixel = html.escape(tracking.open_pixel_url)
        body += f'\n<img src="{pixel}" width="1" height="1" alt="" style="display:none">'
    return text, f"<html><body>\n{body}\n</body></html>\n"


# Header lines may be 998 characters long (RFC 5322); past this a value is folded.
_LONGEST_PLAIN_HEADER = 900
_LINE_BREAKS = re.compile(r"\r\n|\r|\n")


def _unstructured(value: str) -> str:
    """A header value: as it is when it is short ASCII, else as folded encoded words."""
    if "\r" in value or "\n" in value:
        raise ValueError("a header value cannot contain a line break")
    if value.isascii() and len(value) <= _LONGEST_PLAIN_HEADER:
        return value
    return Header(value, "utf-8", maxlinelen=76).encode(linesep="\r\n")


# A display name is quoted for RFC 5322's specials, and for white space that a phrase would
# fold into one space (a run, a tab, a space at either end), so that it reads back as given.
_SPECIALS = re.compile(r'[][\\()<>@,:;".]|\s\s|^\s|\s$|[^\S ]')
_QUOTED = re.compile(r'[\\"]')
# RFC 2047: a line that holds encoded words is at most 76 characters, each word at most 75.
_ENCODED_LINE = 76


def _address(header: str, name: str, address: str) -> str:
    """An address with its display name: quoted as it is when it is ASCII and fits on the
    line, else as encoded words folded onto lines of their own (as ``_unstructured``), so
    that no line of the message is longer than the 998 characters a server takes."""
    if "\r" in name or "\n" in name:
        raise ValueError("a name in an address cannot contain a line break")
    address.encode("ascii")  # never encoded: openlead.addresses takes ASCII addresses only
    if not name:
        return address
    # Text that reads as an encoded word ("=?utf-8?q?...?=") is encoded too, or a reader
    # would decode it into another name.
    if name.isascii() and "=?" not in name:
        phrase = _phrase(name)
        if len(phrase) + len(address) + 3 <= _LONGEST_PLAIN_HEADER:
            return f"{phrase} <{address}>"
    lines = Header(name, "utf-8", _ENCODED_LINE, header).encode(linesep="\r\n").split("\r\n")
    # The address goes after the last word, or on a line of its own when it would not fit.
    last = len(lines[-1]) + (len(header) + 2 if len(lines) == 1 else 0)
    fold = " " if last + len(address) + 3 <= _ENCODED_LINE else "\r\n "
    return "\r\n".join(lines) + f"{fold}<{address}>"


def _phrase(name: str) -> str:
    if not _SPECIALS.search(name):
        return name
    return '"' + _QUOTED.sub(r"\\\g<0>", name) + '"'


def _encoded_part(content: str, subtype: str) -> bytes:
    """A text part, quoted-printable (readable, and safe for any server)."""
    crlf = _LINE_BREAKS.sub("\r\n", content).encode()
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        + binascii.b2a_qp(crlf, istext=True)
    )


@dataclass(frozen=True)
class Composed:
    content: bytes
    links: list[str]  # the links that were rewritten to go through the click endpoint


def render(draft: Draft, tracking: Tracking) -> bytes:
    """The message, ready for DATA."""
    return compose(draft, tracking).content


def compose(draft: Draft, tracking: Tracking) -> Composed:
    """The message, ready for DATA: CRLF line ends, headers and parts written directly; and
    the links a click token may name, found as they are rewritten.

    The standard library's ``email`` package writes the same MIME, but spends more than a
    millisecond a message parsing back every header it is given; this writes what it would,
    with its encoders (``Header``, ``binascii.b2a_qp``), in a tenth of that
    (docs/performance.md).
    """
    headers = [
        f"From: {_address('From', draft.from_name, draft.from_email)}",
        f"To: {_address('To', draft.to_name, draft.to_email)}",
        f"Subject: {_unstructured(draft.subject)}",
        f"Date: {header_date(draft.sent_at)}",
        f"Message-ID: {draft.message_id}",
    ]
    if draft.references:
        headers.append(f"In-Reply-To: {draft.references[-1]}")
        headers.append("References: " + "\r\n ".join(draft.references))
    headers += [
        f"List-Unsubscribe: <{tracking.unsubscribe_url}>",
        f"List-Unsubscribe-Post: {ONE_CLICK}",
        "MIME-Version: 1.0",
    ]
    links: list[str] = []
    text, markup = _parts(draft, tracking, links)
    head = ("\r\n".join(headers) + "\r\n").encode()
    if markup is None:
        return Composed(head + _encoded_part(text, "plain"), links)
    # "=" is always encoded in quoted-printable, so no part can contain the boundary.
    boundary = f"=_openlead_{_unique.getrandbits(96):024x}"
    content = (
        head
        + f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
        + f"--{boundary}\r\n".encode()
        + _encoded_part(text, "plain")
        + f"\r\n--{boundary}\r\n".encode()
        + _encoded_part(markup, "html")
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return Composed(content, links)
