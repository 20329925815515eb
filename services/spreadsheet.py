"""Spreadsheet files in and out: CSV (UTF-8 with or without BOM, or GB18030, as Excel on
a Chinese Windows saves it) and XLSX (openpyxl's read-only and write-only modes, so
neither reading nor writing holds a whole sheet in memory)."""
import codecs
import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, BinaryIO

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import InvalidFileException

import heartbeat
from utils.exceptions import ValidationFailed

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary .xls (and other Office 97 files)
UTF8_BOM = codecs.BOM_UTF8
# An XLSX is a zip: what it unpacks to is bounded too, so a small file cannot expand
# into gigabytes of XML (openpyxl keeps the shared strings in memory).
MAX_UNPACKED_FACTOR = 20
SNIFF_CHARACTERS = 8192  # of a CSV, read to tell its delimiter from its header line
DELIMITERS = (",", ";", "\t")  # the ones Excel writes (`;` where the decimal mark is a comma)


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int | None  # data rows, header excluded; None: no limit (the CLI)
    max_cell: int  # characters in one cell


@dataclass
class Table:
    """A sheet's header and its data rows, numbered as the spreadsheet numbers them
    (the header is row 1)."""

    header: list[str]
    rows: list[tuple[int, list[Any]]]
    kind: str  # "csv (utf-8)", "csv (gb18030)", "xlsx"


def not_a_spreadsheet(reason: str) -> ValidationFailed:
    return ValidationFailed("文件不是可读取的表格（CSV 或 XLSX）", {"file": reason})


def read_table(data: bytes, limits: Limits) -> Table:
    """The first sheet of an XLSX, or a CSV in one of the encodings Excel writes.
    Anything else, and anything over the limits, is a 400 naming why."""
    if not data.strip():
        raise not_a_spreadsheet("文件为空")
    if len(data) > limits.max_bytes:
        raise ValidationFailed("文件过大", {"file": f"不能超过 {limits.max_bytes} 字节"})
    if data.startswith(ZIP_MAGIC):
        return Table(*_split(_xlsx_rows(data, limits), limits), "xlsx")
    if data.startswith(OLE_MAGIC):
        raise not_a_spreadsheet("旧版 Excel（.xls）文件：请另存为 .xlsx 或 CSV")
    text, encoding = _decode(data)
    header, rows = _split(_csv_rows(text), limits)
    return Table(header, rows, f"csv ({encoding})")


def _decode(data: bytes) -> tuple[str, str]:
    """UTF-8 (a BOM is dropped), else GB18030; bytes that are neither, or text with NUL
    characters in it (a binary file), are not a CSV."""
    if b"\x00" in data:
        raise not_a_spreadsheet("含有二进制内容，不是文本文件")
    try:
        return data.removeprefix(UTF8_BOM).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gb18030"
    except UnicodeDecodeError:
        raise not_a_spreadsheet("既不是 UTF-8 也不是 GB18030 编码的文本") from None


def _csv_rows(text: str) -> Iterator[list[Any]]:
    first_line = text[:SNIFF_CHARACTERS].partition("\n")[0]
    delimiter = max(DELIMITERS, key=first_line.count)  # a comma unless the header uses another
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        yield from reader
    except csv.Error as exc:
        raise not_a_spreadsheet(f"CSV 格式错误（第 {reader.line_num} 行）：{exc}") from None


def _xlsx_rows(data: bytes, limits: Limits) -> Iterator[list[Any]]:
    """The first sheet's rows, streamed from the file (openpyxl read-only mode)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError):
        raise not_a_spreadsheet("损坏的 zip/XLSX 文件") from None
    if unpacked > limits.max_bytes * MAX_UNPACKED_FACTOR:
        raise not_a_spreadsheet("XLSX 解压后过大")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, SyntaxError):
        raise not_a_spreadsheet("不是有效的 XLSX 工作簿") from None
    try:
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds on a malformed sheet
        raise not_a_spreadsheet(f"XLSX 工作表无法读取（{type(exc).__name__}）") from None
    finally:
        workbook.close()


def _split(rows: Iterable[list[Any]], limits: Limits) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """The first non-empty row as the header, then every non-empty row with its number."""
    header: list[str] | None = None
    body: list[tuple[int, list[Any]]] = []
    for number, row in enumerate(rows, start=1):
        cells = [_cell(value, number, limits) for value in row]
        while cells and cells[-1] in ("", None):
            cells.pop()
        if not cells:
            continue
        if header is None:
            header = [str(cell if cell is not None else "").strip().lstrip("\ufeff") for cell in cells]
            continue
        if limits.max_rows is not None and len(body) >= limits.max_rows:
            raise ValidationFailed("行数过多", {"file": f"数据行不能超过 {limits.max_rows} 行（不含表头）"})
        body.append((number, cells))
    if header is None:
        raise not_a_spreadsheet("没有表头行")
    return header, body


def _cell(value: Any, row: int, limits: Limits) -> Any:
    if isinstance(value, str) and len(value) > limits.max_cell:
        raise ValidationFailed("单元格内容过长", {"errors": [
            {"row": row, "column": None, "message": f"单元格不能超过 {limits.max_cell} 个字符"}]})
    return value


def cell_text(value: Any) -> str:
    """A cell as text: numbers as written (`19.9` stays `19.9`, `5.0` is `5`), blanks empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        number = Decimal(repr(value))
        return str(int(number)) if number == number.to_integral_value() else format(number, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value).strip()


# ---- writing ----

class _Echo:
    """A file-like that hands back what is written to it, for csv.writer."""

    def write(self, text: str) -> str:
        return text


def csv_stream(header: list[str], rows: Iterable[Iterable[Any]], chunk_rows: int = 500) -> Iterator[bytes]:
    """UTF-8 with a BOM (so Excel reads Chinese as such), in chunks of rows."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield UTF8_BOM + writer.writerow(header).encode("utf-8")
    chunk: list[str] = []
    for row in rows:
        chunk.append(writer.writerow(["" if value is None else value for value in row]))
        if len(chunk) >= chunk_rows:
            yield "".join(chunk).encode("utf-8")
            chunk = []
    if chunk:
        yield "".join(chunk).encode("utf-8")


def xlsx_file(header: list[str], rows: Iterable[Iterable[Any]], title: str) -> BinaryIO:
    """An XLSX written in openpyxl's write-only mode (inline strings: nothing is kept per
    row) to a temporary file, returned open at its start. A zip is finished before it can
    be read, so the rows are all read first: an error while reading them is still an
    answer of its own, not a file cut short."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_value(value) for value in row])
    handle = tempfile.TemporaryFile()
    with heartbeat.while_busy():  # compressing a million rows takes longer than gunicorn's timeout
        workbook.save(handle)
    handle.seek(0)
    return handle


def file_chunks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in chunks, closing (and so deleting a temporary) file at the end."""
    with handle:
        while chunk := handle.read(size):
            yield chunk


def _xlsx_value(value: Any) -> Any:
    """Money as a number Excel can sum; texts as texts (a SKU of digits stays text),
    without the control characters a worksheet cannot hold (tab, line feed and carriage
    return stay)."""
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # Excel has no time zones; the column says UTC
    return value
