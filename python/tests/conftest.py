"""Fixtures of the rhead module's tests: the shared data folder, the rhead binary, niah-tiny.

Tests that need ../shared (models, essays) skip when it is missing, and fail under CI=true.
"""
import os
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROMPT = "{context}\nQuestion: {question}\nAnswer:"


def _in_ci():
    return os.environ.get("CI") == "true"


def _shared_dir():
    d = os.environ.get("RHEAD_SHARED_DIR") or os.path.join(REPO, "..", "shared")
    return os.path.abspath(d)


def need(path, what):
    """`path` if it exists; else skip (fail under CI=true) naming `what`."""
    if not os.path.exists(path):
        message = f"{what} is missing: {path}"
        if _in_ci():
            pytest.fail(message + " (CI=true)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared():
    return need(_shared_dir(), "the shared data folder")


@pytest.fixture(scope="session")
def niah_tiny(shared):
    """Paths of niah-tiny and of its README grid."""
    base = os.path.join(shared, "models", "niah-tiny")
    return {
        "gguf": need(os.path.join(base, "niah-tiny-f32.gguf"), "niah-tiny"),
        "needles": need(os.path.join(base, "needles.jsonl"), "niah-tiny's needles"),
        "haystack": need(os.path.join(shared, "data", "haystack", "paul_graham_essays"), "the essays haystack"),
        "tokenizer_model": os.path.join(shared, "models", "stories260K", "tok512.model"),
    }


@pytest.fixture(scope="session")
def rhead_binary():
    b = os.environ.get("RHEAD_BINARY") or os.path.join(REPO, "build", "rhead")
    if not os.path.exists(b):
        pytest.fail(f"the rhead binary is missing: {b} (build it, or set RHEAD_BINARY)")
    return b


@pytest.fixture(scope="session")
def model(niah_tiny):
    import rhead
    return rhead.load(niah_tiny["gguf"], device="cpu")


def run_cli(binary, *args):
    """Runs the rhead command; returns its stdout (fails the test on a non-zero exit)."""
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    assert r.returncode == 0, f"rhead {' '.join(args)} failed: {r.stderr}"
    return r.stdout
