"""Who is acting: the caller of an action or a query."""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from server.domain.values import Role


class ActorKind(StrEnum):
    AGENT = "agent"  # a person, through a browser session or a personal API token
    SYSTEM = "system"  # the server itself: CLI, demo, scheduler


@dataclasses.dataclass(frozen=True, kw_only=True)
class Actor:
    """An authenticated caller, sealed to one workspace.

    `session_id` / `token_id` say which credential authenticated it, so that
    revoking that credential can end exactly the sockets that used it.
    """

    kind: ActorKind
    workspace_id: int
    agent_id: int | None = None
    role: Role | None = None
    session_id: int | None = None
    token_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind is ActorKind.SYSTEM or self.role is Role.ADMIN


def system_actor(workspace_id: int) -> Actor:
    """The server acting on its own (CLI, demo data, scheduled work)."""
    return Actor(kind=ActorKind.SYSTEM, workspace_id=workspace_id)
