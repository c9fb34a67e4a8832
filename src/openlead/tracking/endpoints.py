"""The public endpoints an email's links lead to: no API key, a signed token instead.

They live at the root (``/u/…``, ``/t/o/…``, ``/t/c/…``), not under ``/api/v1``: short links
in every email, and nothing of the API's path in them. A token that is not one this
installation signed, or (for an open or a click) names an email that did not go out or whose
campaign was deleted, is a ``404`` and changes nothing. An unsubscribe link works as long as
its lead exists.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from openlead.tracking import service
from openlead.tracking.tokens import Purpose, Token, read
from openlead.web.deps import PublicWriteConn
from openlead.web.errors import NotFound

router = APIRouter(tags=["tracking"])
# No length limit: a token of any other length is a link that does not exist (404), as a
# forged one is; the request line itself is bounded by the HTTP server.
TokenText = Annotated[str, Path(min_length=1)]
# The smallest transparent GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}


def _token(request: Request, text: str, purpose: Purpose) -> Token:
    token = read(request.app.state.vault, text, purpose)
    if token is None:
        raise NotFound("Link")
    return token


def _page(message: str) -> HTMLResponse:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Unsubscribed</title>"
        "<meta name='viewport' content='width=device-width'></head>"
        f"<body style='font-family:sans-serif;margin:3em'><p>{html.escape(message)}</p>"
        "</body></html>"
    )
    return HTMLResponse(body, headers=NO_STORE)


# Declared per route rather than with ``response_class``, which would document the errors'
# JSON as that type too.
_HTML = {200: {"content": {"text/html": {}}, "description": "A page for the reader"}}
_GIF = {200: {"content": {"image/gif": {}}, "description": "A transparent 1x1 GIF"}}
_REDIRECT = {302: {"description": "To the link of the email", "content": {}}}
_EMPTY = {200: {"description": "Unsubscribed", "content": {}}}


@router.get("/u/{token}", responses=_HTML)
async def unsubscribe_page(
    token: TokenText, request: Request, conn: PublicWriteConn
) -> HTMLResponse:
    """The footer's link: unsubscribes the address from every campaign of the sender."""
    email = await service.unsubscribed(conn, _token(request, token, Purpose.UNSUBSCRIBE).email)
    return _page(f"{email} is unsubscribed and will not receive further emails from us.")


@router.post("/u/{token}", responses=_EMPTY)
async def unsubscribe_one_click(
    token: TokenText, request: Request, conn: PublicWriteConn
) -> Response:
    """RFC 8058 one-click unsubscribe (the mail client posts ``List-Unsubscribe=One-Click``)."""
    await service.unsubscribed(conn, _token(request, token, Purpose.UNSUBSCRIBE).email)
    return Response(status_code=200, headers=NO_STORE)


@router.get("/t/o/{token}", responses=_GIF)
async def open_pixel(token: TokenText, request: Request, conn: PublicWriteConn) -> Response:
    await service.opened(conn, _token(request, token, Purpose.OPEN).email)
    return Response(PIXEL, media_type="image/gif", headers=NO_STORE)


@router.get("/t/c/{token}", status_code=302, responses=_REDIRECT)
async def click(token: TokenText, request: Request, conn: PublicWriteConn) -> RedirectResponse:
    """Redirects to the link of that email the token names, and to nothing else."""
    parsed = _token(request, token, Purpose.CLICK)
    target = await service.clicked(conn, parsed.email, parsed.link)
    return RedirectResponse(target, status_code=302, headers=NO_STORE)
