"""The integrations are optional: the base client imports no framework, and an
integration whose framework is missing says which extra to install."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_the_base_client_imports_no_framework() -> None:
    out = _python(
        "import sys, lethe, lethe.integrations\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'llama_index'))\n"
        "print(loaded)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module, framework, extra",
    [("lethe.integrations.langchain", "langchain_core", "langchain"), ("lethe.integrations.llamaindex", "llama_index.core", "llamaindex")],
)
def test_an_integration_imports_with_its_framework_or_names_the_extra(module: str, framework: str, extra: str) -> None:
    out = _python(f"import {module} as m; print(m.LetheVectorStore.__name__)")
    if importlib.util.find_spec(framework.split(".")[0]) is None:
        assert out.returncode != 0
        assert f"pip install 'lethe-client[{extra}]'" in out.stderr, out.stderr
    else:
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "LetheVectorStore"
