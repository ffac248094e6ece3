"""Who may read which document: rules from a TOML file, resolved per document at index time.

    # access.toml
    default = "deny"            # documents no rule names: "deny" (nobody but the server's admins,
                                # i.e. the CLI) or "allow" (everyone who may use the search)
    [[rule]]
    folders = ["hr", "board"]   # folders relative to the indexed folder
    groups = ["hr"]
    [[rule]]
    paths = ["policies/*.pdf", "*/public/*"]   # globs over the path relative to the indexed folder
    groups = ["*"]              # "*": everyone who may use the search

The first rule that matches a document decides its groups. A file reached by more than one path
(a symbolic link and its target, the names of a hard-linked file) gets only the groups that every
one of its paths gives: the stricter result (groups_for_all). A document's resolved groups are stored
with it; every read path (search, snippets, counts, downloads, status) keeps only the documents
whose groups meet the reader's.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import SbsearchError

EVERYONE = "*"


def intersect_groups(a: list[str], b: list[str]) -> list[str]:
    """Readers allowed by both lists: "*" (everyone) is the whole set, [] is nobody."""
    if EVERYONE in a:
        return list(b)
    if EVERYONE in b:
        return list(a)
    return [g for g in a if g in b]


@dataclass(frozen=True)
class Rule:
    paths: tuple[str, ...]
    folders: tuple[str, ...]
    groups: tuple[str, ...]

    def matches(self, relpath: str) -> bool:
        return (any(fnmatch.fnmatchcase(relpath, glob) for glob in self.paths)
                or any(relpath.startswith(folder.strip("/") + "/") for folder in self.folders))


@dataclass(frozen=True)
class AccessRules:
    default_allow: bool
    rules: tuple[Rule, ...]
    source: str = ""

    def groups_for(self, relpath: str) -> list[str]:
        """The groups that may read the document at this path (relative to its indexed folder)."""
        for rule in self.rules:
            if rule.matches(relpath):
                return list(rule.groups)
        return [EVERYONE] if self.default_allow else []

    def groups_for_all(self, relpaths: list[str]) -> list[str]:
        """The groups that may read a file under every one of these paths (a link and its target,
        the names of a hard link): the groups all of them give, "*" giving way to any list."""
        groups = self.groups_for(relpaths[0])
        for relpath in relpaths[1:]:
            groups = intersect_groups(groups, self.groups_for(relpath))
        return groups

    @classmethod
    def load(cls, path: Path) -> "AccessRules":
        """Read and check a rules file; anything unclear is refused (one line), never guessed."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SbsearchError(f"access rules file {path} is missing (the index keeps its previous rules)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SbsearchError(f"cannot read access rules {path}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SbsearchError(f"access rules {path}: {exc}") from None
        default = data.get("default")
        if default not in ("allow", "deny"):
            raise SbsearchError(f'access rules {path}: say default = "allow" or default = "deny" at the top')
        unknown = set(data) - {"default", "rule"}
        if unknown:
            raise SbsearchError(f"access rules {path}: unknown setting(s) {', '.join(sorted(unknown))}")
        rules = []
        for n, raw in enumerate(data.get("rule", []), start=1):
            if not isinstance(raw, dict) or set(raw) - {"paths", "folders", "groups"}:
                raise SbsearchError(f"access rules {path}: rule {n} may only have paths, folders and groups")
            paths, folders, groups = (raw.get(k, []) for k in ("paths", "folders", "groups"))
            for name, value in (("paths", paths), ("folders", folders), ("groups", groups)):
                if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                    raise SbsearchError(f"access rules {path}: rule {n}: {name} must be a list of names")
            if not paths and not folders:
                raise SbsearchError(f"access rules {path}: rule {n} names no paths or folders")
            if not groups:
                raise SbsearchError(f"access rules {path}: rule {n} names no groups (use default = \"deny\" instead)")
            rules.append(Rule(tuple(paths), tuple(folders), tuple(groups)))
        return cls(default == "allow", tuple(rules), str(path))
