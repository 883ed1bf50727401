#!/usr/bin/env python3
"""Writes docs/api/c.md, the reference of the C API, from the doc comments of include/liner.h.

    python3 docs/api/gen_c_api.py           # (re)writes docs/api/c.md
    python3 docs/api/gen_c_api.py --check   # exit 1 if docs/api/c.md is not what it would write

The header is the source of truth: every `/** ... */` comment documents the declarations that
follow it (up to the next blank line); `/* ---- title ---- */` lines start sections; the file's
first comment is the introduction. `npm run docs` runs this script after TypeDoc.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HEADER = os.path.join(ROOT, "include", "liner.h")
OUTPUT = os.path.join(HERE, "c.md")


def comment_text(lines):
    """The text of a /* */ or /** */ comment, without the stars, dedented."""
    out = []
    for line in lines:
        s = line.strip()
        s = re.sub(r"^/\*\*?", "", s)
        s = re.sub(r"\*/$", "", s)
        s = re.sub(r"^\* ?", "", s) if not line.strip().startswith("/*") else s.lstrip()
        out.append(s.rstrip())
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def render_doc(text):
    """Doc-comment lines to Markdown: each @param/@return becomes a list item where it stands
    (its indented continuation lines joined to it); the rest stays prose."""
    md = []
    in_tag = False
    for line in text:
        m = re.match(r"@(param|return)\s*(.*)", line)
        if m:
            if md and md[-1] and not in_tag:
                md.append("")  # a list after prose
            kind, rest = m.groups()
            if kind == "param":
                name, _, desc = rest.partition(" ")
                md.append("- `%s`: %s" % (name.strip(), desc.strip()))
            else:
                md.append("- returns: %s" % rest.strip())
            in_tag = True
        elif in_tag and line.startswith(" ") and line.strip():
            md[-1] += " " + line.strip()
        else:
            if in_tag and line:
                md.append("")  # prose after a list
            in_tag = False
            md.append(line)
    # Underlined headings ("General rules" / "----") become Markdown headings.
    out = []
    for line in md:
        if out and re.fullmatch(r"-{3,}", line) and out[-1].strip():
            out[-1] = "### " + out[-1]
            out.append("")
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def names_of(decl):
    """The symbols a declaration introduces (function, typedef, enum constants)."""
    found = re.findall(r"\b(lnr_\w+|LNR_\w+)\s*\(", decl)
    found += re.findall(r"\(\s*\*\s*(lnr_\w+)\s*\)", decl)
    found += re.findall(r"typedef\s+(?:struct\s+\w+\s*\{[\s\S]*\}\s*)?[\w\s\*]*?\b(lnr_\w+|BOOL)\s*;", decl)
    found += re.findall(r"^\s*(LNR_[A-Z_]+)\s*=", decl, re.M)
    found += re.findall(r"typedef enum (BOOL)\b", decl)
    seen, out = set(), []
    for n in found:
        if n not in seen and n != "LNR_API":
            seen.add(n)
            out.append(n)
    return out


def parse(source):
    """[(kind, payload)]: ('intro', lines), ('section', title), ('entry', (doc, decl))."""
    lines = source.split("\n")
    items = []
    i = 0
    intro_done = False
    doc = None
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s.startswith("/*"):
            block = [line]
            while "*/" not in lines[i]:
                i += 1
                block.append(lines[i])
            i += 1
            section = re.match(r"/\*\s*-+\s*(.*?)\s*-+\s*\*/", s)
            if section:
                items.append(("section", section.group(1)))
                doc = None
            elif not intro_done:
                items.append(("intro", comment_text(block)))
                intro_done = True
            else:
                doc = comment_text(block)
            continue
        if not s or s.startswith("#") or s in ("}", "extern \"C\" {") or s.startswith("}"):
            if not s:
                doc = None if doc is not None and items and items[-1][0] == "entry" else doc
            i += 1
            continue
        # A declaration: up to the ';' that ends it (enum and struct bodies included).
        decl = [line]
        depth = line.count("{") - line.count("}")
        while not (decl[-1].rstrip().endswith(";") and depth <= 0):
            i += 1
            decl.append(lines[i])
            depth += lines[i].count("{") - lines[i].count("}")
        i += 1
        text = "\n".join(decl)
        if items and items[-1][0] == "entry" and doc is None and not (i - len(decl) - 2 >= 0 and not lines[i - len(decl) - 1].strip()):
            items[-1][1][1].append(text)  # undocumented declaration right after documented ones
        else:
            items.append(("entry", (doc or [], [text])))
        doc = None
    return items


def render(items):
    out = [
        "# C API reference",
        "",
        "<!-- Generated from include/liner.h by docs/api/gen_c_api.py: edit the header, then run",
        "     `npm run docs` (or `python3 docs/api/gen_c_api.py`). test/docs checks it is current. -->",
        "",
        "Everything below is the documentation of [`include/liner.h`](../../include/liner.h), the",
        "header of `libliner_broker`. See [bindings](../bindings.md) for how to build and link, and",
        "[errors and logging](../errors-and-logging.md) for the error codes in context.",
        "",
    ]
    toc = []
    body = []
    for kind, payload in items:
        if kind == "intro":
            text = [line for line in payload if not line.startswith("liner.h -")]
            while text and not text[0]:
                text.pop(0)
            body += ["## Overview", ""] + render_doc(text) + [""]
        elif kind == "section":
            body += ["## " + payload, ""]
        else:
            doc, decls = payload
            names = [n for d in decls for n in names_of(d)]
            title = ", ".join("`%s`" % n for n in names[:6]) if names else "declarations"
            if any(d.lstrip().startswith("enum") for d in decls) and names:
                title = "constants `%s` … `%s`" % (names[0], names[-1])
            body += ["### " + title, ""]
            toc.append(title)
            body += ["```c"] + [re.sub(r"\bLNR_API ", "", d) for d in decls] + ["```", ""]
            rendered = render_doc(doc)
            if rendered:
                body += rendered + [""]
    return "\n".join(out + body).rstrip() + "\n"


def main(argv):
    with open(HEADER, encoding="utf-8") as f:
        text = render(parse(f.read()))
    if "--check" in argv:
        try:
            with open(OUTPUT, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = ""
        if current != text:
            print("docs/api/c.md is out of date with include/liner.h: run `python3 docs/api/gen_c_api.py`",
                  file=sys.stderr)
            return 1
        return 0
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
