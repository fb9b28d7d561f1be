"""What an error can tell a client beyond "wrong": the fields that were meant, by name.

``fields_at(model, loc)`` walks a request model along an error's ``loc`` (field names and
list indices, as the client's body has them) and gives the field names valid there;
``did_you_mean(key, fields)`` picks the one an unknown key most likely meant, knowing the
names PyTorch users bring with them (``lr``, ``weight``, ``bias``, ...).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Tag

from app.schemas.base import quoted

# Names from torch, numpy-ml and common habit, for the field they mean here.
ALIASES = {
    "lr": "learning_rate",
    "learningrate": "learning_rate",
    "step_size": "learning_rate",
    "beta1": "betas",
    "beta2": "betas",
    "epsilon": "eps",
    "weight": "weights",
    "w": "weights",
    "bias": "biases",
    "b": "biases",
    "act": "activation",
    "activation_function": "activation",
    "nonlinearity": "activation",
    "x": "inputs",
    "input": "inputs",
    "data": "inputs",
    "y": "targets",
    "target": "targets",
    "labels": "targets",
    "criterion": "loss",
    "loss_fn": "loss",
    "epochs": "iterations",
    "steps": "iterations",
    "n_iterations": "iterations",
    "optim": "optimizer",
    "optimiser": "optimizer",
    "layer": "layers",
    "model": "network",
    "net": "network",
    "smoothing": "label_smoothing",
}


def _members(annotation: Any) -> list[Any]:
    """The types an annotation admits: Annotated and unions unwrapped, None dropped."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _members(arg)]
    return [] if annotation is type(None) else [annotation]


def _child(annotation: Any, part: str | int) -> list[Any]:
    found: list[Any] = []
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel) and isinstance(part, str):
            field = member.model_fields.get(part)
            if field is not None:
                found.append(field.annotation)
        elif typing.get_origin(member) in (list, tuple, Sequence) and isinstance(part, int):
            args = typing.get_args(member)
            found.extend(args[:1] if typing.get_origin(member) is not tuple else args[part : part + 1])
        elif typing.get_origin(member) is dict and isinstance(part, str) and typing.get_args(member):
            found.append(typing.get_args(member)[1])  # a key of a dict[str, X] (a state_dict's)
    return found


def fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> set[str]:
    """The field names of the object(s) at ``loc`` in a ``model`` body (empty if none is known there)."""
    annotations: list[Any] = [model]
    for part in loc:
        annotations = [child for a in annotations for child in _child(a, part)]
    return {name for a in annotations for m in _members(a) if isinstance(m, type) and issubclass(m, BaseModel) for name in m.model_fields}


def did_you_mean(key: str, fields: set[str]) -> str | None:
    """The field ``key`` most likely meant, or None."""
    folded = key.strip().lower().replace("-", "_")
    if folded in fields and folded != key:
        return folded
    alias = ALIASES.get(folded)
    if alias in fields:
        return alias
    close = difflib.get_close_matches(folded, sorted(fields), n=1, cutoff=0.7)
    return close[0] if close else None


def _tag_member(annotation: Any, part: str) -> Any | None:
    """The member of a union (under Annotated layers) marked ``Tag(part)`` (a callable Discriminator's), if any."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        if any(isinstance(m, Tag) and m.tag == part for m in annotation.__metadata__):
            return annotation
        return _tag_member(typing.get_args(annotation)[0], part)
    if origin in (typing.Union, types.UnionType):
        return next((m for arg in typing.get_args(annotation) if (m := _tag_member(arg, part)) is not None), None)
    return None


def _tagged_member(annotations: list[Any], part: str) -> Any | None:
    """The union member that ``part`` is the tag of (a model with a Literal field of that value, or a type
    marked ``Tag(part)``), if any."""
    for a in annotations:
        tagged = _tag_member(a, part)
        if tagged is not None:
            return tagged
        for m in _members(a):
            if isinstance(m, type) and issubclass(m, BaseModel):
                for field in m.model_fields.values():
                    if typing.get_origin(field.annotation) is typing.Literal and part in typing.get_args(field.annotation):
                        return m
    return None


def body_loc(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """``loc`` as a path into the body: the tags pydantic puts in the locations of a discriminated
    union's errors (``("optimizer", "sgd", "learning_rate")``) are not in the body, so they go."""
    annotations: list[Any] = [model]
    path: list[str | int] = []
    for part in loc:
        children = [child for a in annotations for child in _child(a, part)]
        if not children and isinstance(part, str):
            member = _tagged_member(annotations, part)
            if member is not None:
                annotations = [member]
                continue
        path.append(part)
        annotations = children
    return tuple(path)


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in its number: "1 value", "2 values", "1 class", "3 classes"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


# A matrix given as one flat array, by the field it was meant for: what to write instead.
_FLAT_MATRIX = {
    "inputs": "inputs must be 2-D [batch][in], one row per sample: wrap a single sample in [] ([[0.7, 0.3]], not [0.7, 0.3])",
    "weights": "weights must be 2-D [out][in], one row per unit: a layer of one unit is [[w1, w2, ...]]",
    "targets": "targets must be 2-D [batch][out], one row per sample: wrap a single sample's targets in [] "
    "(a flat array of class indices is for cross_entropy only)",
}
# Keys of client input longer than this are cut in a location (a 1 MB unknown key stays a short answer).
LOC_KEY_LIMIT = 64


def _short(part: str | int) -> str | int:
    return part if isinstance(part, int) else quoted(part, LOC_KEY_LIMIT)


def readable(errors: list[dict[str, Any]], model: type[BaseModel]) -> list[dict[str, Any]]:
    """pydantic's ``errors`` for a ``model`` body, said as a client can act on them.

    Every ``loc`` becomes a path into the body (no union tags, long keys cut); an unknown key
    names the field it most likely meant and the fields allowed there; an array of numbers
    where rows belong (a 1-D ``inputs``) is one error saying how to write it, not one per number.
    """
    out: list[dict[str, Any]] = []
    flat: set[tuple[str | int, ...]] = set()
    for error in errors:
        loc = body_loc(model, error["loc"])
        kind, value = error["type"], error.get("input")
        if kind == "list_type" and loc and isinstance(loc[-1], int) and type(value) in (int, float):
            parent = loc[:-1]
            if parent not in flat:
                flat.add(parent)
                name = next((p for p in reversed(parent) if isinstance(p, str)), "this field")
                message = _FLAT_MATRIX.get(name, f"{name} must be 2-D, an array of rows, but is an array of numbers")
                out.append({"type": "not_2d", "loc": tuple(map(_short, parent)), "msg": message, "input": None})
            continue
        if kind == "extra_forbidden" and loc and isinstance(loc[-1], str):
            fields = fields_at(model, loc[:-1])
            hint = did_you_mean(loc[-1], fields)
            message = f"{_short(loc[-1])!r} is not a field here" + (f"; did you mean {hint!r}?" if hint else "")
            if fields:
                message += f" (the fields here: {', '.join(sorted(fields))})"
            out.append({"type": "unknown_field", "loc": tuple(map(_short, loc)), "msg": message, "input": None})
            continue
        out.append({**error, "loc": tuple(map(_short, loc))})
    return out
