"""What the loop hands out: `Progress` (after each compiled chunk), `Batch` (a finished batch of jobs),
`BatchState` (a stopped batch, to resume from), and the joining of batches' loss histories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Optional, Sequence

import jax
import numpy as np

from ..core.objective import (
    TERMS,
)


@dataclass(frozen=True)
class Progress:
    """What the callback receives between chunks.

    Attributes:
      step: steps completed so far.
      total_steps: steps of the whole run.
      losses: {"content", "style", "tv", "total": [k]} per-step terms of the chunk just run (unweighted, except
        total), each evaluated at the image before that step's update (lbfgs-armijo: at the image after it).
      image: [H, W, 3] current image (a device array; under lbfgs and lbfgs-torch it may leave [0, 1]).
      elapsed: seconds since the optimisation started (compilation included).
      scale, size: index and (H, W) of the current scale.
      blocks: how the scale runs by blocks (`planning.blocks_used`: tile, halo, count, planned peak), None whole.
      first_job: the batch index of this record's first job.
    (From `stylize_batch`/`optimize`, losses are [k, G] and image is [G, H, W, 3] for the G jobs first_job,
    first_job + 1, ... of one compiled program; see `jobs_per_program`.)
    """

    step: int
    total_steps: int
    losses: Mapping[str, np.ndarray]
    image: jax.Array
    elapsed: float
    scale: int = 0
    size: tuple[int, int] = (0, 0)
    blocks: Optional[Mapping] = None
    first_job: int = 0


class Batch(NamedTuple):
    """A batch of jobs as it ends (`optimize_batches`): jobs first, first + 1, ..., first + G - 1.

    images: [G, H, W, 3] in [0, 1]: each job's final image, or for a job whose loss stopped being finite its last
      image with a finite loss (resized to the output size), or NaN where it never had one.
    history: {term: [steps run, G]} (a batch whose every job was lost stops early: fewer rows than the schedule's
      steps).
    image_steps: [G] the step each image is from: the schedule's steps, less for a diverged job (-1: NaN image).
    blocks: per scale, how the batch runs by blocks (`planning.blocks_used`; None: the whole image), from the plan,
      so that a resumed batch says it as the uninterrupted one does.
    """

    first: int
    images: np.ndarray
    history: dict[str, np.ndarray]
    image_steps: np.ndarray
    blocks: Optional[list] = None


@dataclass
class BatchState:
    """Where a batch stands between two chunks, on the host: everything that continues it exactly
    (`optimize_batches`' `resume`; the command line saves it as a checkpoint when a run is stopped).

    first: the batch's first job; scale: the scale it is in; step: steps done over all scales (a multiple of the
    chunk length within `scale`); z: [G', 1, H, W, 3] the variables (G': the jobs padded to the devices);
    opt_state: the optimiser state's leaves (`jax.tree.leaves` order, leading axis G'); history: {term: [step, G]};
    finite_steps: [G] the step of each job's last image with a finite loss (-1: none), finite_images: those images;
    images: [G, H, W, 3] the current images (clipped; not needed to resume).
    """

    first: int
    scale: int
    step: int
    z: np.ndarray
    opt_state: list[np.ndarray]
    history: dict[str, np.ndarray]
    finite_steps: np.ndarray
    finite_images: list[Optional[np.ndarray]]
    images: Optional[np.ndarray] = None


def joined_histories(histories: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches' histories {term: [steps, G_b]} side by side, {term: [steps, sum G_b]}; a batch that stopped early
    (fewer rows) padded with NaN to the longest one's rows."""
    rows = max(len(h["total"]) for h in histories)
    pad = lambda a: np.concatenate([a, np.full((rows - len(a), *a.shape[1:]), np.nan, a.dtype)])  # noqa: E731
    return {k: np.concatenate([pad(h[k]) for h in histories], axis=1) for k in TERMS}


def joined_batches(batches: list[Batch]) -> tuple[list[np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Batches as one: the images, the history {term: [steps, J]} (`joined_histories`) and the image steps [J]."""
    return ([image for b in batches for image in b.images], joined_histories([b.history for b in batches]),
            np.concatenate([b.image_steps for b in batches]))
