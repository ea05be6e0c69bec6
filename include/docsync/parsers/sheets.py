"""Spreadsheets and delimited text (XLSX, XLS, CSV, TSV) as rows with their header.

Every data row becomes one block, ``Header: value`` per non-empty cell, so a chunk of rows
still says what each value is; the chunker packs whole blocks (rows) into chunks. A row too
long for one chunk is split between cells, each part repeating the row's position, never
inside a cell (only a single cell over the whole chunk limit is cut, by the chunker's token
windows). Each sheet opens with a title block (the chunk heading).
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

from docsync.errors import Stage
from docsync.parse import Block, ParsedDocument, parse_failure
from docsync.parsers.text import decode_text

if TYPE_CHECKING:
    from collections.abc import Iterable

ROW_CHARS = 600  # a row longer than this is split between cells (~150 tokens of a 200-token chunk)
MAX_CELLS = 2_000_000  # a sheet declaring more is a bomb or a data dump, not a document


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return " ".join(str(value).split())


def rows_to_blocks(rows: Iterable[list[object]], sheet: str | None, path: str) -> list[Block]:
    """Blocks of one table: the first non-empty row is the header."""
    blocks: list[Block] = [Block(sheet, kind="title")] if sheet else []
    header: list[str] | None = None
    caption: list[str] | None = None
    cells = 0
    for number, raw in enumerate(rows, start=1):
        row = [_cell(v) for v in raw]
        cells += len(row)
        if cells > MAX_CELLS:
            raise parse_failure(
                Stage.LIMITS, f"{path} holds more than {MAX_CELLS} cells; it is a data export, not a document: exclude it"
            )
        if not any(row):
            continue
        filled = sum(1 for c in row if c)
        if header is None and caption is None and filled == 1:
            caption = row  # a caption above the table, or the header of a one-column table
            continue
        if header is None:
            if caption is not None and filled == 1:  # one column after all: that was its header
                header, row = caption, row
            else:
                if caption is not None:
                    blocks.append(Block(next(c for c in caption if c), kind="title"))
                header, row = row, []
            blocks.append(Block(" | ".join(c for c in header if c), kind="title" if not sheet else "text"))
            if not any(row):
                continue
        pairs = [
            f"{header[i] if i < len(header) and header[i] else f'column {i + 1}'}: {value}"
            for i, value in enumerate(row)
            if value
        ]
        blocks.extend(_row_blocks(pairs, f"row {number}"))
    if header is None and caption is not None:  # a table of one cell
        blocks.append(Block(next(c for c in caption if c)))
    return blocks


def _row_blocks(pairs: list[str], where: str) -> list[Block]:
    """One block per row; a long row in parts cut between cells."""
    text = "; ".join(pairs)
    if len(text) <= ROW_CHARS:
        return [Block(text, kind="row")]
    parts, current = [], []
    for pair in pairs:
        if current and len("; ".join(current)) + len(pair) > ROW_CHARS:
            parts.append(current)
            current = []
        current.append(pair)
    parts.append(current)
    return [Block(f"({where}) " + "; ".join(p), kind="row") for p in parts]


def parse_delimited(data: bytes, path: str, mime: str) -> ParsedDocument:
    """CSV or TSV (delimiter sniffed: comma, semicolon, tab or pipe)."""
    text = decode_text(data, path)
    sample = text[:8192]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if path.lower().endswith(".tsv") or sample.count("\t") > sample.count(",") else csv.excel
    csv.field_size_limit(16 * 2**20)
    try:
        blocks = rows_to_blocks(csv.reader(io.StringIO(text), dialect), None, path)
    except csv.Error as exc:
        raise parse_failure(Stage.PARSE, f"could not read {path} as delimited text: the file looks corrupt", exc) from exc
    return ParsedDocument(mime=mime, blocks=blocks, pages=1 if blocks else 0)


def parse_xlsx(data: bytes, path: str, mime: str) -> ParsedDocument:
    """XLSX (and what LibreOffice converted to it): values, not formulas; one page per sheet."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken or encrypted files
        raise parse_failure(
            Stage.PARSE, f"could not open the workbook {path}: corrupt or password protected", exc
        ) from exc
    blocks: list[Block] = []
    try:
        for number, sheet in enumerate(book.worksheets, start=1):
            width = sheet.max_column or 0  # read-only rows end at their last value: pad them to the sheet
            rows = (list(r) + [None] * (width - len(r)) for r in sheet.iter_rows(values_only=True))
            for block in rows_to_blocks(rows, sheet.title, path):
                block.page = number
                blocks.append(block)
    finally:
        book.close()
    return ParsedDocument(mime=mime, blocks=blocks, pages=len(book.worksheets))


def parse_xls(data: bytes, path: str, mime: str) -> ParsedDocument:
    """Legacy Excel (BIFF) through xlrd; one page per sheet."""
    import xlrd

    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except Exception as exc:
        raise parse_failure(Stage.PARSE, f"could not open the workbook {path}: corrupt or password protected", exc) from exc
    blocks: list[Block] = []
    try:
        for number in range(book.nsheets):
            sheet = book.sheet_by_index(number)
            rows = (sheet.row_values(r) for r in range(sheet.nrows))
            for block in rows_to_blocks(rows, sheet.name, path):
                block.page = number + 1
                blocks.append(block)
            book.unload_sheet(number)
    finally:
        book.release_resources()
    return ParsedDocument(mime=mime, blocks=blocks, pages=book.nsheets)
