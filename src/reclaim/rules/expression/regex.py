"""Regular expressions of ``matches()``: RE2 for one fact, Rust's regex crate column-wise.

Both run in linear time. Their syntax agrees on what RE2 accepts, except that RE2's Perl
classes (``\\d \\w \\s``) and word boundaries are ASCII and Rust's are Unicode: the pattern given
to Polars spells them out as ASCII classes. Rust also has its own compiled-size limit, so a
pattern is checked against both engines when the expression is compiled.
"""

from __future__ import annotations

__all__ = ["check_polars_regex", "compile_regex", "polars_regex"]

from typing import Any

# RE2 is imported by the first pattern compiled: most rule files have none, and every start of
# ``reclaim rules check`` paid for it (issue 9, item 13).


def compile_regex(pattern: str) -> Any:
    """Compile ``pattern`` with RE2 (linear time, no backtracking); raises re2.error."""
    import re2

    options = re2.Options()
    options.log_errors = False
    regex = re2.compile(pattern, options=options)
    if "\\B" in pattern:
        return _WholeCharacterRegex(regex, options)
    return regex


class _WholeCharacterRegex:
    """A pattern with ``\\B`` (no ASCII word boundary), searched as Rust's regex does.

    RE2 searches UTF-8 bytes, so ``\\B`` also holds between two bytes of one character
    (``'a\\u00a0b'`` matched ``\\B`` at the middle of the no-break space), where the columnar
    engine never reports a match: on non-ASCII text, matches that start inside a character are
    skipped. (An escaped backslash before ``B`` takes this path too; it is only slower.)
    """

    __slots__ = ("_bytes_regex", "_options", "_text_regex", "pattern")

    def __init__(self, text_regex: Any, options: Any) -> None:
        self._text_regex = text_regex
        self._options = options
        self._bytes_regex: Any = None
        self.pattern: str = text_regex.pattern

    def search(self, text: str) -> Any:
        found = self._text_regex.search(text)
        if found is None or text.isascii():
            return found
        if self._bytes_regex is None:
            import re2

            self._bytes_regex = re2.compile(self.pattern.encode(), options=self._options)
        data = text.encode()
        start = 0
        while (found := self._bytes_regex.search(data, start)) is not None:
            position = found.start()
            if position == len(data) or data[position] & 0xC0 != 0x80:
                return found
            start = position + 1
        return None


# RE2's Perl classes and word boundaries are ASCII; Rust's are Unicode. Spelled out as ASCII
# classes they mean the same in both (and case-fold the same under (?i)).
_PERL_CLASSES = {
    "d": "0-9",
    "w": "0-9A-Za-z_",
    "s": "\\t\\n\\f\\r ",
}


def polars_regex(pattern: str) -> str:
    """``pattern`` (RE2 syntax) rewritten so that Rust's regex crate matches what RE2 does:
    ``\\d \\w \\s`` and their negations become ASCII classes, ``\\b \\B`` ASCII boundaries."""
    out: list[str] = []
    in_class = False
    class_start = 0
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern):
            escaped = pattern[position + 1]
            lower = escaped.lower()
            if lower in _PERL_CLASSES:
                members = _PERL_CLASSES[lower]
                negated = escaped.isupper()
                if in_class:
                    # A nested class is a union inside a Rust class; RE2 has no nesting but
                    # this text is only ever given to Rust.
                    out.append(f"[^{members}]" if negated else members)
                else:
                    out.append(f"[^{members}]" if negated else f"[{members}]")
            elif lower == "b" and not in_class:
                out.append(f"(?-u:\\{escaped})")
            else:
                out.append(pattern[position : position + 2])
            position += 2
            continue
        if in_class:
            # "]" right after "[" or "[^" is a literal in RE2; "[:alpha:]" is a POSIX class.
            if char == "]" and position > class_start:
                in_class = False
            elif char == "[" and pattern.startswith("[:", position):
                end = pattern.find(":]", position + 2)
                if end != -1:
                    out.append(pattern[position : end + 2])
                    position = end + 2
                    continue
        elif char == "[":
            in_class = True
            class_start = position + 1
            if pattern.startswith("^", class_start):
                class_start += 1
            out.append(char)
            position += 1
            continue
        out.append(char)
        position += 1
    return "".join(out)


def check_polars_regex(pattern: str) -> None:
    """Raise ValueError if the columnar evaluator cannot compile ``pattern`` (Rust's regex
    crate has its own size limit: ``\\pL{300}`` passes RE2 but not Rust)."""
    import polars as pl

    try:
        pl.select(pl.lit("").str.contains(polars_regex(pattern), strict=True)).item()
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "rejected by Polars"
        raise ValueError(first.removeprefix("regex error: ").rstrip(".")) from None
