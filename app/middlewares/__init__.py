"""Middlewares: what every update passes through before a handler, and what they provide."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.chat import UserSettings
from app.services.users import UserContext


class MiddlewareData(TypedDict, total=False):
    """What our middlewares add to a handler's keyword arguments."""

    user: UserContext  # AccessMiddleware (outer): who is writing, and their rights
    session: AsyncSession  # DbSessionMiddleware (inner): one per handled event
    user_settings: UserSettings  # UserSettingsMiddleware (inner): persona, model, temperature
