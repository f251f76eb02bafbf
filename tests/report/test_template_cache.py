"""The process-wide cache of compiled templates keeps the source records of every page.

jinja compiles an environment's ``finalize`` calls into a template's code only when the
environment has one, and its bytecode caches key by template name and source: code compiled
for an environment without a recorder (the server's warm-up, any plain render) must not be
served to the report or the FAQ, whose recorder would then see nothing.
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment
from jinja2.bccache import Bucket, BytecodeCache

from attribution_analysis.report import views

TEMPLATES = {"page.html": "{{ value }} and {{ other }}"}


class _PlainMemoryCache(BytecodeCache):
    """jinja's own keying (name and source only): the negative control."""

    def __init__(self) -> None:
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _seen_after_plain_compile(cache: BytecodeCache) -> list[object]:
    """Compile the page without finalize, then render it with one; what finalize saw."""
    Environment(loader=DictLoader(TEMPLATES), bytecode_cache=cache).get_template("page.html")
    seen: list[object] = []

    def finalize(value: object) -> object:
        seen.append(value)
        return value

    env = Environment(loader=DictLoader(TEMPLATES), bytecode_cache=cache, finalize=finalize)
    assert env.get_template("page.html").render(value=1, other="x") == "1 and x"
    return seen


def test_code_compiled_without_finalize_is_not_served_to_a_recorder():
    assert _seen_after_plain_compile(views._MemoryBytecodeCache()) == [1, "x"]
    # Negative control: jinja's keying serves the plain code, and nothing is seen.
    assert _seen_after_plain_compile(_PlainMemoryCache()) == []
