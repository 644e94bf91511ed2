"""Arithmetic the model would otherwise guess at: one expression evaluated by simpleeval,
which walks Python's AST itself and allows only numbers, operators and the math functions
named here (no names, attributes, calls or imports of anything else, no `eval`)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import simpleeval
from aiogram.utils.i18n import gettext as _
from simpleeval import SimpleEval

from app.tools.base import Tool, ToolContext, ToolError

MAX_LENGTH = 500  # characters of one expression
# simpleeval's power limit is 4,000,000: 10 ** 4_000_000 would take the process's memory
# and time. A module global of simpleeval's, read at each power.
simpleeval.MAX_POWER = 10_000

FUNCTIONS = {
    name: getattr(math, name)
    for name in (
        "sqrt",
        "exp",
        "log",
        "log10",
        "log2",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "sinh",
        "cosh",
        "tanh",
        "floor",
        "ceil",
        "factorial",
        "gcd",
        "hypot",
        "degrees",
        "radians",
    )
} | {"abs": abs, "round": round, "min": min, "max": max, "int": int, "float": float}
NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}


def evaluate(expression: str) -> str:
    """The value of an arithmetic expression as text; ToolError saying why it has none."""
    expression = expression.strip().replace("^", "**").replace("×", "*").replace("÷", "/")
    if not expression:
        raise ToolError("the expression is empty.")
    if len(expression) > MAX_LENGTH:
        raise ToolError(f"the expression is longer than {MAX_LENGTH} characters.")
    if "factorial" in expression and any(len(n) > 3 for n in _numbers(expression)):
        raise ToolError("factorials are computed up to 999!.")
    evaluator = SimpleEval(functions=FUNCTIONS, names=NAMES)
    try:
        value = evaluator.eval(expression)
    except ZeroDivisionError:
        raise ToolError("division by zero.") from None
    except (simpleeval.NumberTooHigh, OverflowError):
        raise ToolError("the result is too large to compute.") from None
    except simpleeval.InvalidExpression as exc:
        raise ToolError(f"not an arithmetic expression: {exc}") from None
    except (SyntaxError, TypeError, ValueError) as exc:
        raise ToolError(f"the expression cannot be computed: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError("the expression has no numeric value.")
    try:
        return f"{expression} = {_format(value)}"
    except ValueError:  # an int of more than 4,300 digits has no str() by default
        raise ToolError("the result has too many digits to show.") from None


def _numbers(expression: str) -> list[str]:
    number, found = "", []
    for char in expression + " ":
        if char.isdigit():
            number += char
        elif number:
            found.append(number)
            number = ""
    return found


def _format(value: int | float) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    return str(value)


async def _calculate(context: ToolContext, arguments: dict[str, Any]) -> str:
    expression = arguments.get("expression")
    if not isinstance(expression, str):
        raise ToolError("pass the expression as a string in 'expression'.")
    # In a thread: a large power still takes some milliseconds.
    return await asyncio.to_thread(evaluate, expression)


CALCULATOR = Tool(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression exactly: + - * / // % ** and parentheses, and "
        "sqrt, exp, log, log10, log2, sin, cos, tan, asin, acos, atan, floor, ceil, "
        "factorial, gcd, hypot, abs, round, min, max, with pi and e. Use it for any "
        "calculation instead of computing in your head."
    ),
    parameters={
        "type": "object",
        "properties": {
            "expression": {"type": "string", "description": "For example: (17.5 * 3) / 4 + sqrt(2)"}
        },
        "required": ["expression"],
        "additionalProperties": False,
    },
    run=_calculate,
    doing=lambda arguments: _("Calculating: {expression}").format(
        expression=str(arguments.get("expression", ""))[:80]
    ),
)
