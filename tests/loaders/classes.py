"""Classes the loader tests pickle: none of them is on the built-in safe list, so a test that
loads them admits them in its policy, by module (``tests.loaders.classes.*``) or by exact name.

Their ``__setstate__`` reach the operations the load sentinel stops, with values from the
pickled state, the way an allowlisted library class can (scipy.stats distributions ``exec`` a
string from their state).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import subprocess
import types
from pathlib import Path
from typing import Any


class Plain:
    """Inert: state in, state out."""

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return type(other) is Plain and other.value == self.value

    def __hash__(self) -> int:
        return hash(repr(self.value))


class Execs:
    """``exec`` of a string from the state (the scipy.stats pattern)."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        exec(self.code, {})


class WritesFile:
    """Writes the file its state names."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        Path(self.path).write_text("written while loading")


class Spawns:
    """Starts the command its state names."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        subprocess.run(self.argv, check=False)


class Connects:
    """Opens a socket to the address its state names (a callback that phones home)."""

    def __init__(self, port: int) -> None:
        self.port = port

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass


class SwallowsErrors:
    """Runs its state's command and hides any failure (a library that catches everything)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        with contextlib.suppress(Exception):  # the point of the class
            os.system(self.command)


class ImportsByName:
    """Imports the module its state names (whose import may have side effects of its own)."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        importlib.import_module(self.module)


# A module-level re-export of a dangerous callable under an innocent name, and a module object:
# what a package-wide allow entry could cover by accident.
launch = os.system
shell_module = os
Binder = types.MethodType
