from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["learning"])

PAGE = files("app.api").joinpath("static/playground.html").read_text(encoding="utf-8")


@router.get("/playground", include_in_schema=False)
async def playground() -> HTMLResponse:
    """A single page that loads an example, lets the user edit it and shows every number (public API only)."""
    return HTMLResponse(PAGE)
