"""The workers' vote after every loop of steps: stop now, save now, or go on.

A signal may reach one worker only (or reach them between different loops),
and workers' clocks differ; all must stop, or save, after the same step, or
the others would wait for them at their next synchronisation forever. So
after every loop the workers vote (a small all-reduce): they stop for the
first signal of `stop_signals.STOP_SIGNALS` that any of them received, and
save when any of them is due.
"""

import tensorflow as tf

from trainers import distribute as distribute_lib
from trainers import stop_signals


class WorkerVote:
    """Counts the workers' ballots under `strategy`; with one worker, its
    own ballot is the result and nothing is reduced."""

    def __init__(self, strategy: tf.distribute.Strategy):
        self._strategy = strategy
        self._num_workers = distribute_lib.num_workers(strategy)
        self._vote_fn = None

    def __call__(
        self, local_signal: int | None, saving_due: bool
    ) -> tuple[int | None, bool]:
        """The signal every worker stops for now (None: go on), and whether
        every worker checkpoints now if it goes on.

        Args:
          local_signal: the stop signal this worker received, or None.
          saving_due: whether this worker is due to checkpoint by time.
        """
        if self._num_workers == 1:
            return local_signal, saving_due
        if self._vote_fn is None:
            strategy = self._strategy

            @tf.function
            def vote(ballot):
                return strategy.reduce(
                    tf.distribute.ReduceOp.SUM,
                    strategy.run(tf.identity, args=(ballot,)),
                    axis=None,
                )

            self._vote_fn = vote
        ballot = tf.constant(
            [
                1.0 if local_signal == signal_number else 0.0
                for signal_number in stop_signals.STOP_SIGNALS
            ]
            + [1.0 if saving_due else 0.0]
        )
        totals = self._vote_fn(ballot).numpy()
        for signal_number, total in zip(stop_signals.STOP_SIGNALS, totals):
            if total > 0:
                return signal_number, False
        return None, bool(totals[-1] > 0)
