"""Path identifiers: integers in the database's range, so a huge id is a 400, never a 500.

Routes spell them ``{name:int}``: a path segment that is not digits matches no route (404),
so ``GET /campaigns/create`` is a 405 for the ``POST /campaigns/create`` route rather than a
campaign id that failed to parse, and a literal route added beside an id route can never be
shadowed by it.
"""

from typing import Annotated

from fastapi import Path

ObjectId = Annotated[int, Path(ge=1, le=2**62)]
