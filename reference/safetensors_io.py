"""Minimal safetensors reader/writer (no dependency on the `safetensors` package).

File layout (https://github.com/huggingface/safetensors, "format" section):

    u64 little-endian N | N bytes of JSON header | raw tensor data

The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
where the offsets are relative to the first byte after the header; an optional
"__metadata__" entry maps strings to strings. Data is little-endian, row-major,
with no padding between tensors. We pad the JSON header with spaces to a multiple
of 8 bytes (as the official writer does) so that the data section is aligned.

Supported dtypes: F64, F32, BF16, I32, I64 (the ones cramc exchanges).
"""
from __future__ import annotations

import json
import struct
import sys
from typing import Dict, Mapping, Optional, Tuple

import torch

_DTYPES: Dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "BF16": torch.bfloat16,
    "I32": torch.int32,
    "I64": torch.int64,
}
_NAMES: Dict[torch.dtype, str] = {v: k for k, v in _DTYPES.items()}
# Same-width integer views used to move raw bytes in and out of numpy, which
# has no bfloat16.
_RAW_VIEW: Dict[torch.dtype, torch.dtype] = {torch.bfloat16: torch.int16}

if sys.byteorder != "little":  # pragma: no cover - every target we run on is LE
    raise RuntimeError("safetensors_io assumes a little-endian host")


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().to("cpu").contiguous()
    if t.dtype in _RAW_VIEW:
        t = t.view(_RAW_VIEW[t.dtype])
    return t.numpy().tobytes()


def save_file(tensors: Mapping[str, torch.Tensor], path: str,
              metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write `tensors` (name -> tensor) to `path`, in the mapping's order."""
    header: Dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype not in _NAMES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype} (supported: {sorted(_DTYPES)})")
        data = _tensor_bytes(t)
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for data in blobs:
            f.write(data)


def load_file_with_metadata(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """Read every tensor of `path`; returns (name -> tensor, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} exceeds file size {len(raw)}")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    meta: Dict[str, str] = header.pop("__metadata__", None) or {}
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        dtype_name = info["dtype"]
        if dtype_name not in _DTYPES:
            raise TypeError(f"{path}: tensor {name}: unsupported dtype {dtype_name}")
        dtype = _DTYPES[dtype_name]
        shape = [int(s) for s in info["shape"]]
        begin, end = (int(o) for o in info["data_offsets"])
        numel = 1
        for s in shape:
            numel *= s
        itemsize = torch.empty((), dtype=dtype).element_size()
        if end - begin != numel * itemsize or base + end > len(raw):
            raise ValueError(f"{path}: tensor {name}: bad data_offsets {begin},{end} "
                             f"for shape {shape} {dtype_name}")
        buf = bytearray(raw[base + begin:base + end])  # writable copy, owned by the tensor
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(buf, dtype=_RAW_VIEW.get(dtype, dtype)).view(dtype).reshape(shape)
        out[name] = t
    return out, meta


def load_file(path: str) -> Dict[str, torch.Tensor]:
    """Read every tensor of `path` (name -> tensor)."""
    return load_file_with_metadata(path)[0]
