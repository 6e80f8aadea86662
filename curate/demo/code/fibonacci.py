"""Fibonacci numbers, three ways: a small example of recursion, iteration and memoisation."""

from functools import lru_cache


def fib_recursive(n: int) -> int:
    """Exponential time: each call branches twice."""
    if n < 2:
        return n
    return fib_recursive(n - 1) + fib_recursive(n - 2)


def fib_iterative(n: int) -> int:
    """Linear time and constant memory."""
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


@lru_cache(maxsize=None)
def fib_memo(n: int) -> int:
    """Linear time: every value is computed once and cached."""
    return n if n < 2 else fib_memo(n - 1) + fib_memo(n - 2)


if __name__ == "__main__":
    for n in (10, 20, 30):
        assert fib_recursive(n) == fib_iterative(n) == fib_memo(n)
        print(n, fib_iterative(n))
