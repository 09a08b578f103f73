"""The report as a list of blocks, and the two ways it is written: PDF (reportlab) and HTML.

A report is built once as plain blocks (:class:`Heading`, :class:`Text`,
:class:`Table`, :class:`Figure`, :class:`PageBreak`); :func:`write_pdf` lays them
out with reportlab's platypus and :func:`write_html` writes the same blocks as one
self-contained HTML file. Neither needs a system library: reportlab and pypdf are
pure pip packages, and the fonts are the DejaVu fonts that matplotlib ships.

Text is real text in both (searchable, copyable), tables are real tables (long ones
split across pages and repeat their header), and figures stay vector: each
matplotlib figure is saved as a one-page PDF and stamped onto the report page where
platypus left room for it (pypdf), or inlined as SVG in the HTML.

Text blocks take plain strings; ``**bold**`` and ``*italic*`` are the only markup,
everything else is escaped, so names such as ``nli>qa`` print as written.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

__all__ = ["TEXT_WIDTH_IN", "Block", "Figure", "Heading", "PageBreak", "Table", "Text", "write_html", "write_pdf"]

# A4 with 18 mm margins: the width figures are drawn at, so that their fonts print at size.
_PAGE_W_PT, _PAGE_H_PT = 595.2756, 841.8898
_MARGIN_PT = 18 / 25.4 * 72
TEXT_WIDTH_IN = (_PAGE_W_PT - 2 * _MARGIN_PT) / 72
TEXT_HEIGHT_IN = (_PAGE_H_PT - 2 * _MARGIN_PT - 24) / 72  # less the footer


@dataclass
class Heading:
    """A section (level 1) or subsection (level 2) title."""

    text: str
    level: int = 1


@dataclass
class Text:
    """A paragraph. ``style``: ``body``, ``lead`` (larger), ``bullet``, ``small``, ``note`` or ``code``."""

    text: str
    style: str = "body"


@dataclass
class Table:
    """A table of strings. ``align`` per column: ``l`` or ``r``; ``widths`` are relative."""

    header: Sequence[str]
    rows: Sequence[Sequence[str]]
    caption: str | None = None
    align: Sequence[str] | None = None
    widths: Sequence[float] | None = None
    font_size: float = 7.5


@dataclass
class Figure:
    """A matplotlib figure (drawn at its own size in inches) and its caption."""

    figure: object
    caption: str = ""
    _pdf: bytes | None = field(default=None, repr=False)
    _svg: str | None = field(default=None, repr=False)

    def pdf(self) -> bytes:
        if self._pdf is None:
            buffer = io.BytesIO()
            # Type 3 fonts: text stays text (searchable) and saving is 2-3x faster than Type 42.
            with matplotlib.rc_context({"pdf.fonttype": 3}):
                self.figure.savefig(buffer, format="pdf")
            self._pdf = buffer.getvalue()
        return self._pdf

    def svg(self) -> str:
        if self._svg is None:
            buffer = io.StringIO()
            with matplotlib.rc_context({"svg.fonttype": "none"}):
                self.figure.savefig(buffer, format="svg")
            text = buffer.getvalue()
            self._svg = text[text.index("<svg"):]
        return self._svg

    @property
    def size_in(self) -> tuple[float, float]:
        width, height = self.figure.get_size_inches()
        return float(width), float(height)


@dataclass
class PageBreak:
    """Start a new page (PDF only); with ``unless_room`` (inches), only when less than that
    is left on this one, so that a short section does not leave a page mostly empty."""

    unless_room: float | None = None


Block = Heading | Text | Table | Figure | PageBreak


# --- inline markup -------------------------------------------------------------------------

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def _markup(text: str) -> str:
    """Escape ``text`` and turn ``**bold**`` / ``*italic*`` into tags both engines read."""
    escaped = html.escape(text, quote=False)
    escaped = _BOLD.sub(r"<b>\1</b>", escaped)
    return _ITALIC.sub(r"<i>\1</i>", escaped)


# --- PDF -----------------------------------------------------------------------------------


def _fonts() -> tuple[str, str, str]:
    """Register matplotlib's DejaVu fonts with reportlab (full Unicode, embedded as subsets);
    return the regular, bold and monospaced font names."""
    from reportlab.lib.fonts import addMapping
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if "SeqrobSans" not in pdfmetrics.getRegisteredFontNames():
        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        faces = {
            "SeqrobSans": "DejaVuSans.ttf",
            "SeqrobSans-Bold": "DejaVuSans-Bold.ttf",
            "SeqrobSans-Oblique": "DejaVuSans-Oblique.ttf",
        }
        for name, file in faces.items():
            pdfmetrics.registerFont(TTFont(name, str(folder / file)))
        addMapping("SeqrobSans", 0, 0, "SeqrobSans")
        addMapping("SeqrobSans", 1, 0, "SeqrobSans-Bold")
        addMapping("SeqrobSans", 0, 1, "SeqrobSans-Oblique")
        addMapping("SeqrobSans", 1, 1, "SeqrobSans-Bold")  # bold italic prints bold: one font file less to parse
    return "SeqrobSans", "SeqrobSans-Bold", "Courier"


def _styles():
    from reportlab.lib import colors
    from reportlab.lib.styles import ParagraphStyle

    regular, bold, mono = _fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=9, leading=12.2, spaceAfter=5)
    return {
        "title": ParagraphStyle("title", parent=body, fontName=bold, fontSize=17, leading=21, spaceAfter=4),
        "h1": ParagraphStyle("h1", parent=body, fontName=bold, fontSize=13, leading=16, spaceBefore=10, spaceAfter=6,
                             textColor=colors.HexColor("#1f3b5a")),
        "h2": ParagraphStyle("h2", parent=body, fontName=bold, fontSize=10.5, leading=13, spaceBefore=8, spaceAfter=4),
        "body": body,
        "lead": ParagraphStyle("lead", parent=body, fontSize=10, leading=13.5, spaceAfter=6),
        "bullet": ParagraphStyle("bullet", parent=body, leftIndent=12, bulletIndent=2, spaceAfter=3.5),
        "small": ParagraphStyle("small", parent=body, fontSize=7.8, leading=10, spaceAfter=3),
        "note": ParagraphStyle("note", parent=body, fontSize=7.8, leading=10, textColor=colors.HexColor("#444444")),
        "caption": ParagraphStyle("caption", parent=body, fontSize=7.8, leading=10, spaceBefore=2, spaceAfter=9,
                                  textColor=colors.HexColor("#333333")),
        "code": ParagraphStyle("code", parent=body, fontName=mono, fontSize=7.6, leading=9.8, leftIndent=8),
        "cell": ParagraphStyle("cell", parent=body, fontSize=7.5, leading=9.2, spaceAfter=0),
        "cell_head": ParagraphStyle("cell_head", parent=body, fontName=bold, fontSize=7.5, leading=9.2, spaceAfter=0),
    }


class _FigureSlot:
    """Factory of the platypus flowable that reserves a figure's box and records where it landed."""

    @staticmethod
    def make(index: int, width_pt: float, height_pt: float, placed: list):
        from reportlab.platypus import Flowable

        class Slot(Flowable):
            def __init__(self) -> None:
                super().__init__()
                self.width, self.height = width_pt, height_pt
                self.hAlign = "CENTER"

            def wrap(self, available_width, available_height):
                self.scale = min(1.0, available_width / width_pt, TEXT_HEIGHT_IN * 72 * 0.96 / height_pt)
                return width_pt * self.scale, height_pt * self.scale

            def draw(self) -> None:  # only records the box: the figure is stamped in after the build
                x, y = self.canv.absolutePosition(0, 0)
                placed.append((index, self.canv.getPageNumber(), x, y, self.scale))

        return Slot()


