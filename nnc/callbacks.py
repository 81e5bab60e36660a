"""Callbacks: code that runs at fixed points of ``Trainer.fit``.

A callback overrides any of the hooks below; each receives the trainer
(``trainer.model``, ``trainer.optimizer``, ``trainer.history``,
``trainer.step_count``). Setting ``trainer.stop_training = True`` ends
``fit`` after the current step. With no callbacks the hooks cost nothing.

Order within one step: forward, loss, backward, L2, gradient norms,
clipping, ``on_before_update``, ``optimizer.step()``, ``on_step_end``.
"""


class Callback:
    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_before_update(self, trainer):
        """Gradients are final (after L2 and clipping); weights not yet updated."""

    def on_step_end(self, trainer, logs):
        """After the update; ``logs`` has ``step``, ``loss``, ``lr``, ``grad_norm``."""

    def on_epoch_end(self, trainer, epoch, logs):
        """``logs`` is the epoch's record (loss, accuracy, val_loss, ...)."""

    def on_train_end(self, trainer):
        pass


class LambdaCallback(Callback):
    """A callback from plain functions, e.g.
    ``LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: print(logs))``."""

    HOOKS = ("on_train_begin", "on_epoch_begin", "on_before_update", "on_step_end",
             "on_epoch_end", "on_train_end")

    def __init__(self, **hooks):
        for name, function in hooks.items():
            if name not in self.HOOKS:
                raise ValueError(f"unknown hook {name!r}; hooks are {self.HOOKS}")
            if not callable(function):
                raise TypeError(f"{name} must be callable, got {function!r}")
            setattr(self, name, function)
