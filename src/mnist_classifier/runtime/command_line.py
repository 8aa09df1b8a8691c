"""Commands the runs print for a user to paste (the resume command, a refused run dir's resume): a shell
line whose overrides Hydra reads back as they were meant. No torch here: the run-dir check uses it before
anything is loaded."""

from __future__ import annotations

import re
import shlex
from pathlib import Path


def override_key(override: str) -> str:
    """The key an override sets, less Hydra's `+`/`++`/`~` (`+callbacks.x.y=1` -> `callbacks.x.y`)."""
    return override.split("=", 1)[0].lstrip("+~")


def command_line(script: str, overrides: list[str]) -> str:
    """`python <script> <overrides>` as a user can paste it into a shell."""
    return shlex.join(["python", script, *overrides])


def override_value(path: str | Path) -> str:
    """A path as a Hydra override's value: quoted when Hydra would read it otherwise (a run dir named with
    '=', ',', brackets or spaces made the printed resume command an override parse error)."""
    text = str(path)
    # a plain ASCII path (not a name Hydra reads as 0 or null, nor a letter its lexer takes only quoted)
    if "/" in text and re.fullmatch(r"[\w/.+\-:@~%]+", text, re.ASCII):
        return text
    quote = '"' if '"' not in text else "'"
    # Hydra's quoted strings: a quote inside is escaped, and so are the backslashes before a quote or the end;
    # `${` would be an interpolation when the config is composed
    text = re.sub(rf"(\\+)(?={quote}|$)", lambda run: run.group(1) * 2, text).replace("${", "\\${")
    return quote + text.replace(quote, "\\" + quote) + quote