def _table_flowable(block: Table, styles, width_pt: float):
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, TableStyle
    from reportlab.platypus import Table as RLTable

    n = len(block.header)
    align = list(block.align or ["l"] * n)
    if block.widths is not None:
        weights = list(block.widths)
    else:  # weight columns by their longest content, the longest capped so short columns keep room
        weights = []
        for j in range(n):
            longest = max([len(str(block.header[j]))] + [len(str(row[j])) for row in block.rows])
            weights.append(min(max(longest, 4), 48))
    total = sum(weights)
    widths = [width_pt * w / total for w in weights]
    cell = styles["cell"].clone("cell_sized", fontSize=block.font_size, leading=block.font_size * 1.23)
    head = styles["cell_head"].clone("head_sized", fontSize=block.font_size, leading=block.font_size * 1.23)

    from reportlab.pdfbase.pdfmetrics import stringWidth

    cell_styles = [cell.clone(f"cell_{j}", alignment=2 if align[j] == "r" else 0) for j in range(n)]
    head_styles = [head.clone(f"head_{j}", alignment=2 if align[j] == "r" else 0) for j in range(n)]

    def paragraph(text: str, style, j: int):
        # A plain string where it fits on one line (platypus draws those far faster); a wrapping
        # Paragraph where it would not, or where it carries markup: nothing is ever cut off.
        text = str(text)
        if "*" not in text and "\n" not in text and stringWidth(text, style.fontName, style.fontSize) < widths[j] - 7:
            return text
        return Paragraph(_markup(text), style)

    data = [[paragraph(h, head_styles[j], j) for j, h in enumerate(block.header)]]
    data += [[paragraph(value, cell_styles[j], j) for j, value in enumerate(row)] for row in block.rows]
    table = RLTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    commands = [
        ("LINEABOVE", (0, 0), (-1, 0), 0.8, colors.HexColor("#222222")),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.HexColor("#222222")),
        ("LINEBELOW", (0, -1), (-1, -1), 0.8, colors.HexColor("#222222")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (0, 0), (-1, 0), head.fontName, block.font_size, block.font_size * 1.23),
        ("FONT", (0, 1), (-1, -1), cell.fontName, block.font_size, block.font_size * 1.23),
        ("TOPPADDING", (0, 0), (-1, -1), 1.6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.6),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    for j, side in enumerate(align):
        commands.append(("ALIGN", (j, 0), (j, -1), "RIGHT" if side == "r" else "LEFT"))
    for i in range(2, len(data), 2):
        commands.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor("#f2f4f7")))
    table.setStyle(TableStyle(commands))
    return table


