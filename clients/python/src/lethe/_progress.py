"""Progress display for ``erase(wait=True, progress=…)``: a tqdm bar when tqdm is
installed, one line per stage on stderr otherwise, or the caller's callback."""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Union

from .types import ErasureEvent, JobStatus, Stage

ProgressLike = Union[bool, Callable[[ErasureEvent], None], None]

_STAGES = [
    Stage.FREEZE,
    Stage.PLAN,
    Stage.DELETE,
    Stage.VERIFY,
    Stage.RESIDUAL,
    Stage.FORGET_LINEAGE,
    Stage.PHYSICAL,
    Stage.LOG,
]


def _stages_done(ev: ErasureEvent) -> int:
    if ev.status == JobStatus.COMPLETED or ev.stage == Stage.DONE:
        return len(_STAGES)
    try:
        return _STAGES.index(ev.stage)
    except ValueError:
        return 0


class Progress:
    """Receives every event of one job; ``close()`` when the job has ended."""

    def __init__(self, spec: ProgressLike, job_id: str) -> None:
        self._callback: Optional[Callable[[ErasureEvent], None]] = None
        self._bar: Any = None
        self._lines = False
        self._job = job_id[:8]
        if callable(spec):
            self._callback = spec
        elif spec:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                self._lines = True
            else:
                self._bar = tqdm(total=len(_STAGES), desc=f"erase {self._job}", unit="stage", leave=True)

    def __call__(self, ev: ErasureEvent) -> None:
        if self._callback is not None:
            self._callback(ev)
        elif self._bar is not None:
            self._bar.n = _stages_done(ev)
            self._bar.set_postfix_str(f"{ev.stage.value} {ev.status.value}", refresh=False)
            self._bar.refresh()
        elif self._lines:
            msg = f" {ev.message}" if ev.message else ""
            print(f"erase {self._job}: {ev.stage.value} {ev.status.value}{msg}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
