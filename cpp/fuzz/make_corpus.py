"""Write the fuzzers' seed corpus (cpp/fuzz/corpus/<harness>/): small valid files and crafted hostile
ones. Deterministic: running it again rewrites the same bytes. Files found by fuzzing (regressions)
live beside them as corpus/<harness>/crash-*; this script leaves those alone.

    python cpp/fuzz/make_corpus.py

The model-file builders (model_metadata, model_npz, zip_archive, npy_bytes) are also used by
tests/test_file_agreement.py, which checks that the Python package and the C++ port accept and
reject the same files.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"


# ---- building blocks --------------------------------------------------------------------------------


def npy_bytes(array, *, header=None, version=(1, 0)):
    """The .npy serialization of array (header text replaced by `header` when given)."""
    if header is None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        return buffer.getvalue()
    text = header.encode("latin1")
    size_format = "<H" if version[0] == 1 else "<I"
    return (
        b"\x93NUMPY"
        + bytes(version)
        + struct.pack(size_format, len(text))
        + text
        + np.asarray(array).tobytes()
    )


def deflate(data, level=9):
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def zip_archive(entries, *, comment=b""):
    """A ZIP archive from (name, data) pairs or dicts with keys name, data and optionally method (0 or
    8), compressed (raw DEFLATE bytes to store instead of compressing data), usize, csize, crc,
    local_name, flags: overrides that let a test lie in the headers."""
    out, central = bytearray(), bytearray()
    for entry in entries:
        if not isinstance(entry, dict):
            entry = {"name": entry[0], "data": entry[1]}
        name = entry["name"].encode()
        data = entry["data"]
        method = entry.get("method", 0)
        payload = entry.get("compressed", deflate(data) if method == 8 else data)
        crc = entry.get("crc", zlib.crc32(data))
        usize = entry.get("usize", len(data))
        csize = entry.get("csize", len(payload))
        flags = entry.get("flags", 0)
        local_name = entry.get("local_name", entry["name"]).encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, csize, usize, len(local_name), 0
        )
        out += local_name + payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            flags,
            method,
            0,
            0x21,
            crc,
            csize,
            usize,
            len(name),
            0,
            0,
            0,
            0,
            0o100644 << 16,
            offset,
        )
        central += name
    cd_offset = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_offset, len(comment)
    )
    return bytes(out + comment)


def model_metadata(sizes, *, version=2, dtype="float32", **changes):
    """Metadata of a model with layer widths sizes = [n_features, hidden..., n_classes]."""
    meta = {
        "format": "mlp-model",
        "format_version": version,
        "library_version": "0.1.0",
        "hidden_sizes": list(sizes[1:-1]),
        "activation": "relu",
        "loss": "cross_entropy",
        "n_features": sizes[0],
        "classes": list(range(sizes[-1])),
        "dtype": dtype,
        "preprocessing": {"input": "pixels / 255", "range": [0, 1]},
        "l2": 0.0,
        "config": {"epochs": 1},
        "history": {
            "epoch": [1],
            "loss": [0.5],
            "accuracy": [0.9],
            "val_loss": [float("nan") if version == 1 else None],
        },
    }
    meta.update(changes)
    return {key: value for key, value in meta.items() if value is not _ABSENT}


_ABSENT = object()  # model_metadata(key=_ABSENT) leaves the key out
ABSENT = _ABSENT


def model_arrays(sizes, *, dtype="float32", seed=0, batch_norm=False):
    """W<l>, b<l> per layer; with batch_norm also gamma<l>, beta<l>, mean<l>, var<l> per hidden layer."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for layer in range(len(sizes) - 1):
        arrays[f"W{layer}"] = rng.standard_normal((sizes[layer], sizes[layer + 1])).astype(dtype)
        arrays[f"b{layer}"] = rng.standard_normal(sizes[layer + 1]).astype(dtype)
    for layer, width in enumerate(sizes[1:-1] if batch_norm else ()):
        arrays[f"gamma{layer}"] = (1.0 + 0.1 * rng.standard_normal(width)).astype(dtype)
        arrays[f"beta{layer}"] = rng.standard_normal(width).astype(dtype)
        arrays[f"mean{layer}"] = rng.standard_normal(width).astype(dtype)
        arrays[f"var{layer}"] = rng.uniform(0.5, 2.0, width).astype(dtype)
    return arrays