def write_pdf(blocks: Sequence[Block], path: str | Path, *, title: str, footer: str, metadata: dict | None = None) -> Path:
    """Lay the blocks out on A4 pages and write the PDF (figures stamped in as vector graphics)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.platypus import (
        CondPageBreak,
        KeepTogether,
        Paragraph,
        SimpleDocTemplate,
        Spacer,
    )
    from reportlab.platypus import PageBreak as RLPageBreak

    path = Path(path)
    styles = _styles()
    regular = styles["body"].fontName
    width_pt = _PAGE_W_PT - 2 * _MARGIN_PT
    figures: list[Figure] = []
    placed: list[tuple[int, int, float, float, float]] = []
    story = []
    first_heading = True
    headings: list = []  # headings wait for the block after them: a heading never ends a page alone
    for block in blocks:
        if isinstance(block, Heading):
            style = styles["title"] if first_heading else styles["h1" if block.level == 1 else "h2"]
            first_heading = False
            headings.append(Paragraph(_markup(block.text), style))
            continue
        if isinstance(block, Text):
            style = styles.get(block.style, styles["body"])
            paragraph = Paragraph(_markup(block.text), style, bulletText="\u2022" if block.style == "bullet" else None)
            story.append(KeepTogether(headings + [paragraph]) if headings else paragraph)
        elif isinstance(block, Table):
            parts = headings + [_table_flowable(block, styles, width_pt)]
            if block.caption:
                parts.insert(len(headings), Paragraph(_markup(block.caption), styles["caption"]))
            if len(block.rows) <= 25:  # a short table moves whole to the next page
                story.append(KeepTogether(parts))
            else:  # a long one starts here unless the caption and a few rows would not fit, then splits
                story.append(CondPageBreak(110 + 30 * len(headings)))
                story.extend(parts)
            story.append(Spacer(1, 6))
        elif isinstance(block, Figure):
            w_in, h_in = block.size_in
            slot = _FigureSlot.make(len(figures), w_in * 72, h_in * 72, placed)
            figures.append(block)
            story.append(KeepTogether(headings + [slot, Paragraph(_markup(block.caption), styles["caption"])]))
        elif isinstance(block, PageBreak):
            story.extend(headings)
            story.append(RLPageBreak() if block.unless_room is None else CondPageBreak(block.unless_room * 72))
        headings = []
    story.extend(headings)

    def decorate(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont(regular, 7)
        canvas.setFillGray(0.35)
        canvas.drawString(_MARGIN_PT, _MARGIN_PT * 0.55, footer)
        canvas.drawRightString(_PAGE_W_PT - _MARGIN_PT, _MARGIN_PT * 0.55, f"page {doc.page}")
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN_PT,
        rightMargin=_MARGIN_PT,
        topMargin=_MARGIN_PT,
        bottomMargin=_MARGIN_PT + 12,
        title=title,
        author="seqrob",
        subject=(metadata or {}).get("subject", ""),
        creator="seqrob (reportlab)",
    )
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    path.parent.mkdir(parents=True, exist_ok=True)
    _stamp_figures(buffer.getvalue(), figures, placed, path)
    return path


def _stamp_figures(report: bytes, figures: list[Figure], placed: list, path: Path) -> None:
    """Draw each figure's one-page PDF onto the report page, in the box platypus reserved.

    The figure page becomes a form XObject and the report page gets one more content
    stream, ``q <scale and move> cm /Fig Do Q``: nothing is parsed or re-encoded, so a
    figure costs milliseconds (pypdf's ``merge_transformed_page`` parses both pages'
    content and takes about a second a figure).
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import (
        ArrayObject,
        DecodedStreamObject,
        DictionaryObject,
        NameObject,
    )

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(report)))
    for index, page_number, x, y, scale in placed:
        source = PdfReader(io.BytesIO(figures[index].pdf())).pages[0]
        contents = source.get_contents()
        form = DecodedStreamObject()
        form.set_data(contents.get_data() if contents is not None else b"")
        form[NameObject("/Type")] = NameObject("/XObject")
        form[NameObject("/Subtype")] = NameObject("/Form")
        form[NameObject("/BBox")] = ArrayObject(source.mediabox)
        form[NameObject("/Resources")] = source["/Resources"].get_object().clone(writer)
        name = NameObject(f"/SeqrobFigure{index}")
        page = writer.pages[page_number - 1]
        resources = page["/Resources"].get_object()
        if "/XObject" not in resources:
            resources[NameObject("/XObject")] = DictionaryObject()
        resources["/XObject"].get_object()[name] = writer._add_object(form)
        stamp = DecodedStreamObject()
        stamp.set_data(f"q {scale:.6f} 0 0 {scale:.6f} {x:.4f} {y:.4f} cm {name} Do Q".encode())
        existing = page["/Contents"].get_object()
        streams = list(existing) if isinstance(existing, ArrayObject) else [page.raw_get("/Contents")]
        page[NameObject("/Contents")] = ArrayObject(streams + [writer._add_object(stamp)])
    writer.compress_identical_objects()
    temporary = path.with_name(path.name + ".part")
    with temporary.open("wb") as handle:
        writer.write(handle)
    temporary.replace(path)  # a reader never sees half a report


