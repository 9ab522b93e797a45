"""Shared pieces of the organisation services: field types, row conversion, constraint
errors as domain errors, and SQL predicates for a caller's visibility."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import asyncpg
import msgspec

from hub.domain.access import Visibility
from hub.domain.errors import Conflict, NotFound

_T = TypeVar("_T")

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Id = Annotated[int, msgspec.Meta(ge=1)]


@contextmanager
def translated(fields: dict[str, str]) -> Iterator[None]:
    """asyncpg constraint errors → domain errors; ``fields`` maps constraint → field path."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        field = fields.get(exc.constraint_name or "")
        raise Conflict(f"already exists ({exc.constraint_name})", field=field) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        field = fields.get(exc.constraint_name or "")
        raise NotFound(f"a referenced record does not exist ({exc.detail})", field=field) from exc


def record(cls: type[_T], row: Any) -> _T:
    return msgspec.convert(dict(row), cls)


class VisibleScope:
    """SQL predicates for a :class:`Visibility`, with the arguments they bind."""

    def __init__(self, visible: Visibility, args: list[Any]) -> None:
        args.extend(
            [list(visible.region_ids), list(visible.hall_ids), list(visible.department_ids)]
        )
        n = len(args)
        self.regions, self.halls, self.departments = f"${n - 2}", f"${n - 1}", f"${n}"

    def under(self, path: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM region g WHERE g.id = ANY({self.regions}::bigint[]) "
            f"AND {path} LIKE g.path || '%')"
        )

    def hall(self, hall: str, path: str) -> str:
        return (
            f"({self.under(path)} OR {hall} = ANY({self.halls}::bigint[]) OR EXISTS ("
            f'SELECT 1 FROM "window" w WHERE w.hall_id = {hall} '
            f"AND w.department_id = ANY({self.departments}::bigint[])))"
        )

    def department(self, department: str, path: str) -> str:
        return (
            f"({self.under(path)} OR {department} = ANY({self.departments}::bigint[]) OR EXISTS ("
            f'SELECT 1 FROM "window" w WHERE w.department_id = {department} '
            f"AND w.hall_id = ANY({self.halls}::bigint[])))"
        )
