"""Just enough of the ClassAd language for -constraint expressions and +Attr values.

Literals (integers, reals, "strings", true, false, undefined), attribute references
(case-insensitive, optional MY./TARGET. prefix), ! and unary -, * / + -, < <= > >=,
== != (case-insensitive on strings), =?= =!= (identity), && || with the three-valued logic
of the ClassAd reference (HTCondor manual, "ClassAd Mechanism": "Operators" and "Undefined
and error"), parentheses, and the functions isUndefined, toLower, toUpper, size and regexp.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any


class Undefined:
    """The ClassAd value UNDEFINED."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>\d+\.\d*(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?|\.\d+)
      | (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<op>=\?=|=!=|==|!=|<=|>=|&&|\|\||[-+*/<>!()\[\],.?:])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class ClassAdError(ValueError):
    """An expression this subset cannot parse."""


def tokenize(text: str) -> list[tuple[str, str]]:
    pos = 0
    out: list[tuple[str, str]] = []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ClassAdError(f"Parse error of constraint expression near: {text[pos:]}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


Node = Callable[[Mapping[str, Any]], Any]

_BINARY = [
    ("||",), ("&&",), ("==", "!=", "=?=", "=!="), ("<", "<=", ">", ">="), ("+", "-"), ("*", "/"),
]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.i >= len(self.tokens):
            raise ClassAdError("Parse error of constraint expression: unexpected end")
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.binary(0)
        if self.i != len(self.tokens):
            raise ClassAdError(f"Parse error of constraint expression near: {self.peek()}")
        return node

    def binary(self, level: int) -> Node:
        if level == len(_BINARY):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek() in _BINARY[level]:
            op = self.take()[1]
            right = self.binary(level + 1)
            left = _combine(op, left, right)
        return left

    def unary(self) -> Node:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda ad: _not(inner(ad))
        if self.peek() == "-":
            self.take()
            inner = self.unary()
            return lambda ad: _arith("-", 0, inner(ad))
        return self.primary()

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "num":
            value: Any = float(text) if any(c in text for c in ".eE") else int(text)
            return lambda ad: value
        if kind == "str":
            literal = bytes(text[1:-1], "utf-8").decode("unicode_escape")
            return lambda ad: literal
        if text == "(":
            inner = self.binary(0)
            if self.take()[1] != ")":
                raise ClassAdError("Parse error of constraint expression: missing )")
            return inner
        if kind == "name":
            lower = text.lower()
            if lower == "true":
                return lambda ad: True
            if lower == "false":
                return lambda ad: False
            if lower == "undefined":
                return lambda ad: UNDEFINED
            if lower in ("my", "target") and self.peek() == ".":
                self.take()
                kind, text = self.take()
                lower = text.lower()
            if self.peek() == "(":
                return self.call(lower)
            return lambda ad: _lookup(ad, lower)
        raise ClassAdError(f"Parse error of constraint expression near: {text}")

    def call(self, name: str) -> Node:
        self.take()
        args: list[Node] = []
        if self.peek() != ")":
            args.append(self.binary(0))
            while self.peek() == ",":
                self.take()
                args.append(self.binary(0))
        self.take()
        functions: dict[str, Callable[[Any], Any]] = {
            "isundefined": lambda v: v is UNDEFINED,
            "tolower": lambda v: v.lower() if isinstance(v, str) else UNDEFINED,
            "toupper": lambda v: v.upper() if isinstance(v, str) else UNDEFINED,
            "size": lambda v: len(v) if isinstance(v, str) else UNDEFINED,
        }
        if name == "regexp" and len(args) in (2, 3):
            pattern, target = args[0], args[1]
            flags_arg = args[2] if len(args) == 3 else (lambda ad: "")

            def regexp(ad: Mapping[str, Any]) -> Any:
                p, t, f = pattern(ad), target(ad), flags_arg(ad)
                if not isinstance(p, str) or not isinstance(t, str):
                    return UNDEFINED
                flags = re.IGNORECASE if isinstance(f, str) and "i" in f.lower() else 0
                return re.search(p, t, flags) is not None
            return regexp
        if name not in functions or len(args) != 1:
            raise ClassAdError(f"Unknown function {name}")
        fn, arg = functions[name], args[0]
        return lambda ad: fn(arg(ad))


def _lookup(ad: Mapping[str, Any], lower: str) -> Any:
    for key, value in ad.items():
        if key.lower() == lower:
            return value
    return UNDEFINED


def _not(v: Any) -> Any:
    return (not v) if isinstance(v, bool) else UNDEFINED


def _arith(op: str, a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = int(a) if isinstance(a, bool) else a, int(b) if isinstance(b, bool) else b
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return UNDEFINED
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        return UNDEFINED
    return a // b if isinstance(a, int) and isinstance(b, int) else a / b


def _combine(op: str, left: Node, right: Node) -> Node:
    if op == "&&":
        def and_(ad: Mapping[str, Any]) -> Any:
            a = left(ad)
            if a is False:
                return False
            b = right(ad)
            if b is False:
                return False
            return True if a is True and b is True else UNDEFINED
        return and_
    if op == "||":
        def or_(ad: Mapping[str, Any]) -> Any:
            a = left(ad)
            if a is True:
                return True
            b = right(ad)
            if b is True:
                return True
            return False if a is False and b is False else UNDEFINED
        return or_
    if op in ("=?=", "=!="):
        def identical(ad: Mapping[str, Any]) -> Any:
            a, b = left(ad), right(ad)
            same = type(a) is type(b) and a == b
            return same if op == "=?=" else not same
        return identical

    def compare(ad: Mapping[str, Any]) -> Any:
        a, b = left(ad), right(ad)
        if op in "+-*/":
            return _arith(op, a, b)
        if a is UNDEFINED or b is UNDEFINED:
            return UNDEFINED
        if isinstance(a, str) and isinstance(b, str):
            a, b = a.lower(), b.lower()
        elif isinstance(a, str) or isinstance(b, str):
            return UNDEFINED  # comparing a string with a number is an error in ClassAds
        result = {
            "==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
            "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
        }[op]()
        return bool(result)
    return compare


def compile_expr(text: str) -> Node:
    """A callable evaluating ``text`` against an ad; raises ClassAdError when unparsable."""
    return _Parser(tokenize(text)).parse()


def matches(expr: Node, ad: Mapping[str, Any]) -> bool:
    """A constraint selects an ad only when it evaluates to true."""
    return expr(ad) is True


def literal(text: str) -> Any:
    """The value of a +Attr = value line (a constant expression)."""
    return compile_expr(text)({})
