"""Data for bench/models.py: sentence pairs from text that ships with Python, images from Fashion-MNIST.

Sentence pairs: the docstrings of :data:`MODULES` and of their public
functions, classes and methods (Python's standard library, installed with
every Python): two consecutive sentences of a prose paragraph, both 4 to 40
words, make a pair (a query and the sentence that continues it). A pair's split is
fixed by a hash of its first sentence: 60 % calibration, 20 % validation,
20 % test. Which pairs exist depends on the Python version (recorded with
the results).

Images: Fashion-MNIST (Debian's dataset-fashion-mnist), converted to what an
ImageNet-trained RGB model reads: grey copied to three channels, resized
(bilinear, antialiased) and normalized with ImageNet's mean and std.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import re

import torch

MODULES = ("argparse", "asyncio", "base64", "bisect", "calendar", "collections", "configparser", "contextlib",
           "csv", "datetime", "decimal", "difflib", "email", "fractions", "ftplib", "functools", "gzip",
           "heapq", "http.client", "imaplib", "inspect", "io", "ipaddress", "itertools", "json", "logging",
           "mailbox", "operator", "optparse", "os", "pathlib", "pickle", "pprint", "random", "re", "shutil",
           "smtplib", "socket", "sqlite3", "statistics", "string", "subprocess", "tarfile", "tempfile",
           "textwrap", "threading", "tkinter", "turtle", "typing", "unittest", "urllib.parse", "urllib.request",
           "uuid", "wave", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zoneinfo")
SPLITS = {"calibration": range(0, 6), "validation": range(6, 8), "test": range(8, 10)}
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
FMNIST = (0.2860, 0.3530)


def _paragraphs(doc: str) -> list[list[str]]:
    """Sentences of each prose paragraph (code examples and tables, which hold ``>>>`` or ``|``, are skipped)."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        if ">>>" in para or "|" in para or para.lstrip().startswith(("-", "*", ":")):
            continue
        text = " ".join(para.split())
        out.append([s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", text) if s])
    return out


def _objects(module):
    yield module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        yield obj
        if inspect.isclass(obj):
            for mname, meth in sorted(vars(obj).items()):
                if not mname.startswith("_"):
                    yield meth


def docstring_pairs() -> list[tuple[str, str]]:
    """(sentence, next sentence) of the prose paragraphs of the docstrings of :data:`MODULES`.

    Each sentence is used once (the first pair it starts or ends wins), so no two pairs share a side.
    """
    seen, pairs = set(), []
    for mod_name in MODULES:
        try:
            module = importlib.import_module(mod_name)
        except ImportError:  # e.g. tkinter without Tk: the pair set is recorded with its size
            continue
        for obj in _objects(module):
            doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
            for sents in _paragraphs(doc or ""):
                for a, b in zip(sents, sents[1:]):
                    if all(4 <= len(x.split()) <= 40 for x in (a, b)) and a not in seen and b not in seen:
                        seen.update((a, b))
                        pairs.append((a, b))
    return pairs


def split_of(text: str) -> str:
    bucket = int(hashlib.sha1(text.encode()).hexdigest(), 16) % 10
    return next(name for name, r in SPLITS.items() if bucket in r)


def pair_splits() -> dict[str, list[tuple[str, str]]]:
    out = {name: [] for name in SPLITS}
    for q, d in docstring_pairs():
        out[split_of(q)].append((q, d))
    return out


def tokenize(tokenizer, texts: list[str], batch_size: int = 32, max_length: int = 64) -> list[dict]:
    """Batches the encoders take (``model(**batch)``): input_ids, attention_mask (padded per batch)."""
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        out.append({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    return out


def fmnist_rgb(x: torch.Tensor, size: int) -> torch.Tensor:
    """Fashion-MNIST as normalized by hardyt (N, 1, 28, 28) → ImageNet-normalized RGB (N, 3, size, size)."""
    pixels = x * FMNIST[1] + FMNIST[0]
    pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear", antialias=True,
                                             align_corners=False).clamp(0, 1).expand(-1, 3, -1, -1)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    return ((pixels - mean) / std).contiguous()
