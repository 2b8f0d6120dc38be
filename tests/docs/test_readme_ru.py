"""README.ru.md stays in step with README.md: every `bookmix ...` command and `make` target in its code blocks is one
the English README shows (so a renamed command or flag fails here), and the English README links to it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def code_commands(markdown: str) -> tuple[list[str], list[str]]:
    """(bookmix command lines, make targets) of a markdown text's fenced code blocks, comments and prompts removed,
    whitespace collapsed."""
    commands, targets = [], []
    for block in FENCE.findall(markdown):
        for raw in block.splitlines():
            line = re.sub(r"^\S+\$\s+", "", raw.strip())  # "head$ ray start ..." → "ray start ..."
            line = re.sub(r"\s+#.*$", "", line)
            line = " ".join(line.split())
            if line.startswith("bookmix "):
                commands.append(line)
            elif line.startswith("make "):
                targets.extend(line.split()[1:])
    return commands, targets


def test_every_russian_command_is_in_the_english_readme():
    ru_commands, ru_targets = code_commands((REPO / "README.ru.md").read_text(encoding="utf-8"))
    en_commands, en_targets = code_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(ru_commands) >= 20 and ru_targets  # the tour, the campaign, the estimate, the export are all there
    missing = [c for c in ru_commands if c not in en_commands]
    assert not missing, f"README.ru.md shows commands README.md does not: {missing}"
    assert set(ru_targets) <= set(en_targets), set(ru_targets) - set(en_targets)
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for target in ru_targets:
        assert re.search(rf"^{re.escape(target)}:", makefile, re.M), f"make {target}: no such target in the Makefile"


def test_the_english_readme_links_to_the_russian_one():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.search(r"\]\(README\.ru\.md\)", text)
    back = (REPO / "README.ru.md").read_text(encoding="utf-8")
    assert re.search(r"\]\(README\.md\)", back)


def test_the_parser_sees_a_changed_flag():
    en = "```bash\nbookmix run PIPE --plan   # forecast\nmake demo\n```\n"
    ru = "```bash\nbookmix run PIPE --plans\n```\n"
    assert code_commands(en) == (["bookmix run PIPE --plan"], ["demo"])
    assert code_commands(ru)[0][0] not in code_commands(en)[0]