def metadata_bytes(meta, *, allow_nan=False):
    text = meta if isinstance(meta, (str, bytes)) else json.dumps(meta, allow_nan=allow_nan)
    return npy_bytes(np.frombuffer(text.encode() if isinstance(text, str) else text, dtype=np.uint8))


def model_npz(
    sizes=(4, 3, 2), *, meta=None, arrays=None, method=0, extra=(), dtype="float32", allow_nan=False
):
    """An .npz model file's bytes: W<l>, b<l> and metadata (each replaceable), plus extra entries."""
    arrays = model_arrays(sizes, dtype=dtype) if arrays is None else arrays
    meta = model_metadata(sizes, dtype=dtype) if meta is None else meta
    entries = [
        {"name": f"{key}.npy", "data": npy_bytes(value), "method": method} for key, value in arrays.items()
    ]
    entries.append(
        {"name": "metadata.npy", "data": metadata_bytes(meta, allow_nan=allow_nan), "method": method}
    )
    return zip_archive(entries + list(extra))


def gzip_bytes(data):
    return gzip.compress(data, mtime=0)


def gzip_zeros(header, zeros):
    """A gzip file of header followed by `zeros` zero bytes, compressed as it goes (no big buffer)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [compressor.compress(header)]
    left = zeros
    while left > 0:
        parts.append(compressor.compress(chunk[: min(left, len(chunk))]))
        left -= len(chunk)
    parts.append(compressor.flush())
    # gzip's own header carries a time stamp; compressobj(wbits=31) writes mtime 0 already.
    return b"".join(parts)


def idx_images(n, rows, cols, pixels=None):
    body = bytes(n * rows * cols) if pixels is None else pixels
    return struct.pack(">IIII", 0x803, n, rows, cols) + body


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


# ---- hostile ZIP structures -----------------------------------------------------------------------


def zip64_end_record_at(offset):
    """A ZIP whose end record says ZIP64 and whose locator points at `offset` (near 2^64: the old
    `rec + 56 > size` check wrapped around)."""
    locator = struct.pack("<IIQI", 0x07064B50, 0, offset, 1)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return b"PK\x03\x04" + bytes(60) + locator + eocd


def zip64_local_offset(offset):
    """One central-directory entry whose ZIP64 extra field gives the local header offset `offset`."""
    name = b"W0.npy"
    extra = struct.pack("<HHQ", 0x0001, 8, offset)
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            45,
            45,
            0,
            0,
            0,
            0x21,
            0,
            0,
            0,
            len(name),
            len(extra),
            0,
            0,
            0,
            0,
            0xFFFFFFFF,
        )
        + name
        + extra
    )
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), 0, 0)
    return central + eocd


def hostile_models():
    """name -> bytes of crafted model files (valid and hostile), shared with the agreement test."""
    sizes = (4, 3, 2)
    good = model_arrays(sizes)
    files = {
        "valid_v1_nan_history.npz": model_npz(meta=model_metadata(sizes, version=1), allow_nan=True),
        "valid_v2.npz": model_npz(),
        "valid_v2_compressed.npz": model_npz(method=8),
        "valid_v2_float64.npz": model_npz(dtype="float64"),
        "valid_v2_no_preprocessing.npz": model_npz(meta=model_metadata(sizes, preprocessing=ABSENT)),
        "valid_v2_null_preprocessing.npz": model_npz(meta=model_metadata(sizes, preprocessing=None)),
        "zip64_record_near_2_64.npz": zip64_end_record_at(2**64 - 16),
        "zip64_local_near_2_64.npz": zip64_local_offset(2**64 - 8),
        "duplicate_W0.npz": model_npz(
            extra=[{"name": "W0.npy", "data": npy_bytes(np.zeros((4, 3), np.float32))}]
        ),
        "duplicate_metadata.npz": model_npz(
            extra=[{"name": "metadata.npy", "data": metadata_bytes(model_metadata(sizes, activation="tanh"))}]
        ),
        "bomb_extra_entry.npz": model_npz(
            extra=[
                {
                    "name": "junk.npy",
                    "data": b"",
                    "method": 8,
                    "compressed": deflate(bytes(8 << 20)),
                    "usize": 8 << 20,
                    "crc": zlib.crc32(bytes(8 << 20)),
                }
            ]
        ),
        "bomb_understated_W0.npz": _understated_bomb(sizes, good),
        "absurd_sizes.npz": model_npz(meta=model_metadata((10**8, 10**8, 2))),
        "absurd_sizes_declared.npz": _declared_huge(sizes, good),
        "bad_npy_header.npz": _with_entry(
            sizes, good, "W0", npy_bytes(good["W0"], header="{'descr': '<f4', 'shape': (4, 3), }\n")
        ),
        "npy_header_too_long.npz": _with_entry(
            sizes,
            good,
            "W0",
            npy_bytes(
                good["W0"],
                header="{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }" + " " * 20000 + "\n",
                version=(2, 0),
            ),
        ),
        "wrong_dtype.npz": _with_entry(sizes, good, "W0", npy_bytes(good["W0"].astype(np.float64))),
        "wrong_shape.npz": _with_entry(sizes, good, "W0", npy_bytes(good["W0"].T.copy())),
        "nan_weights.npz": model_npz(arrays={**good, "b0": np.array([0, np.nan, 0], np.float32)}),
        "metadata_list.npz": model_npz(meta=[1, 2, 3]),
        "metadata_not_json.npz": model_npz(meta="{'format': 'mlp-model'"),
        "metadata_bad_utf8.npz": model_npz(meta=b'{"format": "\xff"}'),
        "metadata_nan_v2.npz": model_npz(meta=model_metadata(sizes, l2=float("nan")), allow_nan=True),
        "version_4.npz": model_npz(meta=model_metadata(sizes, version=4)),
        "version_float.npz": model_npz(meta=model_metadata(sizes, format_version=1.0)),
        "no_format.npz": model_npz(meta=model_metadata(sizes, format=ABSENT)),
        "unknown_activation.npz": model_npz(meta=model_metadata(sizes, activation="swish")),
        "hidden_float.npz": model_npz(meta=model_metadata(sizes, hidden_sizes=[3.0])),
        "hidden_bool.npz": model_npz(meta=model_metadata(sizes, hidden_sizes=[True])),
        "hidden_negative.npz": model_npz(meta=model_metadata(sizes, hidden_sizes=[-3])),
        "no_classes.npz": model_npz(meta=model_metadata(sizes, classes=[])),
        "missing_b1.npz": model_npz(arrays={k: v for k, v in good.items() if k != "b1"}),
        "no_metadata.npz": zip_archive([(f"{k}.npy", npy_bytes(v)) for k, v in good.items()]),
        "truncated.npz": model_npz()[:-40],
        "bad_crc.npz": _corrupt_byte(model_npz(), 200),
        "encrypted_flag.npz": zip_archive(
            [{"name": f"{k}.npy", "data": npy_bytes(v), "flags": 1} for k, v in good.items()]
            + [("metadata.npy", metadata_bytes(model_metadata(sizes)))]
        ),
        "names_differ.npz": zip_archive(
            [{"name": f"{k}.npy", "data": npy_bytes(v), "local_name": f"x{k}.npy"} for k, v in good.items()]
            + [("metadata.npy", metadata_bytes(model_metadata(sizes)))]
        ),
        "not_a_zip.npz": b"hello, this is not a zip file at all" * 3,
        "single_npy.npz": npy_bytes(good["W0"]),
        "empty.npz": b"",
    }
    files.update(batch_norm_models(sizes))
    return files


def batch_norm_models(sizes):
    """name -> bytes: format version 3, with and without batch normalisation, and its hostile variants."""
    norms = model_arrays(sizes, batch_norm=True)

    def bn(placement="before", version=3, **changes):
        return model_metadata(sizes, version=version, batch_norm=placement, **changes)

    def without(key):
        return {k: v for k, v in norms.items() if k != key}

    return {
        "valid_v3.npz": model_npz(meta=model_metadata(sizes, version=3, batch_norm=None)),
        "valid_v3_batch_norm_before.npz": model_npz(meta=bn(), arrays=norms),
        "valid_v3_batch_norm_after_compressed.npz": model_npz(meta=bn("after"), arrays=norms, method=8),
        "valid_v3_batch_norm_float64.npz": model_npz(
            meta=bn(dtype="float64"), arrays=model_arrays(sizes, dtype="float64", batch_norm=True)
        ),
        "valid_v3_batch_norm_zero_var.npz": model_npz(
            meta=bn(), arrays={**norms, "var0": np.zeros_like(norms["var0"])}
        ),
        "batch_norm_in_v2.npz": model_npz(meta=bn(version=2), arrays=norms),
        "batch_norm_unknown.npz": model_npz(meta=bn("middle"), arrays=norms),
        "batch_norm_true.npz": model_npz(meta=bn(True), arrays=norms),
        "batch_norm_missing_var0.npz": model_npz(meta=bn(), arrays=without("var0")),
        "batch_norm_missing_gamma0.npz": model_npz(meta=bn("after"), arrays=without("gamma0")),
        "batch_norm_negative_var.npz": model_npz(meta=bn(), arrays={**norms, "var0": -norms["var0"]}),
        "batch_norm_nan_gamma.npz": model_npz(
            meta=bn(), arrays={**norms, "gamma0": np.full_like(norms["gamma0"], np.nan)}
        ),
        "batch_norm_wrong_shape_beta.npz": model_npz(
            meta=bn(), arrays={**norms, "beta0": np.zeros(sizes[1] + 1, np.float32)}
        ),
        "batch_norm_wrong_dtype_mean.npz": model_npz(
            meta=bn(), arrays={**norms, "mean0": norms["mean0"].astype(np.float64)}
        ),
        "batch_norm_null_with_norm_arrays.npz": model_npz(meta=bn(None), arrays=norms),
    }


def _with_entry(sizes, good, key, data):
    entries = [(f"{k}.npy", npy_bytes(v) if k != key else data) for k, v in good.items()]
    return zip_archive([*entries, ("metadata.npy", metadata_bytes(model_metadata(sizes)))])


def _understated_bomb(sizes, good):
    """W0 declares its true size (a few dozen bytes) but its DEFLATE stream holds 8 MiB."""
    real = npy_bytes(good["W0"])
    entries = [{"name": "W0.npy", "data": real, "method": 8, "compressed": deflate(real + bytes(8 << 20))}]
    entries += [(f"{k}.npy", npy_bytes(v)) for k, v in good.items() if k != "W0"]
    return zip_archive([*entries, ("metadata.npy", metadata_bytes(model_metadata(sizes)))])


def _declared_huge(sizes, good):
    """The metadata and W0's directory entry both claim a 30000 x 30000 float32 W0 (3.6 GB); the
    stream itself is tiny."""
    meta = model_metadata((30000, 30000, 2))
    w0 = npy_bytes(np.zeros((1, 1), np.float32))
    entries = [{"name": "W0.npy", "data": w0, "method": 8, "usize": 30000 * 30000 * 4 + 128}]
    entries += [(f"{k}.npy", npy_bytes(v)) for k, v in good.items() if k != "W0"]
    return zip_archive([*entries, ("metadata.npy", metadata_bytes(meta))])


def _fixed_huffman(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_FIXED)
    return compressor.compress(data) + compressor.flush()


def _corrupt_byte(data, at):
    data = bytearray(data)
    data[at] ^= 0xFF
    return bytes(data)


# ---- the corpus ---------------------------------------------------------------------------------------


def corpus_files():
    """harness -> {file name: bytes}."""
    # (no ".npz" suffix in the corpus: the repository ignores *.npz files)
    files = {"npz": {name.removesuffix(".npz"): data for name, data in hostile_models().items()}}
    text = (HERE.parent / "tests" / "data").glob("*.gz")
    gz = {path.name: path.read_bytes() for path in sorted(text)}
    limit_byte = bytes([20])  # fuzz_inflate's first byte: limit 2^20
    inflate = {f"gzip_{name}": limit_byte + data for name, data in gz.items()}
    sample = b"the quick brown fox jumps over the lazy dog " * 50
    inflate.update(
        {
            "raw_stored": limit_byte + deflate(sample, 0),
            "raw_fixed": limit_byte + _fixed_huffman(sample),
            "raw_dynamic": limit_byte + deflate(bytes(range(256)) * 20 + sample),
            "raw_bomb_64k_limit": bytes([16]) + deflate(bytes(4 << 20)),
            "gzip_bomb": limit_byte + gzip_zeros(b"", 4 << 20),
            "gzip_two_members": limit_byte + gzip_bytes(b"first ") + gzip_bytes(b"second"),
        }
    )
    json_texts = {
        "metadata_v2": json.dumps(model_metadata((784, 128, 10))),
        "metadata_v1_nan": json.dumps(model_metadata((784, 128, 10), version=1), allow_nan=True),
        "escapes": r'{"s": "a\"b\\c\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800x", "n": [-0, 1e-5, 2E+3, 1.5, -Infinity]}',
        "nested": "[" * 60 + "]" * 60,
        "too_deep": "[" * 100 + "]" * 100,
        "duplicate_keys": '{"a": 1, "a": [true, false, null]}',
        "bad_numbers": "[01, 0x10, .5, 1., inf]",
        "empty": "",
    }
    pixels = bytes((i * 37) % 256 for i in range(3 * 4 * 5))
    data = {
        "mlpd_valid": b"\x00" + b"MLPD" + struct.pack("<IIII", 1, 3, 4, 5) + pixels + bytes([0, 1, 2]),
        "mlpd_truncated": b"\x00" + b"MLPD" + struct.pack("<IIII", 1, 3, 4, 5) + pixels[:10],
        "mlpd_huge_header": b"\x00" + b"MLPD" + struct.pack("<IIII", 1, 0xFFFFFFFF, 4096, 4096),
        "idx_images": b"\x01" + idx_images(3, 4, 5, pixels),
        "idx_images_gz": b"\x01" + gzip_bytes(idx_images(3, 4, 5, pixels)),
        "idx_images_gz_bomb": b"\x01" + gzip_zeros(idx_images(3, 4, 5, pixels), 8 << 20),
        "idx_images_gz_huge_header": b"\x01"
        + gzip_bytes(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 4096, 4096)),
        "idx_labels": b"\x02" + idx_labels([0, 1, 2]),
        "idx_labels_gz": b"\x02" + gzip_bytes(idx_labels([0, 1, 2])),
        "idx_labels_gz_bomb": b"\x02" + gzip_zeros(idx_labels([0, 1, 2]), 8 << 20),
    }
    files["inflate"] = inflate
    files["json"] = {name: text.encode() for name, text in json_texts.items()}
    files["data"] = data
    return files


def main():
    for harness, files in corpus_files().items():
        folder = CORPUS / harness
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.iterdir():
            if not old.name.startswith("crash-"):
                old.unlink()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        print(
            f"{folder.relative_to(HERE.parent.parent)}: {len(files)} files, {sum(map(len, files.values()))} bytes"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
