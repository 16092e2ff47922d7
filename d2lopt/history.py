"""What a training run returns: one `History` family for every trainer.

Every history records, per update, the rate it used (``lr``) and its minibatch loss
(``batch_loss``); ``updates`` and ``diverged`` (the rule of `d2lopt.utils.Divergence`); and
``evals``, what the trainer's ``evaluate=`` hook returned at each logged point. Two kinds add
what their trainer measures:

* `LossHistory` (``train_ch11``, ``train_concise_ch11``) unpacks as the book's
  ``times, losses``; ``epochs`` and ``examples`` locate each logged point.
* `ClassifierHistory` (``classify.train``) has per-epoch ``train_loss``, ``train_acc``,
  ``test_acc``.

For a schedule-free optimizer the logged metric is taken at the averaged point x; the same
metric at the training point y (what forgetting ``optimizer.eval()`` reports) is kept in
``losses_at_y`` / ``test_acc_at_y``.
"""
__all__ = ["History", "LossHistory", "ClassifierHistory"]


class History:
    """The fields every trainer fills (see the module docstring)."""

    def _init_common(self):
        self.lr, self.batch_loss, self.evals = [], [], []
        self.updates, self.diverged = 0, False

    def record_update(self, lr, batch_loss):
        """Log one update: the rate it used and its minibatch loss."""
        self.lr.append(float(lr))
        self.batch_loss.append(float(batch_loss))
        self.updates += 1

    def __getitem__(self, key):  # history["test_acc"] works like a dict
        if isinstance(key, str):
            return getattr(self, key)
        return super().__getitem__(key)

    def _ipython_display_(self):
        pass  # the trainer already printed its one-line summary


class LossHistory(History, tuple):
    """The full-data loss at logged points; unpacks as ``times, losses``."""

    def __new__(cls, times=(), losses=(), epochs=(), examples=(), diverged=False):
        return super().__new__(cls, (list(times), list(losses)))

    def __init__(self, times=(), losses=(), epochs=(), examples=(), diverged=False):
        self._init_common()
        self.times, self.losses = self[0], self[1]
        self.epochs, self.examples, self.losses_at_y = list(epochs), list(examples), []
        self.diverged = diverged

    def __repr__(self):
        last = f"{self.losses[-1]:.3f}" if self.losses else "n/a"
        return (f"LossHistory({len(self.losses)} points, final loss {last}, "
                f"diverged={self.diverged})")


class ClassifierHistory(History):
    """Per-epoch ``train_loss``, ``train_acc`` (running averages over the epoch's updates) and
    ``test_acc``; ``epochs`` is the number of completed epochs."""

    def __init__(self):
        self._init_common()
        self.train_loss, self.train_acc, self.test_acc, self.test_acc_at_y = [], [], [], []
        self.epochs = 0

    def __repr__(self):  # short, so that a cell ending in train(...) shows one line
        return (f"ClassifierHistory(epochs={self.epochs}, updates={self.updates}, "
                f"diverged={self.diverged})")
