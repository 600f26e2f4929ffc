"""Argument types shared by the commands: each turns one word into a typed value or says why not."""

from __future__ import annotations

import argparse

from cnnlab.errors import UsageError


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (no usage dump) and exit with code 2."""

    def error(self, message):
        self.exit(2, f"cnnlab: error: {message}\n")


def _argument_type(convert, what: str):
    """An argparse type from `convert`, with `what` in the message when the word is not one."""

    def parse(text: str):
        try:
            value = convert(text)
        except (ValueError, TypeError):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        return value

    parse.__name__ = what
    return parse


def _positive(convert):
    def parse(text):
        value = convert(text)
        if not value > 0:
            raise ValueError(text)
        return value

    return parse


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


positive_int = _argument_type(_positive(int), "a positive integer")
positive_float = _argument_type(_positive(float), "a positive number")
non_negative_float = _argument_type(_non_negative, "zero or more")
integer = _argument_type(int, "an integer")


def shape_argument(text: str) -> tuple[int, ...]:
    """``96``, ``1x96x96`` or ``8x1x96x96``, parsed by the library's one input-shape parser."""
    # deferred: a command imports its library only when it runs, so start-up stays quick
    from cnnlab.models.build import parse_input_shape

    try:
        return parse_input_shape(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def int_list(text: str) -> list[int]:
    """Positive integers joined by commas, e.g. ``32,64,128``."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers joined by ',', got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected positive integers such as 32,64,128, got {text!r}")
    return values
