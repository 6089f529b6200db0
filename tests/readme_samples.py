"""The README's commands and console samples, as the test suite runs them (issue #16).

``python tests/readme_samples.py`` rewrites every console sample of README.md and README.zh-CN.md (a
```console block: ``$ vramscope ...`` lines, each followed by what it prints) with what the command prints
today: samples are regenerated, never edited by hand. ``--check`` only compares (exit 1 when a sample is stale).
``tests/test_readme.py`` runs every command of every code block and checks the samples the same way.

Commands run in-process (``vramscope.cli.main``), offline (``--no-hub`` where the command takes it), in a folder
that holds the files the README names: ``./my-model/`` (config.json and safetensors), a sharded
``./model.safetensors.index.json``, ``./llama-3-8b.Q4_K_M.gguf`` and the repository's ``examples/`` and
``validation/``.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READMES = (ROOT / "README.md", ROOT / "README.zh-CN.md")
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
#: commands that take --no-hub (the others never reach the Hub)
_HUB = ("estimate", "fit", "trace", "measure")


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """Every fenced code block: (language, text, offset of the text in the file)."""
    text = path.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), m.start(2)) for m in _BLOCK.finditer(text)]


def shell_commands(path: Path) -> list[list[str]]:
    """The vramscope commands of the bash blocks and of the console samples' ``$`` lines, as argv lists
    (``pip install ... && vramscope ...``: the vramscope part; comments dropped)."""
    out = []
    for lang, text, _ in blocks(path):
        if lang not in ("bash", "console"):
            continue
        for line in text.splitlines():
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            for part in line.split("&&"):
                argv = shlex.split(part, comments=True)
                if argv and argv[0] == "vramscope":
                    out.append(argv[1:])
    return out


def python_blocks(path: Path) -> list[str]:
    return [text for lang, text, _ in blocks(path) if lang == "python"]


def offline(argv: list[str]) -> list[str]:
    return argv + ["--no-hub"] if argv and argv[0] in _HUB and "--no-hub" not in argv else argv


def run(argv: list[str]) -> tuple[int, str]:
    """``vramscope ARGV`` in this process: its exit code and what it printed on stdout."""
    from vramscope.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            code = main(offline(argv))
        except SystemExit as e:  # argparse's own exits
            code = int(e.code or 0)
    return code, buf.getvalue()


def samples(path: Path) -> list[tuple[list[str], str, str]]:
    """Each console sample: (argv, the output the README shows, the output the command prints today)."""
    out = []
    for lang, text, _ in blocks(path):
        if lang != "console":
            continue
        for cmd, shown in _split_sample(text):
            code, printed = run(cmd)
            out.append((cmd, shown, printed))
    return out


def _split_sample(text: str) -> list[tuple[list[str], str]]:
    pieces: list[tuple[list[str], list[str]]] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("$ "):
            pieces.append((shlex.split(line[2:])[1:], []))
        elif pieces:
            pieces[-1][1].append(line)
    return [(argv, "".join(lines)) for argv, lines in pieces]


def regenerate(path: Path) -> bool:
    """Rewrite the console samples of ``path`` with today's output; True when something changed."""
    text = path.read_text(encoding="utf-8")

    def fresh(m: re.Match) -> str:
        if m.group(1) != "console":
            return m.group(0)
        body = "".join(f"$ {shlex.join(['vramscope', *argv])}\n{run(argv)[1]}" for argv, _ in _split_sample(m.group(2)))
        return f"```console\n{body}```"

    new = _BLOCK.sub(fresh, text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    if "--check" in argv:
        stale = [(p.name, " ".join(cmd)) for p in READMES for cmd, shown, now in samples(p) if shown != now]
        for name, cmd in stale:
            print(f"{name}: the sample of 'vramscope {cmd}' is stale; run python tests/readme_samples.py")
        return 1 if stale else 0
    for p in READMES:
        print(f"{p.name}: {'regenerated' if regenerate(p) else 'up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
