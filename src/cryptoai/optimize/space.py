"""Search spaces and constraints: what parameter sets a sweep may try.

A space maps each parameter to a list of values (exactly these) or a range
(``{low, high, step, log}``). Constraints are small expressions over the space's names
(``fast < slow``, ``slow - fast >= 10 and fast > 2``), parsed with `ast` and evaluated by a
tiny interpreter that knows only names, numbers, comparisons, ``and/or/not`` and ``+ - * /``:
nothing in a config is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import itertools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cryptoai.errors import BadInputError

#: Combinations checked when proving a constraint satisfiable (more are probed at random).
MAX_PROBE = 200_000


@dataclass(frozen=True)
class Dimension:
    """One parameter's values: ``values`` (a list) or a range ``low..high`` (inclusive).

    ``kind`` is ``"int"``, ``"float"`` or ``"choice"``; a range with ``step`` is a regular
    grid from ``low`` (``high`` included when it falls on the grid).
    """

    name: str
    kind: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.values is None

    @property
    def finite(self) -> bool:
        """Whether the dimension has a finite list of points (a list, an int or stepped range)."""
        return not self.is_range or self.step is not None or (self.kind == "int" and not self.log)

    def grid(self) -> list[Any]:
        """Every point of the dimension, in order (lists as written, ranges ascending)."""
        if not self.is_range:
            return list(self.values)
        if not self.finite:
            raise BadInputError(
                f"space.{self.name}: a {'log ' if self.log else ''}{self.kind} range without"
                " step has no grid: give step, or list the values"
            )
        step = self.step if self.step is not None else 1
        n = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        points = [self.low + i * step for i in range(n)]
        if self.kind == "int":
            return [int(round(p)) for p in points]
        return [float(round(p, 12)) for p in points]

    def sample(self, rng: np.random.Generator) -> Any:
        """One point drawn uniformly (log-uniformly for ``log``), snapped to ``step``."""
        if not self.is_range:
            return self.values[int(rng.integers(len(self.values)))]
        if self.step is not None:
            points = self.grid()
            return points[int(rng.integers(len(points)))]
        if self.log:
            x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            x = rng.uniform(self.low, self.high)
        if self.kind == "int":
            return int(min(max(round(x), self.low), self.high))
        return float(x)

    def probe(self, n: int = 21) -> list[Any]:
        """The grid when it is small, else ``n`` evenly spread points (ends included)."""
        if self.finite:
            points = self.grid()
            if len(points) <= 1000:
                return points
        else:
            points = None
        lo, hi = self.low, self.high
        if self.log:
            xs = np.exp(np.linspace(math.log(lo), math.log(hi), n))
        else:
            xs = np.linspace(lo, hi, n)
        if self.kind == "int":
            return sorted({int(round(x)) for x in xs})
        return [float(x) for x in xs]

    def normalize(self, value: Any) -> float:
        """The value's position in [0, 1] along the dimension (lists: by list position)."""
        if not self.is_range:
            if len(self.values) < 2:
                return 0.0
            numeric = all(_is_number(v) for v in self.values)
            if numeric:
                lo, hi = min(self.values), max(self.values)
                return 0.0 if hi == lo else (float(value) - lo) / (hi - lo)
            return self.values.index(value) / (len(self.values) - 1)
        if self.high == self.low:
            return 0.0
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (float(value) - self.low) / (self.high - self.low)

    def describe(self) -> Any:
        """The dimension as it would be written in a config (for the resolved config)."""
        if not self.is_range:
            return list(self.values)
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def make_dimension(name: str, spec: Any, default: Any) -> Dimension:
    """A `Dimension` from a config entry; ``default`` (the strategy's) decides int vs float."""
    if isinstance(spec, list | tuple):
        if not spec:
            raise BadInputError(f"space.{name}: the list of values is empty: give at least one")
        if len(set(map(repr, spec))) != len(spec):
            raise BadInputError(f"space.{name}: a value is listed twice: list each once")
        return Dimension(name, "choice", values=tuple(spec))
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"low", "high", "step", "log"})
        if unknown:
            raise BadInputError(
                f"space.{name}: unknown key(s) {', '.join(unknown)}: a range takes low, high,"
                " step, log"
            )
        if "low" not in spec or "high" not in spec:
            raise BadInputError(f"space.{name}: a range needs both low and high")
        low, high, step, log = spec["low"], spec["high"], spec.get("step"), spec.get("log", False)
        for key, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and not _is_number(v):
                raise BadInputError(f"space.{name}.{key}: {v!r} is not a number")
        if not isinstance(log, bool):
            raise BadInputError(f"space.{name}.log: use true or false, got {log!r}")
        if not high >= low:
            raise BadInputError(f"space.{name}: the range is empty (low {low} > high {high})")
        if step is not None and not step > 0:
            raise BadInputError(f"space.{name}.step: use a positive step, got {step}")
        if log and not low > 0:
            raise BadInputError(f"space.{name}: a log range needs low > 0, got {low}")
        if log and step is not None:
            raise BadInputError(f"space.{name}: a log range takes no step: drop one of them")
        whole = all(isinstance(v, int) for v in (low, high) + ((step,) if step else ()))
        is_int = isinstance(default, int) and not isinstance(default, bool)
        if is_int and not whole:
            raise BadInputError(
                f"space.{name}: parameter {name} is an integer: give whole-number low, high, step"
            )
        kind = "int" if is_int or (whole and default is None) else "float"
        as_num = int if kind == "int" else float
        return Dimension(
            name,
            kind,
            low=as_num(low),
            high=as_num(high),
            step=None if step is None else as_num(step),
            log=log,
        )
    raise BadInputError(
        f"space.{name}: give a list of values or a range {{low, high, step}}, got {spec!r}"
    )


