"""Which options users may change through the UI and the API: all of them, none (--freeze-settings), or all
but the folders (--hide-ui-dir-config), as A1111's flags of those names say. Changes the program makes
itself (the checkpoint it loaded, the extensions list) do not pass here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from webui.core.errors import UserError
from webui.services.option_table import PathOption
from webui.services.settings import Settings


class SettingsLocked(UserError):
    """A change to options the server's flags lock (HTTP 403)."""

    status_code = 403


@dataclass(frozen=True)
class OptionGuard:
    freeze_all: bool = False  # --freeze-settings
    freeze_paths: bool = False  # --hide-ui-dir-config

    def check(self, settings: Settings, names: Iterable[str]) -> None:
        """SettingsLocked naming the options of `names` the flags lock; nothing when all may change."""
        names = list(names)
        if self.freeze_all and names:
            raise SettingsLocked(
                f"Settings are frozen on this server (--freeze-settings): cannot change {', '.join(names)}"
            )
        folders = [name for name in names if isinstance(settings.option(name), PathOption)]
        if self.freeze_paths and folders:
            raise SettingsLocked(
                f"Folders cannot be changed on this server (--hide-ui-dir-config): {', '.join(folders)}"
            )
