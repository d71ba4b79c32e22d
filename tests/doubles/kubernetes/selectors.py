"""Label and field selectors as the API server parses them.

Label selector grammar from "Labels and Selectors"
(https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors):
``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, joined by commas.
Field selectors (https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/)
take ``path=value``, ``path==value`` and ``path!=value`` on dotted paths such as
``metadata.name`` or ``status.phase``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Requirement = Callable[[Mapping[str, str]], bool]

_SET = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*$")


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest."""


def _split_terms(text: str) -> list[str]:
    """Split on the commas outside parentheses."""
    terms: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        terms.append(current)
    return terms


def _requirement(term: str) -> Requirement:
    if match := _SET.match(term):
        key, operator = match.group(1), match.group(2)
        values = {v.strip() for v in match.group(3).split(",") if v.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQ.match(term):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS.match(term):
        negate, key = match.groups()
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise SelectorError(f"unable to parse requirement: {term.strip()!r}")


def label_selector(text: str | None) -> Requirement:
    """A predicate over a label map; an empty selector matches everything."""
    if not text:
        return lambda labels: True
    requirements = [_requirement(term) for term in _split_terms(text)]
    return lambda labels: all(requirement(labels) for requirement in requirements)


def _expression(operator: str, key: str, values: set[str]) -> Requirement:
    def check(labels: Mapping[str, str]) -> bool:
        if operator == "In":
            return labels.get(key) in values
        if operator == "NotIn":
            return labels.get(key) not in values
        if operator == "Exists":
            return key in labels
        return key not in labels

    if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
        raise SelectorError(f"{operator!r} is not a valid label selector operator")
    return check


def match_label_selector_object(selector: Mapping[str, Any] | None) -> Requirement:
    """A predicate for a structured LabelSelector (matchLabels + matchExpressions)."""
    if not selector:
        return lambda labels: True
    checks: list[Requirement] = [
        _expression("In", key, {value})
        for key, value in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        checks.append(_expression(expression["operator"], expression["key"],
                                  set(expression.get("values") or [])))
    return lambda labels: all(check(labels) for check in checks)


def field_value(obj: Mapping[str, Any], path: str) -> str | None:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_check(path: str, operator: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    def check(obj: Mapping[str, Any]) -> bool:
        equal = (field_value(obj, path) or "") == value
        return not equal if operator == "!=" else equal

    return check


def field_selector(text: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate over a whole object; paths are dotted JSON paths."""
    if not text:
        return lambda obj: True
    checks: list[Callable[[Mapping[str, Any]], bool]] = []
    for term in _split_terms(text):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if match is None:
            raise SelectorError(f"invalid selector: {text!r}; can't understand {term!r}")
        checks.append(_field_check(*match.groups()))
    return lambda obj: all(check(obj) for check in checks)
