"""Upload safety: check uploaded files and stage the accepted ones inside the upload area.

Example:
    >>> guard = UploadGuard(settings)
    >>> outcomes = guard.run([("leave.pdf", pdf_bytes), ("../../etc/passwd", b"root:x:0:0")], department="HR")
    >>> [(o.name, o.accepted, o.message) for o in outcomes]
    [('leave.pdf', True, 'queued as hr/leave.pdf'), ('passwd', False, "unsupported file type '(none)' ...")]

Checks, in order, each refusal a one-line message for the page: the count and total-size limits of one
upload, a usable file name (path parts dropped, characters no file system accepts replaced), a supported
type (archives refused outright), the size limit, the content matching the extension
(`ingest.loaders.sniff`), and for DOCX/XLSX (zip containers) the decompression-bomb limits: members,
total unpacked size and unpacked/packed ratio, read from the zip directory without unpacking anything
(`ingest.loaders.zip_guard`, which the loaders apply on every other path too).

Accepted files go to `<upload area>/.incoming/<random>/<name>`; the worker moves each into
`<upload area>/<department>/<name>` when its job starts, so the document keeps one id across re-uploads.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pathvalidate import sanitize_filename

from erag.home import private_dir
from erag.settings import Settings
from ingest.loaders import SUPPORTED_SUFFIXES, LoadError
from ingest.loaders.sniff import detect_type
from ingest.loaders.zip_guard import ZIP_TYPES, check_zip

ARCHIVE_SUFFIXES = frozenset({".zip", ".7z", ".rar", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".lz", ".cab",
                              ".jar", ".war", ".iso"})
INCOMING = ".incoming"
_MB = 1024 * 1024


@dataclass
class UploadOutcome:
    """What happened to one uploaded file: accepted (staged, with where it will live) or refused, and why."""

    name: str
    accepted: bool
    message: str
    staged: Path | None = None
    target: Path | None = None
    job_id: int | None = None  # the ingestion job, once queued


def safe_name(raw: str) -> str:
    """The file name alone (no folders), normalised, with characters no file system allows replaced."""
    base = re.split(r"[\\/]", raw)[-1]
    base = unicodedata.normalize("NFKC", base).strip()
    cleaned = sanitize_filename(base, replacement_text="_", platform="universal", max_len=180)
    return cleaned.lstrip(". ")


def folder_name(department: str | None) -> str:
    """A department as a folder name: lower case letters, digits and dashes ('general' when none)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (department or "").lower()).strip("-")
    return slug or "general"


class UploadGuard:
    """Refuse unsafe uploads with a reason; stage the rest for ingestion workers."""

    def __init__(self, settings: Settings) -> None:
        self.root = private_dir(settings.upload_path).resolve()
        self.max_files = settings.upload_max_files
        self.max_file = int(settings.max_file_mb * _MB)
        self.max_total = int(settings.upload_max_total_mb * _MB)
        self.max_unpacked = int(settings.zip_max_uncompressed_mb * _MB)
        self.max_ratio = settings.zip_max_ratio
        self.max_members = settings.zip_max_members

    def run(self, files: Sequence[tuple[str, bytes]], department: str | None = None) -> list[UploadOutcome]:
        """Check `(file name, content)` pairs; accepted ones are staged, refused ones leave nothing behind."""
        outcomes: list[UploadOutcome] = []
        seen: set[str] = set()
        total = 0
        folder = self.root / folder_name(department)
        for index, (raw_name, data) in enumerate(files):
            name = safe_name(raw_name) or raw_name
            if index >= self.max_files:
                outcomes.append(UploadOutcome(name, False, f"over the limit of {self.max_files} files in one "
                                              "upload (ERAG_UPLOAD_MAX_FILES): upload it separately"))
                continue
            total += len(data)
            problem = self._check_name(raw_name, name, seen) or self._check_size(len(data), total)
            if problem:
                outcomes.append(UploadOutcome(name, False, problem))
                continue
            seen.add(name.lower())
            outcomes.append(self._stage(name, data, folder))
        return outcomes

    def _check_name(self, raw: str, name: str, seen: set[str]) -> str | None:
        if not safe_name(raw) or Path(name).stem == "":
            return f"the file name '{raw}' is not usable: rename the file"
        suffix = Path(name).suffix.lower()
        if suffix in ARCHIVE_SUFFIXES:
            return f"archives ({suffix}) are not accepted: upload the documents inside it"
        if suffix not in SUPPORTED_SUFFIXES:
            known = ", ".join(sorted(SUPPORTED_SUFFIXES))
            return f"unsupported file type '{suffix or '(none)'}' (supported: {known})"
        if name.lower() in seen:
            return "another file in this upload has the same name"
        return None

    def _check_size(self, size: int, total: int) -> str | None:
        if size == 0:
            return "empty file"
        if size > self.max_file:
            return (f"file is {size / _MB:.1f} MB, over the {self.max_file / _MB:.3g} MB limit per file "
                    "(ERAG_MAX_FILE_MB)")
        if total > self.max_total:
            return (f"this upload is over {self.max_total / _MB:.4g} MB in total (ERAG_UPLOAD_MAX_TOTAL_MB): "
                    "upload the rest separately")
        return None

    def _stage(self, name: str, data: bytes, folder: Path) -> UploadOutcome:
        staging = self.root / INCOMING / uuid.uuid4().hex
        staged = (staging / name).resolve()
        target = (folder / name).resolve()
        if not (staged.is_relative_to(self.root) and target.is_relative_to(self.root)):
            return UploadOutcome(name, False, "the file name points outside the upload area")
        private_dir(self.root / INCOMING)
        staging.mkdir(mode=0o700)
        with staged.open("xb") as fh:
            fh.write(data)
        try:
            kind = detect_type(staged)
            problem = (check_zip(staged, self.max_unpacked, self.max_ratio, self.max_members)
                       if kind in ZIP_TYPES else None)
        except LoadError as exc:
            problem = str(exc)
        if problem:
            shutil.rmtree(staging, ignore_errors=True)
            return UploadOutcome(name, False, problem)
        return UploadOutcome(name, True, f"queued as {target.relative_to(self.root)}", staged, target)
