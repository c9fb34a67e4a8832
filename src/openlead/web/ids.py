"""Path identifiers: integers in the database's range, so a huge id is a 404, never a 500."""

from typing import Annotated

from fastapi import Path

ObjectId = Annotated[int, Path(ge=1, le=2**62)]