# --- HTML ----------------------------------------------------------------------------------

_CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; font-size: 14px; line-height: 1.45;
       max-width: 56em; margin: 2em auto; padding: 0 1em; color: #111; }
h1 { font-size: 1.6em; color: #1f3b5a; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
h1.title { font-size: 2em; color: #111; border: none; }
h2 { font-size: 1.15em; margin-top: 1.3em; }
table { border-collapse: collapse; font-size: 12px; margin: .4em 0 1.2em; }
th { text-align: left; border-top: 2px solid #222; border-bottom: 1px solid #222; padding: 2px 6px; }
td { padding: 2px 6px; vertical-align: top; }
tr:nth-child(even) td { background: #f2f4f7; }
tbody tr:last-child td { border-bottom: 2px solid #222; }
td.r, th.r { text-align: right; }
caption, .caption { caption-side: top; text-align: left; font-size: 12px; color: #333; padding-bottom: .3em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
.small, .note { font-size: 12px; color: #444; } .lead { font-size: 15px; }
.code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; white-space: pre-wrap; }
"""


def write_html(blocks: Sequence[Block], path: str | Path, *, title: str) -> Path:
    """Write the blocks as one self-contained HTML file (figures inline as SVG)."""
    path = Path(path)
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           f"<style>{_CSS}</style></head><body>"]  # fmt: skip
    first_heading = True
    in_list = False
    for block in blocks:
        if in_list and not (isinstance(block, Text) and block.style == "bullet"):
            out.append("</ul>")
            in_list = False
        if isinstance(block, Heading):
            tag = "h1" if block.level == 1 else "h2"
            klass = " class='title'" if first_heading else ""
            first_heading = False
            out.append(f"<{tag}{klass}>{_markup(block.text)}</{tag}>")
        elif isinstance(block, Text):
            if block.style == "bullet":
                if not in_list:
                    out.append("<ul>")
                    in_list = True
                out.append(f"<li>{_markup(block.text)}</li>")
            else:
                out.append(f"<p class='{block.style}'>{_markup(block.text)}</p>")
        elif isinstance(block, Table):
            align = list(block.align or ["l"] * len(block.header))
            out.append("<table>")
            if block.caption:
                out.append(f"<caption>{_markup(block.caption)}</caption>")
            out.append("<thead><tr>" + "".join(f"<th class='{a}'>{_markup(str(h))}</th>"
                                               for h, a in zip(block.header, align)) + "</tr></thead><tbody>")  # fmt: skip
            for row in block.rows:
                out.append("<tr>" + "".join(f"<td class='{a}'>{_markup(str(v))}</td>" for v, a in zip(row, align)) + "</tr>")
            out.append("</tbody></table>")
        elif isinstance(block, Figure):
            out.append(f"<figure>{block.svg()}<figcaption class='caption'>{_markup(block.caption)}</figcaption></figure>")
    if in_list:
        out.append("</ul>")
    out.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_text("\n".join(out), encoding="utf-8")
    temporary.replace(path)
    return path