# ------------------------------------------------------------------------------ constraints

_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
_SYMBOL = {ast.Div: "/", ast.Mod: "%", ast.Pow: "**", ast.FloorDiv: "//"}


@dataclass(frozen=True)
class Constraint:
    """A parsed constraint: ``text`` as written and ``check(params) -> bool``."""

    text: str
    check: Callable[[Mapping[str, Any]], bool]
    names: frozenset[str]

    def __call__(self, params: Mapping[str, Any]) -> bool:
        return self.check(params)


def parse_constraint(text: str, names: Sequence[str], where: str = "constraints") -> Constraint:
    """Parse ``text`` safely; unknown names and anything beyond simple arithmetic are errors."""
    if not isinstance(text, str) or not text.strip():
        raise BadInputError(f"{where}: a constraint must be an expression such as 'fast < slow'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise BadInputError(
            f"{where}: {text!r} is not a valid expression ({exc.msg}): write e.g. 'fast < slow'"
        ) from None
    body = tree.body
    if not isinstance(body, ast.Compare | ast.BoolOp) and not (
        isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.Not)
    ):
        raise BadInputError(
            f"{where}: {text!r} is not a condition: compare values, e.g. 'fast < slow'"
        )
    used: set[str] = set()
    fn = _compile(body, text, set(names), used, where)

    def check(params: Mapping[str, Any]) -> bool:
        try:
            return bool(fn(params))
        except TypeError:
            raise BadInputError(
                f"{where}: {text!r} mixes text and numbers ({dict(params)}): compare like with like"
            ) from None

    return Constraint(text, check, frozenset(used))


