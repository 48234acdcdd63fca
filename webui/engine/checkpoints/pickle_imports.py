"""What a pickled model file would import, read without unpickling it (pickletools only parses).

torch's weights-only loader refuses a hostile pickle but does not always say why (protocol 4+ pickles
fail on an opcode before their imports are seen); this names the functions such a file would call.
"""

from __future__ import annotations

import pickletools
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# Imports torch.save itself writes (tensor rebuilding, storages, OrderedDict) and plain numeric data.
_DATA_MODULES = ("torch", "collections", "numpy", "_codecs", "pytorch_lightning")
_STRING_OPCODES = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING"}
_STORE_OPCODES = {"BINPUT", "LONG_BINPUT", "PUT"}
_FETCH_OPCODES = {"BINGET", "LONG_BINGET", "GET"}
_NEUTRAL_OPCODES = {"MEMOIZE", "FRAME", "PROTO", *_STORE_OPCODES}  # push nothing


def code_imports(path: Path) -> list[str]:
    """The "module.name"s outside torch's own and plain data that the file's pickles import, in order.

    Only pickles that parse to their end count, so random bytes (a corrupt file) name nothing.
    """
    found: list[str] = []
    for name in _pickle_imports(path):
        if name.split(".")[0] not in _DATA_MODULES and name not in found:
            found.append(name)
    return found


def _pickle_imports(path: Path) -> Iterator[str]:
    if zipfile.is_zipfile(path):  # torch.save's format: the pickle is data.pkl inside the archive
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if member.endswith("data.pkl"):
                    with archive.open(member) as stream:
                        yield from _stream_imports(stream)
        return
    with open(path, "rb") as stream:  # a plain pickle, or torch's legacy format (pickles one after another)
        yield from _stream_imports(stream)


def _stream_imports(stream: IO[bytes]) -> Iterator[str]:
    while True:
        try:
            names = _one_pickle_imports(stream)
        except (ValueError, EOFError, OverflowError, UnicodeDecodeError, KeyError):
            return  # the end of the pickles, or bytes that are no pickle
        yield from names


def _one_pickle_imports(stream: IO[bytes]) -> list[str]:
    """The imports of the next whole pickle in `stream`; raises ValueError where it does not parse."""
    names: list[str] = []
    memo: dict[int, object] = {}
    pushed: list[object] = []  # the values pushed so far, as far as names need them (strings)
    for opcode, arg, _ in pickletools.genops(stream):
        if opcode.name == "GLOBAL":
            names.append(str(arg).replace(" ", "."))
        elif opcode.name == "STACK_GLOBAL" and len(pushed) >= 2:
            names.append(f"{pushed[-2]}.{pushed[-1]}")
        if opcode.name in _FETCH_OPCODES:
            pushed.append(memo.get(int(str(arg))))
        elif opcode.name == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif opcode.name in _STORE_OPCODES:
            memo[int(str(arg))] = pushed[-1] if pushed else None
        elif opcode.name not in _NEUTRAL_OPCODES:
            pushed.append(arg if opcode.name in _STRING_OPCODES else None)
    return names
