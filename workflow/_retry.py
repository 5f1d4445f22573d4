"""Per-executor retry policy: a value object the scheduler consults, not a mixin."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("RetryPolicy",)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failing executor invocation with exponential backoff.

    Each attempt starts from a clean slate: messages, outputs and state writes of a failed
    attempt are discarded, so a retried executor never sends twice.
    """

    max_attempts: int = 3
    initial_delay: float = 0.5
    backoff: float = 2.0
    max_delay: float = 30.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts!r}")
        if self.initial_delay < 0 or self.max_delay < 0 or self.backoff < 1:
            raise ValueError(
                "RetryPolicy needs initial_delay >= 0, max_delay >= 0 and backoff >= 1, got "
                f"{self.initial_delay!r}, {self.max_delay!r}, {self.backoff!r}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_delay, self.initial_delay * self.backoff ** (attempt - 1)))

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        return attempt < self.max_attempts and isinstance(error, self.retry_on)
