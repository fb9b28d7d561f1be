"""Content negotiation: which of a route's media types a request's ``Accept`` header asks for (RFC 9110,
section 12.5.1): the one with the highest quality, the route's own order breaking ties; a more
specific range (``image/svg+xml``) sets a type's quality over a wider one (``image/*``, ``*/*``)."""

from __future__ import annotations

from collections.abc import Sequence

from app.api.http_errors import NotAcceptable


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """The media ranges of an Accept header: ``(type, subtype, q)``; an unreadable q is 1, a malformed range is skipped."""
    out = []
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 1.0
        out.append((kind, sub, q))
    return out


def _quality(media_type: str, ranges: list[tuple[str, str, float]]) -> float:
    """``media_type``'s quality: that of the most specific range matching it (0 when none does)."""
    kind, _, sub = media_type.partition("/")
    best, q = -1, 0.0
    for r_kind, r_sub, r_q in ranges:
        specificity = 2 if (r_kind, r_sub) == (kind, sub) else 1 if (r_kind, r_sub) == (kind, "*") else 0 if r_kind == r_sub == "*" else -1
        if specificity > best:
            best, q = specificity, r_q
    return q


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The media type of ``offered`` (the route's, its default first) that ``accept`` prefers; the default
    when there is no Accept header (or none that can be read); NotAcceptable when it excludes all."""
    ranges = _ranges(accept) if accept else []
    if not ranges:
        return offered[0]
    q, chosen = max((_quality(media, ranges), -i) for i, media in enumerate(offered))
    if q <= 0:
        raise NotAcceptable(accept or "", tuple(offered))
    return offered[-chosen]


def prefers(accept: str | None, media_type: str, over: str) -> bool:
    """Whether ``accept`` asks for ``media_type`` more than for ``over`` (the route's default): a route
    that offers a second encoding answers in it only when asked for it by name (or by a range that
    ranks it higher)."""
    return quality(accept, media_type) > quality(accept, over)


def quality(accept: str | None, media_type: str) -> float:
    """The quality ``accept`` gives ``media_type`` (1 when there is no Accept header)."""
    ranges = _ranges(accept) if accept else []
    return _quality(media_type, ranges) if ranges else 1.0
