"""PNG pixel data count: Pillow decodes a PNG whose image data stops early and fills the rest."""

from __future__ import annotations

import struct
import zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7: (x start, y start, x step, y step) of each of the seven passes.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def has_all_rows(data: bytes) -> bool:
    """Return whether a PNG's image data holds every row its header declares.

    Only the first image (IDAT) counts; an APNG's later frames are not read. Data that is not
    a PNG, or whose header is unreadable, is left to Pillow and counts as complete.
    """
    if not data.startswith(_SIGNATURE) or len(data) < 33:
        return True
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if color not in _CHANNELS or width == 0 or height == 0:
        return True
    expected = _expected_bytes(width, height, depth * _CHANNELS[color], interlace == 1)
    inflater = zlib.decompressobj()
    got = 0
    try:
        for chunk in _idat_chunks(data):
            pending = chunk
            while pending and not inflater.eof:
                # Bounded steps: a compression bomb never inflates into memory at once.
                got += len(inflater.decompress(pending, 1 << 20))
                if got >= expected:
                    return True
                pending = inflater.unconsumed_tail
    except zlib.error:
        return False
    return got >= expected


def _expected_bytes(width: int, height: int, bits: int, interlaced: bool) -> int:
    """Return the size of the filtered image data: one filter byte plus the pixels, per row."""
    if not interlaced:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        columns = (width - x0 + dx - 1) // dx if width > x0 else 0
        rows = (height - y0 + dy - 1) // dy if height > y0 else 0
        if columns and rows:
            total += rows * (1 + (columns * bits + 7) // 8)
    return total


def _idat_chunks(data: bytes) -> list[bytes]:
    chunks: list[bytes] = []
    offset = len(_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IDAT":
            chunks.append(body)
        elif chunks or kind == b"IEND":
            break  # IDAT chunks are consecutive; the first image ends with the first run
        offset += 12 + length
    return chunks
