"""A report's sections, written as Markdown (report.md, the console) and as HTML (report.html)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from src.utils.errors import one_line
from src.utils.markdown import markdown_table


@dataclass
class Section:
    """A titled part of a report: text before its table, the table, a figure, text after."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    #: A PNG beside the report (its file name), shown under the table.
    figure: str | None = None


def markdown_cell(text: object) -> str:
    return one_line(text).replace("|", "\\|") or "-"


def to_markdown(sections: Sequence[Section], title: str) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        lines += [item for text in section.before for item in (text, "")]
        cells = ([markdown_cell(cell) for cell in row] for row in section.rows)
        lines += markdown_table(section.header, cells)
        lines.append("")
        lines += [item for text in section.after for item in (text, "")]
        if section.figure:
            lines += [f"![{section.title}]({section.figure})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escaped text, Markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def to_html(sections: Sequence[Section], title: str) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{_inline(text)}</p>" for text in section.before]
        parts.append("<table><tr>" + "".join(f"<th>{_inline(h)}</th>" for h in section.header))
        for row in section.rows:
            cells = "".join(f"<td>{html.escape(one_line(cell) or '-')}</td>" for cell in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
        parts += [f"<p>{_inline(text)}</p>" for text in section.after]
        if section.figure:
            source, text = html.escape(section.figure), html.escape(section.title)
            parts.append(f'<p><img src="{source}" alt="{text}"></p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
