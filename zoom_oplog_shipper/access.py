"""Who may use a state file or directory: the owner and mode behind a refusal, and the fix.

Every message about a state file this process cannot use says which file, whose it is, its mode and
what to do (`chown USER PATH`, or run as its owner); "free space" only when the system said the disk
is full (ENOSPC, EDQUOT). Run as root in a directory that belongs to another user (the agent's),
the files this program creates there are given to that user, as SQLite does for its -wal and -shm
files, so that a command run as root never leaves a file the agent cannot open.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

#: The errors that mean the disk (or the user's quota) is full, and nothing else.
SPACE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: The errors that mean this user may not do it.
PERMISSION_ERRORS = frozenset({errno.EACCES, errno.EPERM})


def user_name(uid: int) -> str:
    """The name of user ``uid`` (its number when it has none)."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def me() -> str:
    """The user this process runs as."""
    return user_name(os.geteuid())


def describe(path: Path) -> str:
    """``PATH belongs to USER (mode 0600)``; or that it cannot be looked at."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"{path} cannot be looked at ({exc.strerror})"
    return f"{path} belongs to {user_name(st.st_uid)} (mode {stat.S_IMODE(st.st_mode):04o})"


def nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (the directory a missing one would be made in)."""
    for candidate in (path, *path.parents):
        with suppress(OSError):
            candidate.stat()
            return candidate
    return Path(path.anchor or ".")


def blockers(directory: Path, files: Iterable[Path] = (), *, write: bool = True) -> list[Path]:
    """What keeps this user from using ``files`` in ``directory``: a directory above it that it cannot
    enter, else the directory itself (to enter, and to write: to create files in) and the existing
    files it cannot read or (to write) write."""
    for ancestor in reversed(directory.parents):
        if _denied(ancestor, os.X_OK):
            return [ancestor]
    found = _denied(directory, os.X_OK | (os.W_OK if write else 0))
    for path in files:
        found += _denied(path, os.R_OK | (os.W_OK if write else 0))
    return found


def _denied(path: Path, mode: int) -> list[Path]:
    """``[path]`` when it exists and this user may not use it in ``mode``, else ``[]``."""
    return [path] if os.access(path, os.F_OK) and not os.access(path, mode) else []


def ownership_fix(paths: list[Path]) -> str:
    """Whose ``paths`` are, their modes, and the fix: a chmod for this user's own, a chown (or running
    as their owner) for another user's."""
    uid = os.geteuid()
    mine: list[Path] = []
    theirs: list[tuple[Path, int]] = []
    for path in paths:
        with suppress(OSError):
            owner = path.stat().st_uid
            mine.append(path) if owner == uid else theirs.append((path, owner))
    who = me()
    fixes = [
        f"`chmod {mode} {' '.join(str(p) for p in group)}`"
        for mode, group in (("u+rwx", [p for p in mine if p.is_dir()]), ("u+rw", [p for p in mine if not p.is_dir()]))
        if group
    ]
    if theirs:
        names = " ".join(str(p) for p, _ in theirs)
        fixes.append(f"`chown {who} {names}` (as root), or run as {user_name(theirs[0][1])}")
    return f"{'; '.join(describe(p) for p in paths)}, and this process runs as {who}: {' and '.join(fixes)}"


def read_only_filesystem(path: Path) -> bool:
    """Whether ``path`` (or its nearest existing ancestor) is on a read-only mount."""
    try:
        return bool(os.statvfs(nearest_existing(path)).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def cause_and_fix(directory: Path, files: Iterable[Path], err: int | None, *, write: bool = True) -> str:
    """Why this process cannot use ``files`` in ``directory``, and the fix, from the error number and
    what the files look like; "free space" only for ENOSPC and EDQUOT."""
    if err in SPACE_ERRORS:
        return f"free space on the filesystem holding {directory}"
    if write and (err == errno.EROFS or read_only_filesystem(directory)):
        return f"{directory} is on a read-only filesystem: mount it read-write, or set --state-dir to a writable one"
    blocked = blockers(directory, files, write=write)
    if blocked:
        return ownership_fix(blocked)
    if err in PERMISSION_ERRORS:
        return f"fix the permissions of {directory} and the files in it ({describe(directory)})"
    return f"check the disk holding {directory} (the system log says more) and the permissions of {directory}"


def give_to_directory_owner(path: Path) -> None:
    """Run as root, give a file or directory just made in another user's directory to that user."""
    if os.geteuid() != 0:
        return
    with suppress(OSError):
        parent = path.parent.stat()
        if parent.st_uid != 0:
            os.chown(path, parent.st_uid, parent.st_gid, follow_symlinks=False)
