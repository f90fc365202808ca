"""Training output: a progress bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import IO, Any

from tqdm import tqdm

VERBOSITY = ("auto", 0, 1, 2)


def check_verbose(verbose: object) -> None:
    if verbose not in VERBOSITY or isinstance(verbose, bool):
        raise ValueError(
            "verbose must be 'auto' (bar on a terminal, else a line per epoch), "
            f"0 (silent), 1 (bar) or 2 (a line per epoch), got {verbose!r}"
        )


def _value(key: str, value: float) -> str:
    return f"{value:.3g}" if key == "lr" else f"{value:.4f}"


def format_logs(logs: dict[str, float]) -> str:
    return "  ".join(f"{k} {_value(k, v)}" for k, v in logs.items())


def compact_logs(logs: dict[str, float]) -> str:
    """The same metrics in few columns, so they fit beside a progress bar."""
    return " ".join(
        f"{k.replace('accuracy', 'acc')}={_value(k, v)}" for k, v in logs.items()
    )


class Progress:
    """Reports a ``fit`` run; ``verbose`` as in :meth:`Sequential.fit`."""

    def __init__(
        self, verbose: object, epochs: int, steps: int, stream: IO[str] | None = None
    ) -> None:
        check_verbose(verbose)
        # the bar redraws itself on stderr; epoch lines go to stdout for logs
        self.bar_stream = stream if stream is not None else sys.stderr
        self.line_stream = stream if stream is not None else sys.stdout
        if verbose == "auto":
            isatty = getattr(self.bar_stream, "isatty", None)
            verbose = 1 if callable(isatty) and isatty() else 2
        self.mode = verbose
        self.epochs, self.steps = epochs, steps
        self.bar: Any = None

    def epoch_begin(self, epoch: int) -> None:
        if self.mode == 1:
            self.bar = tqdm(
                total=self.steps,
                desc=f"epoch {epoch}/{self.epochs}",
                unit="batch",
                file=self.bar_stream,
                leave=True,
                dynamic_ncols=True,
            )

    def batch_end(self, logs: dict[str, float]) -> None:
        """Advance the bar; ``logs`` are the running metrics of the epoch."""
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n % 20 == 0 or self.bar.n == self.steps:
                self.bar.set_postfix_str(compact_logs(logs))

    def epoch_end(self, epoch: int, seconds: float, logs: dict[str, float]) -> None:
        if self.mode == 1 and self.bar is not None:
            self.bar.set_postfix_str(compact_logs(logs))
            self.bar.close()
            self.bar = None
        elif self.mode == 2:
            width = len(str(self.epochs))
            print(
                f"epoch {epoch:>{width}}/{self.epochs}  {format_logs(logs)}  "
                f"({seconds:.1f} s)",
                file=self.line_stream,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["Progress", "check_verbose", "compact_logs", "format_logs"]