def _compile(
    node: ast.AST, text: str, names: set[str], used: set[str], where: str
) -> Callable[[Mapping[str, Any]], Any]:
    def sub(n: ast.AST) -> Callable[[Mapping[str, Any]], Any]:
        return _compile(n, text, names, used, where)

    if isinstance(node, ast.Name):
        if node.id not in names:
            valid = ", ".join(sorted(names)) or "(none)"
            raise BadInputError(
                f"{where}: {text!r} uses {node.id!r}, which is not in the space: use {valid}"
            )
        used.add(node.id)
        key = node.id
        return lambda p: p[key]
    if isinstance(node, ast.Constant) and (_is_number(node.value) or isinstance(node.value, str)):
        value = node.value
        return lambda p: value
    if isinstance(node, ast.UnaryOp):
        operand = sub(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda p: not operand(p)
        if isinstance(node.op, ast.USub):
            return lambda p: -operand(p)
        if isinstance(node.op, ast.UAdd):
            return operand
    if isinstance(node, ast.BinOp):
        left, right = sub(node.left), sub(node.right)
        if isinstance(node.op, ast.Div):
            return lambda p: _divide(left(p), right(p))
        op = _BINARY.get(type(node.op))
        if op is not None:
            return lambda p: op(left(p), right(p))
        symbol = _SYMBOL.get(type(node.op), type(node.op).__name__)
        raise BadInputError(f"{where}: {text!r} uses {symbol}: only + - * / are allowed")
    if isinstance(node, ast.BoolOp):
        parts = [sub(v) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda p: all(f(p) for f in parts)
        return lambda p: any(f(p) for f in parts)
    if isinstance(node, ast.Compare):
        first = sub(node.left)
        ops, rest = [], []
        for op_node, comp in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise BadInputError(
                    f"{where}: {text!r} uses {type(op_node).__name__}: compare with"
                    " < <= > >= == != only"
                )
            ops.append(op)
            rest.append(sub(comp))

        def compare(p: Mapping[str, Any]) -> bool:
            a = first(p)
            for op, f in zip(ops, rest, strict=True):
                b = f(p)
                if not op(a, b):
                    return False
                a = b
            return True

        return compare
    raise BadInputError(
        f"{where}: {text!r} contains {type(node).__name__}: use names of the space, numbers,"
        " comparisons, and/or/not and + - * /"
    )


def _divide(a: Any, b: Any) -> float:
    return math.nan if b == 0 else a / b  # NaN compares False: the combination is skipped


def satisfies(params: Mapping[str, Any], constraints: Sequence[Constraint]) -> bool:
    return all(c(params) for c in constraints)


def grid_points(dims: Sequence[Dimension]) -> list[dict[str, Any]]:
    """The Cartesian product of every dimension's grid, the first dimension slowest."""
    names = [d.name for d in dims]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(d.grid() for d in dims))
    ]


def check_satisfiable(
    dims: Sequence[Dimension], constraints: Sequence[Constraint], seed: int = 0
) -> None:
    """Raise when no combination of the space satisfies the constraints together (for a
    finite space every combination is checked; otherwise a probe of each range)."""
    if not constraints:
        return
    probes = [d.probe() for d in dims]
    names = [d.name for d in dims]
    size = math.prod(len(p) for p in probes)
    if size <= MAX_PROBE:
        combos = itertools.product(*probes)
    else:
        rng = np.random.default_rng(seed)
        combos = (tuple(d.sample(rng) for d in dims) for _ in range(MAX_PROBE))
    for combo in combos:
        if satisfies(dict(zip(names, combo, strict=True)), constraints):
            return
    for c in constraints:  # name the one that alone excludes everything, when there is one
        alone = (
            itertools.product(*probes)
            if size <= MAX_PROBE
            else itertools.islice(itertools.product(*probes), MAX_PROBE)
        )
        if not any(c(dict(zip(names, combo, strict=True))) for combo in alone):
            raise BadInputError(
                f"constraints: {c.text!r} is impossible: no combination of the space satisfies"
                " it; widen the space or fix the constraint"
            )
    texts = " and ".join(repr(c.text) for c in constraints)
    raise BadInputError(
        f"constraints: {texts} together are impossible: no combination of the space satisfies"
        " them all; widen the space or relax one"
    )
