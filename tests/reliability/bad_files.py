"""A batch of bad files, each with what must happen to it: a clear error of its own, or read whole.

Built fresh by each test that needs it, so the CLI, the API upload and the readers are tried on the
same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import docx
import pypdf

from tests.conftest import SAMPLES

MANUAL = SAMPLES / "documents" / "aurora-ahp9-manual.pdf"
MAX_FILE_MB = "0.5"  # huge.txt is over it, every other file under it
# The words each readable file holds (in its stored chunks), and the error of each unreadable one.
READ = "read"
FAIL = "fail"


@dataclass(frozen=True)
class Expected:
    """What must become of one file: READ with words found in its chunks (and words never stored),
    or FAIL with words of its error."""

    outcome: str
    words: tuple[str, ...]
    absent: tuple[str, ...] = ()


def encrypted_pdf(user_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=MANUAL)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def broken_xref_pdf() -> bytes:
    """The manual with every cross-reference offset wrong and startxref pointing nowhere."""
    data = MANUAL.read_bytes()
    at = data.rfind(b"xref")
    table = re.sub(rb"\d{10} (\d{5}) n", rb"0000000001 \1 n", data[at:])
    table = re.sub(rb"startxref\s+\d+", b"startxref\n999999", table)
    return data[:at] + table


def png_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def docx_bomb(path: Path, unpacked_mb: int) -> None:
    """A real .docx whose document.xml unpacks to `unpacked_mb` MB (a few hundred KB packed)."""
    seed = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("seed")
    document.save(seed)
    with zipfile.ZipFile(seed) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename != "word/document.xml":
                out.writestr(item, source.read(item))
                continue
            head, tail = source.read(item).split(b"<w:body>")
            with out.open("word/document.xml", "w", force_zip64=True) as part:
                part.write(head + b"<w:body>")
                block = b"<w:p><w:r><w:t>" + b"A" * (1 << 20) + b"</w:t></w:r></w:p>"
                for _ in range(unpacked_mb):
                    part.write(block)
                part.write(tail)


def deep_html(depth: int = 5000) -> str:
    return ("<html><head><title>Deep</title></head><body>" + "<div>" * depth
            + "<p>The narwhal sentence sits five thousand levels down.</p>" + "</div>" * depth
            + "<p>After the deep part comes the walrus line.</p></body></html>")


SCRIPTED_HTML = """<html><head><title>Scripts</title><script>var stolen = "SCRIPTSECRET";</script>
<style>body { color: red } .STYLESECRET {}</style></head><body>
<p onclick="alert('HANDLERSECRET')">The capybara paragraph is visible text.</p>
<script>document.write("INLINESECRET")</script><noscript>NOSCRIPTSECRET</noscript>
<img src=x onerror="alert(1)"><p>Second visible line about the heron.</p></body></html>"""


def write_bad_files(folder: Path) -> dict[str, Expected]:
    """Write the batch into `folder`; returns each file's name with what must happen to it."""
    folder.mkdir(parents=True, exist_ok=True)
    manual = MANUAL.read_bytes()
    files: dict[str, tuple[bytes, Expected]] = {
        "corrupt.pdf": (b"%PDF-1.7\n1 0 obj <<>> garbage garbage\n%%EOF", Expected(FAIL, ("corrupt PDF",))),
        "truncated.pdf": (manual[: len(manual) // 2], Expected(FAIL, ("corrupt PDF", "truncated"))),
        "encrypted.pdf": (encrypted_pdf("s3cret"), Expected(FAIL, ("encrypted: pass a password",))),
        "owner-only.pdf": (encrypted_pdf(""), Expected(READ, ("9.2 kW",))),
        "broken-xref.pdf": (broken_xref_pdf(), Expected(READ, ("9.2 kW",))),
        "empty.txt": (b"", Expected(FAIL, ("empty file",))),
        "huge.txt": (b"big text. " * 60_000, Expected(FAIL, ("too large", "limit"))),
        "binary.txt": (bytes(range(256)) * 20, Expected(FAIL, ("binary content",))),
        "page-really-html.pdf": (b"<html><body><p>Not a PDF at all.</p></body></html>",
                                 Expected(FAIL, ("not a PDF",))),
        "image-really-png.pdf": (png_bytes(), Expected(FAIL, ("not a PDF",))),
        "latin1.txt": ("Le café crème coûte trois euros à Genève.".encode("latin-1"),
                       Expected(READ, ("café crème", "Genève"))),
        "utf16.txt": ("\ufeffThe otter report: Zürich holds 12 otters.".encode("utf-16-le"),
                      Expected(READ, ("Zürich holds 12 otters",))),
        "scripts.html": (SCRIPTED_HTML.encode(), Expected(
            READ, ("capybara paragraph", "heron"),
            absent=("SCRIPTSECRET", "STYLESECRET", "HANDLERSECRET", "INLINESECRET", "NOSCRIPTSECRET", "alert"))),
        "deep.html": (deep_html().encode(), Expected(READ, ("narwhal sentence", "walrus line"))),
        "fine.md": (b"# Fine\n\nThis file is fine and mentions the blue pelican.\n", Expected(READ, ("blue pelican",))),
        "line\nbreak.txt": (b"The file with a newline in its name talks about beavers.",
                            Expected(READ, ("beavers",))),
        "rtl\u200fmark\u202etxt.md": (b"The file with right-to-left marks mentions lynxes.", Expected(READ, ("lynxes",))),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    docx_bomb(folder / "bomb.docx", unpacked_mb=300)
    expected = {name: expected for name, (_, expected) in files.items()}
    expected["bomb.docx"] = Expected(FAIL, ("too large when unpacked", "zip bomb"))
    return expected


def stored_name(name: str) -> str:
    """The source name a file is stored and listed under (control and format characters cleaned)."""
    from rag.uploads import clean_name

    return clean_name(name)
