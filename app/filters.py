"""Filters on who is writing and on which dialog a button belongs to."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from aiogram import Bot
from aiogram.filters import Filter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import StatesGroup
from aiogram.types import CallbackQuery, Message, TelegramObject
from pydantic import BaseModel, ValidationError

from app.domain.media import AudioFile, DocumentFile, ImageFile
from app.domain.rights import Right
from app.domain.users import UserContext
from app.fsm.personas import EditorData, EditPersonaDialog, NewPersonaData, NewPersonaDialog


class HasRight(Filter):
    """Passes when the user has the right. Set on the router groups assembled in
    app/handlers/__init__.py, the one place where features are tied to rights."""

    def __init__(self, right: Right | str) -> None:
        self.right = right

    async def __call__(self, event: TelegramObject, user: UserContext | None = None) -> bool:
        if user is None:
            return False
        if self.right in user.rights:
            return True
        # A plugin's right: granted, with chat (tool_rights holds only those in effect),
        # and every right for admins.
        return self.right in user.tool_rights or Right.ADMIN in user.rights

    def __str__(self) -> str:
        return f"HasRight({self.right})"


class ActiveDialog(Filter):
    """Passes an update only inside the given dialog and, for a button press, only from the
    dialog message open now and for the persona the dialog is about. Hands the handler the
    dialog's data, validated, under `data_name`. Put it after the callback data filter: old
    or forged buttons fall through to the router that says the button no longer works."""

    def __init__(self, group: type[StatesGroup], model: type[BaseModel], data_name: str) -> None:
        self.group = group
        self.model = model
        self.data_name = data_name

    async def __call__(
        self,
        event: TelegramObject,
        state: FSMContext,
        callback_data: CallbackData | None = None,
    ) -> bool | dict[str, Any]:
        current = await state.get_state()
        if current is None or current not in self.group.__all_states_names__:
            return False
        try:
            data = self.model.model_validate(await state.get_data())
        except ValidationError:
            return False
        if isinstance(event, CallbackQuery):
            message = event.message
            if message is None or message.message_id != getattr(data, "menu_id", None):
                return False
            expected = getattr(data, "persona_id", None)
            pressed = getattr(callback_data, "persona_id", None)
            if expected and pressed and expected != pressed:
                return False
        return {self.data_name: data}


def ActiveEditor() -> ActiveDialog:
    return ActiveDialog(EditPersonaDialog, EditorData, "editor")


def ActiveNewPersona() -> ActiveDialog:
    return ActiveDialog(NewPersonaDialog, NewPersonaData, "draft")


# What /audio/transcriptions reads, by the extension of the file name it is given.
AUDIO_EXTENSIONS = frozenset(
    {"flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"}
)
BY_MIME = {
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/webm": "webm",
}


def audio_of(message: Message) -> AudioFile | None:
    if message.voice is not None:  # always Ogg/Opus
        voice = message.voice
        return AudioFile(voice.file_id, voice.duration, voice.file_size, "voice.ogg")
    if message.video_note is not None:  # always MPEG-4
        note = message.video_note
        return AudioFile(note.file_id, note.duration, note.file_size, "video_note.mp4")
    if message.audio is not None:
        audio = message.audio
        name = audio.file_name or ""
        extension = PurePath(name).suffix.lstrip(".").lower()
        if extension not in AUDIO_EXTENSIONS:
            extension = BY_MIME.get((audio.mime_type or "").lower(), "mp3")
            name = f"audio.{extension}"
        return AudioFile(audio.file_id, audio.duration, audio.file_size, name)
    return None


class Spoken(Filter):
    """Passes a voice message, an audio file or a round video message, handing the handler
    the recording as `audio`."""

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        audio = audio_of(message)
        return False if audio is None else {"audio": audio}


def image_of(message: Message) -> ImageFile | None:
    """The image of a photo message (its largest size), or of an image sent as a file."""
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        return ImageFile(
            largest.file_id,
            largest.file_unique_id,
            largest.file_size,
            largest.width,
            largest.height,
            "image/jpeg",  # Telegram re-encodes every photo as JPEG
        )
    document = message.document
    if document is not None and (document.mime_type or "").lower().startswith("image/"):
        return ImageFile(
            document.file_id, document.file_unique_id, document.file_size, None, None, None
        )
    return None


class Pictured(Filter):
    """Passes a photo, or an image sent as a file, handing the handler the images: those of
    the whole album when the message opens one (`album`, from AlbumMiddleware)."""

    async def __call__(
        self, message: Message, album: list[Message] | None = None
    ) -> bool | dict[str, Any]:
        images = [image for part in album or [message] if (image := image_of(part))]
        return {"images": images} if images else False


def document_of(message: Message) -> DocumentFile | None:
    """The file of a message to be read (an image sent as a file is a photo: `image_of`)."""
    document = message.document
    if document is None or image_of(message) is not None:
        return None
    return DocumentFile(
        document.file_id,
        document.file_unique_id,
        document.file_size,
        document.file_name or "document",
        document.mime_type,
    )


class Document(Filter):
    """Passes a file to be read, handing the handler the file as `document`."""

    async def __call__(self, message: Message) -> bool | dict[str, Any]:
        document = document_of(message)
        return False if document is None else {"document": document}


GROUP_CHATS = frozenset({"group", "supergroup"})


def thread_of(message: Message) -> int | None:
    """The forum topic (of a group, or of a private chat in topic mode) the message is in."""
    return message.message_thread_id if message.is_topic_message else None


def question_to(message: Message, me: Any) -> str | None:
    """What a group message asks the bot (mention and command taken out), or None when it
    is not addressed to it. `me` is the bot's own User."""
    text = message.text or message.caption or ""
    entities = message.entities or message.caption_entities or []
    username = (me.username or "").lower()
    addressed = False
    cuts: list[tuple[int, int]] = []
    units = text.encode("utf-16-le")
    for entity in entities:
        start, end = entity.offset * 2, (entity.offset + entity.length) * 2
        piece = units[start:end].decode("utf-16-le", "ignore")
        if entity.type == "mention" and piece.lower() == f"@{username}":
            addressed = True
            cuts.append((start, end))
        elif entity.type == "text_mention" and entity.user is not None and entity.user.id == me.id:
            addressed = True
        elif entity.type == "bot_command" and entity.offset == 0:
            command, _, target = piece.partition("@")
            if command.lower() == "/ask" and (not target or target.lower() == username):
                addressed = True
                cuts.append((start, end))
    replied = message.reply_to_message
    # In a forum topic every message "replies" to the topic's first service message.
    if (
        replied is not None
        and replied.forum_topic_created is None
        and replied.from_user is not None
        and replied.from_user.id == me.id
    ):
        addressed = True
    if not addressed:
        return None
    for start, end in sorted(cuts, reverse=True):
        units = units[:start] + units[end:]
    return " ".join(units.decode("utf-16-le", "ignore").split())


# Commands a group takes besides /ask (which is a question): for the group's admins.
GROUP_COMMANDS = frozenset({"forget", "settings"})


def group_command(message: Message, me: Any) -> str | None:
    """The name of a group command (/forget, /forget@ThisBot) the message opens with."""
    text = message.text or ""
    for entity in message.entities or []:
        if entity.type == "bot_command" and entity.offset == 0:
            command, _, target = text[: entity.length].partition("@")
            name = command.lstrip("/").lower()
            username = (me.username or "").lower()
            if name in GROUP_COMMANDS and (not target or target.lower() == username):
                return name
    return None


class GroupCommand(Filter):
    """Passes the group command `name` meant for this bot."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, message: Message, bot: Bot) -> bool:
        return group_command(message, await bot.me()) == self.name
