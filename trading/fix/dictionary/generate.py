"""Generate the compact data-dictionary files shipped with the FIX engine.

The tables are derived from the FIX data dictionaries that QuickFIX publishes
as XML (``FIX42.xml`` and ``FIX44.xml``, installed with the ``quickfix``
Python package under ``share/quickfix``).  Those files are distributed under
the QuickFIX Software License (see ``LICENSE-QuickFIX.txt`` beside this
script): "This product includes software developed by quickfixengine.org
(http://www.quickfixengine.org/)."

Run once, when the dictionaries change::

    python -m trading.fix.dictionary.generate [--source DIR]

The engine itself reads only the generated ``fix42.json`` / ``fix44.json``;
it never needs the QuickFIX package at run time.
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = {"FIX42.xml": "fix42.json", "FIX44.xml": "fix44.json"}


def default_source() -> Path | None:
    candidates = [
        Path(sysconfig.get_path("data")) / "share" / "quickfix",
        Path(sys.prefix) / "share" / "quickfix",
    ]
    for c in candidates:
        if (c / "FIX44.xml").exists():
            return c
    return None


class _Builder:
    def __init__(self, root: ET.Element):
        self.root = root
        self.fields_by_name: dict[str, int] = {}
        self.fields: dict[int, list] = {}
        for f in root.find("fields"):
            tag = int(f.get("number"))
            name = f.get("name")
            values = [v.get("enum") for v in f.findall("value")]
            self.fields_by_name[name] = tag
            self.fields[tag] = [name, f.get("type"), values or None]
        self.components = {c.get("name"): c for c in root.find("components") or []}

    def block(self, elem: ET.Element, required_ctx: bool = True) -> dict:
        """Flatten a message/group/component body into ordered fields and groups."""
        out = {"fields": [], "required": [], "groups": {}}
        self._walk(elem, required_ctx, out)
        return out

    def _walk(self, elem: ET.Element, required_ctx: bool, out: dict) -> None:
        for child in elem:
            req = required_ctx and child.get("required") == "Y"
            if child.tag == "field":
                tag = self.fields_by_name[child.get("name")]
                out["fields"].append(tag)
                if req:
                    out["required"].append(tag)
            elif child.tag == "group":
                tag = self.fields_by_name[child.get("name")]
                out["fields"].append(tag)
                if req:
                    out["required"].append(tag)
                # fields inside a group are required relative to the group entry
                out["groups"][str(tag)] = self.block(child, True)
            elif child.tag == "component":
                comp = self.components[child.get("name")]
                self._walk(comp, req, out)

    def build(self) -> dict:
        r = self.root
        version = f"{r.get('type')}.{r.get('major')}.{r.get('minor')}"
        messages = {}
        for m in r.find("messages"):
            body = self.block(m)
            body["name"] = m.get("name")
            body["admin"] = m.get("msgcat") == "admin"
            messages[m.get("msgtype")] = body
        return {
            "version": version,
            "source": "QuickFIX data dictionary (quickfixengine.org), QuickFIX Software License 1.0",
            "fields": {str(k): v for k, v in sorted(self.fields.items())},
            "header": self.block(r.find("header")),
            "trailer": self.block(r.find("trailer")),
            "messages": messages,
        }


def generate(source: Path, dest: Path = HERE) -> list[Path]:
    written = []
    for xml_name, out_name in VERSIONS.items():
        root = ET.parse(source / xml_name).getroot()
        data = _Builder(root).build()
        path = dest / out_name
        path.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, default=None, help="folder holding FIX42.xml/FIX44.xml")
    args = p.parse_args(argv)
    source = args.source or default_source()
    if source is None:
        p.error("QuickFIX data dictionaries not found; pass --source")
    for path in generate(source):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
