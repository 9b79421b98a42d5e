"""Files named by ``path=`` (the stdio MCP server, the CLI), and what multi-tenant mode lets them read.

A ``path=`` upload is read by the server process, with the rights of the OS user that runs it.

- **Single-user mode** (the default): any file that user can read. The server is theirs.
- **Multi-tenant mode**: only regular files under ``ingest.path_folder``, where ``{tenant}`` stands
  for the caller's tenant slug (``/srv/tsunami-drops/{tenant}`` gives each tenant a folder of its
  own), and never a file inside the service's home or lakehouse (keys, other tenants' tables), even
  through a symbolic link. Anything else is refused with ``path_not_allowed`` (403); with
  ``path_folder`` empty (the default) every ``path=`` is, and files are sent as bytes instead.

The check is made on the opened file, not on its name: the file is opened without following a link
in its last part, the descriptor's own path (``/proc/self/fd``) is checked, and the upload reads
from that descriptor; a link swapped in after the check cannot redirect the read.
"""

from __future__ import annotations

import errno
import os
import pathlib
import stat
from typing import TYPE_CHECKING, BinaryIO

from servicetsunami.errors import InvalidInput, LimitExceeded, PathNotAllowed
from servicetsunami.tenancy import Principal

if TYPE_CHECKING:
    from servicetsunami.services.container import Services

_OFF = (
    "path= is not available in multi-tenant mode on this server; send the file's bytes in file_content "
    "(or ask the operator to set a drop folder per tenant, ingest.path_folder)"
)
_OUTSIDE = (
    "in multi-tenant mode path= reads only files in your tenant's drop folder (ingest.path_folder); "
    "move the file there or send its bytes in file_content"
)


def path_rule(svc: Services, principal: Principal, /) -> pathlib.Path | None:
    """The folder ``principal`` may read with ``path=`` in multi-tenant mode (None: path= is off)."""
    template = svc.settings.ingest.path_folder.strip()
    if not template:
        return None
    return pathlib.Path(template.replace("{tenant}", principal.tenant_slug)).expanduser().resolve()


def open_allowed(svc: Services, principal: Principal, path: pathlib.Path, limit: int, /) -> BinaryIO:
    """``path`` opened for reading when multi-tenant mode allows ``principal`` to read it; see the
    module docstring. Raises ``PathNotAllowed``, ``InvalidInput`` or ``LimitExceeded``."""
    folder = path_rule(svc, principal)
    if folder is None:
        raise PathNotAllowed(_OFF)
    name = pathlib.Path(path).expanduser()
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ELOOP and _inside(pathlib.Path(os.path.realpath(name)), folder):
            raise InvalidInput(f"{path} is not a readable file in your drop folder") from exc
        raise PathNotAllowed(_OUTSIDE) from exc  # outside: whether it exists is not said
    try:
        info = os.fstat(fd)
        opened = _opened_path(fd, path)
        if not stat.S_ISREG(info.st_mode) or not _inside(opened, folder) or _in_service_folders(svc, opened):
            raise PathNotAllowed(_OUTSIDE)
        if info.st_size > limit:
            raise LimitExceeded(f"the file is {info.st_size} bytes; the limit is {limit} bytes")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _opened_path(fd: int, path: pathlib.Path) -> pathlib.Path:
    link = pathlib.Path(f"/proc/self/fd/{fd}")
    if link.exists():
        return pathlib.Path(os.readlink(link))
    return pathlib.Path(os.path.realpath(path))  # no /proc: the name's resolution, checked just after opening


def _inside(path: pathlib.Path, folder: pathlib.Path) -> bool:
    return path.is_relative_to(folder) and path != folder


def _in_service_folders(svc: Services, path: pathlib.Path) -> bool:
    folders = [svc.settings.resolved_home, svc.settings.resolved_lakehouse_root]
    return any(path.is_relative_to(pathlib.Path(f).resolve()) for f in folders)
