"""Excel .xlsx (openpyxl, read-only, cell values not formulas): one section per sheet and table.

A sheet holds tables separated by empty rows; a table's first row is its header, and every row
below is written as "Column: value; Column: value", so each row, and so each chunk, says what its
numbers are. A row with a single cell above a table (a title like "Price list 2025") joins the
section heading. Rows past ReadOptions.max_sheet_rows, and cells past max_workbook_cells, are not
read: a sheet that large is a data dump, and the document says so in its warnings.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from ..errors import IngestError
from .document import Document, Section
from .office import check_office_container
from .options import ReadOptions

SUFFIXES = {".xlsx", ".xlsm"}


def load(path: Path, data: bytes, options: ReadOptions) -> Document:
    check_office_container(data, ".xlsx", options)
    try:
        import openpyxl

        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on bad zips/xml
        raise IngestError(f"not a readable .xlsx file ({type(exc).__name__})") from None
    reader = _WorkbookReader(options)
    try:
        for sheet in workbook.worksheets:
            reader.read_sheet(sheet)
    except IngestError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken sheet part surfaces only while streaming it
        raise IngestError(f"not a readable .xlsx file ({type(exc).__name__} in a sheet)") from None
    finally:
        workbook.close()
    return Document(str(path), "xlsx", reader.sections, warnings=reader.warnings)


class _WorkbookReader:
    def __init__(self, options: ReadOptions):
        self.options = options
        self.cells_left = options.max_workbook_cells
        self.sections: list[Section] = []
        self.warnings: list[str] = []

    def read_sheet(self, sheet) -> None:
        name = sheet.title
        if self.cells_left <= 0:
            self.warnings.append(f"sheet {name}: not read (limit of {self.options.max_workbook_cells:,} cells "
                                 "per workbook reached)")
            return
        columns = self.options.max_sheet_columns
        if (sheet.max_column or 0) > columns:
            self.warnings.append(f"sheet {name}: only the first {columns} of {sheet.max_column:,} columns read (limit)")
        # read-only rows are padded to max_col: never wider than the sheet says it is
        columns = min(columns, sheet.max_column or columns)
        table = _Table(name)
        rows_read = 0
        for row in sheet.iter_rows(max_col=columns, values_only=True):
            if rows_read == self.options.max_sheet_rows or self.cells_left <= 0:
                total = f" of {sheet.max_row:,}" if sheet.max_row else ""
                limit = (f"{self.options.max_sheet_rows:,} rows per sheet" if rows_read == self.options.max_sheet_rows
                         else f"{self.options.max_workbook_cells:,} cells per workbook")
                self.warnings.append(f"sheet {name}: only the first {rows_read:,}{total} rows read (limit: {limit})")
                break
            rows_read += 1
            values = [_cell_text(v) for v in row]
            while values and not values[-1]:
                values.pop()
            self.cells_left -= len(values)
            if not values:
                self.sections += table.finish()
                table = _Table(name)
            else:
                table.add(values)
        self.sections += table.finish()


class _Table:
    """Rows of one table of a sheet, as the lines of its section."""

    def __init__(self, sheet: str):
        self.sheet = sheet
        self.title: list[str] = []
        self.header: list[str] | None = None
        self.lines: list[str] = []

    def add(self, values: list[str]) -> None:
        filled = [v for v in values if v]
        if self.header is None:
            if len(filled) == 1 and len(values) == 1:
                self.title.append(filled[0])  # one cell at the left above a table names it
            else:
                self.header = values
            return
        names = [self.header[i] if i < len(self.header) and self.header[i] else _column_letter(i)
                 for i in range(len(values))]
        self.lines.append("; ".join(f"{n}: {v}" for n, v in zip(names, values) if v))

    def finish(self) -> list[Section]:
        if self.header is not None and not self.lines:
            self.lines.append(" | ".join(v for v in self.header if v))  # a lone row: itself
        if not self.lines and self.title:
            self.lines, self.title = self.title, []
        if not self.lines:
            return []
        heading = " > ".join([self.sheet] + self.title)
        return [Section("\n\n".join(self.lines), None, heading, f"sheet {self.sheet}")]


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return f"column {get_column_letter(index + 1)}"


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())
