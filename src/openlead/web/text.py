"""Constrained string types for request bodies."""

from typing import Annotated

from pydantic import StringConstraints

# One line of text: no control characters at all (a CR/LF in a name ends up in a header), C1
# controls (U+0085 NEL) and U+2028/U+2029 included, since some parsers split lines on them.
_CONTROL = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
NO_CONTROL = rf"^[^{_CONTROL}]*$"
# A name: one line, and at least one character that is not white space.
NAME = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# Anything but NUL, which no database column can hold.
NO_NUL = r"^[^\x00]*$"
# Free text may break lines and tab, but carries no other control characters.
FREE_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
# A host name or an IP address, as a resolver takes it: nothing that could carry a second
# command or header.
HOST = r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,252}[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]{2,45}\]?$"
# A time of day, "HH:MM" from 00:00 to 23:59, or 24:00 for the end of the day.
CLOCK = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"


def line(max_length: int) -> type[str]:
    return Annotated[str, StringConstraints(max_length=max_length, pattern=NO_CONTROL)]  # type: ignore[return-value]


def text(max_length: int) -> type[str]:
    return Annotated[str, StringConstraints(max_length=max_length, pattern=FREE_TEXT)]  # type: ignore[return-value]
