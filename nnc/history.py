"""History: what happened during training, step by step and epoch by epoch."""


class History:
    """What happened during training.

    ``steps[name]`` holds one value per optimizer step: ``"loss"`` (the
    mini-batch loss, with the L2 penalty when ``l2 > 0``), ``"lr"`` (the
    learning rate used), ``"grad_norm"`` (the global L2 norm of all
    gradients before clipping) and ``"grad_norm.<i>"`` (the same for the
    parameters of layer i). ``epochs[name]`` holds one value per epoch
    (``"loss"``, ``"accuracy"`` for classification, ``"val_loss"``,
    ``"val_accuracy"`` with validation data). ``history["loss"]`` reads the
    per-epoch list.
    """

    def __init__(self):
        self.steps = {"loss": [], "lr": [], "grad_norm": []}
        self.epochs = {}

    def record_epoch(self, **values):
        for name, value in values.items():
            self.epochs.setdefault(name, []).append(value)

    def __getitem__(self, name):
        if name in self.epochs:
            return self.epochs[name]
        return self.steps[name]

    def __contains__(self, name):
        return name in self.epochs or name in self.steps

    def to_dict(self):
        return {"steps": {k: list(v) for k, v in self.steps.items()},
                "epochs": {k: list(v) for k, v in self.epochs.items()}}

    def __repr__(self):
        last = {k: v[-1] for k, v in self.epochs.items() if v}
        return f"History({len(self.steps['loss'])} steps, last epoch {last})"
