"""Middlewares: what every update passes through before a handler, and what they provide."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from app.services.chat import UserSettings
from app.services.users import UserContext


class MiddlewareData(TypedDict, total=False):
    """What our middlewares add to a handler's keyword arguments."""

    session: AsyncSession  # DbSessionMiddleware (outer): one per message or button press
    user: UserContext  # AccessMiddleware (outer): who is writing, their rights and persona
    user_settings: UserSettings  # UserSettingsMiddleware (inner): persona, model, temperature
