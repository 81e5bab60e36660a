"""``python -m nnc train`` and ``python -m nnc evaluate``: train a
multi-layer perceptron on a data set from the command line, save it, and
measure a saved model later. ``nnc/cli.py`` registers these sub-commands;
the logic lives here.

Errors in what the user typed exit with status 2 and one line on stderr
(never a traceback); a run that diverges exits with status 1.
"""
import argparse
import os
import shlex
import sys

from nnc.schedules import RUN_SCHEDULES

DATASETS = ("digits", "mnist", "fashion-mnist")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad")
#: --init: the variance-scaled initialisers of nnc.init (lecture, section 8)
INITS = ("he_normal", "he_uniform", "lecun_normal", "glorot_normal", "glorot_uniform")
ACTIVATIONS = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
DIGITS_SPLIT = {"test_fraction": 0.2, "seed": 0}  # fixed, so `evaluate` finds the same test set


class CommandError(Exception):
    """Bad input found while running a command: printed as one line, exit 2."""


def check_batch_size(batch_size, n_train):
    """--batch-size against the training samples, before any model is built."""
    if batch_size > n_train:
        raise CommandError(f"--batch-size {batch_size} is larger than the {n_train} training "
                           "samples: expected at most that many")


# --- argument types (argparse turns their errors into exit status 2) --------
def _argument_type(convert, is_valid, expected):
    """An argparse ``type=``: ``convert(text)``, refused (exit status 2,
    one line) unless ``is_valid(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not is_valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_positive_int = _argument_type(int, lambda v: v >= 1, "a positive whole number")
_non_negative_int = _argument_type(int, lambda v: v >= 0, "a whole number >= 0")
_positive_float = _argument_type(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction = _argument_type(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
_non_negative_float = _argument_type(float, lambda v: 0 <= v < float("inf"),
                                     "a number >= 0")


def _hidden_sizes(text):
    """'256,128' -> (256, 128); '' or 'none' -> () (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer widths separated by commas, e.g. 256,128; got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer widths must be positive, got {text!r}")
    return sizes


def _one_line_errors(parser):
    """argparse prints the whole usage before an error; print one line that
    points to --help instead (exit status 2, as argparse)."""
    def error(message):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error
    return parser


# --- data -------------------------------------------------------------------
def _as_images(X, y):
    import numpy as np

    X, y = np.asarray(X), np.asarray(y)
    if X.ndim > 2:
        X = X.reshape(len(X), -1)
    scale = 255.0 if X.dtype == np.uint8 or (X.size and X.max() > 1.5) else 1.0
    return (X.astype(np.float32) / np.float32(scale)), y.astype(np.int64)


def _split_loader_result(result):
    """Accept what an MNIST loader may return: (X, y);
    (X_train, y_train, X_test, y_test); (X_train, X_test, y_train, y_test);
    ((X_train, y_train), (X_test, y_test))."""
    import numpy as np

    from nnc.datasets import train_test_split

    parts = tuple(result)
    if len(parts) == 2 and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in parts):
        (X_train, y_train), (X_test, y_test) = parts
    elif len(parts) == 4:
        if np.ndim(parts[1]) == 1:
            X_train, y_train, X_test, y_test = parts
        else:
            X_train, X_test, y_train, y_test = parts
    elif len(parts) == 2:
        X_train, X_test, y_train, y_test = train_test_split(*_as_images(*parts),
                                                            **DIGITS_SPLIT)
    else:
        raise CommandError("the data set loader returned something this command does not "
                           "understand")
    return _as_images(X_train, y_train) + _as_images(X_test, y_test)


def load_dataset(name):
    """``(X_train, y_train, X_test, y_test, split)`` for a data set name.
    ``split`` describes how the test set was chosen (kept in saved models)."""
    import nnc

    if name == "digits":
        X, y = nnc.datasets.load_digits()
        X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, **DIGITS_SPLIT)
        return X_train, y_train, X_test, y_test, dict(DIGITS_SPLIT)
    function = {"mnist": "load_mnist", "fashion-mnist": "load_fashion_mnist"}.get(name)
    if function is None:
        raise CommandError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    loader = getattr(nnc.datasets, function, None)
    if loader is None:
        raise CommandError(f"data set {name!r} is not available in this nnc "
                           f"(nnc.datasets.{function} is missing); try --dataset digits")
    try:
        result = loader()
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise CommandError(f"could not load data set {name!r}: {exc}") from None
    X_train, y_train, X_test, y_test = _split_loader_result(result)
    return X_train, y_train, X_test, y_test, {"loader": function}


# --- train ------------------------------------------------------------------
def build_model(n_in, n_out, hidden, activation="relu", batchnorm=False, dropout=0.0,
                backend="cython", seed=0, init=None):
    """An MLP: [Dense (no bias before BatchNorm), BatchNorm?, activation,
    Dropout?] per hidden width, then Dense to the classes; ``init`` the
    hidden layers' initialiser (None: He before ReLU, Glorot otherwise)."""
    import nnc

    layers, width = [], n_in
    for size in hidden:
        layers.append(nnc.Dense(width, size, init=init, bias=not batchnorm))
        if batchnorm:
            layers.append(nnc.BatchNorm(size))
        layers.append(getattr(nnc, ACTIVATIONS[activation])())
        if dropout:
            layers.append(nnc.Dropout(dropout))
        width = size
    layers.append(nnc.Dense(width, n_out))
    return nnc.Sequential(*layers, backend=backend, seed=seed)


MOMENTUM_OPTIMIZERS = ("momentum", "nesterov")  # the ones --momentum applies to


def build_optimizer(name, lr=None, momentum=None):
    """The optimizer ``name`` (``lr``/``momentum`` None: the defaults)."""
    import nnc

    kwargs = {} if lr is None else {"lr": lr}
    if name in MOMENTUM_OPTIMIZERS:
        return nnc.SGD(**kwargs, momentum=0.9 if momentum is None else momentum,
                       nesterov=name == "nesterov")
    classes = {"sgd": nnc.SGD, "rmsprop": nnc.RMSprop, "adam": nnc.Adam, "adamw": nnc.AdamW,
               "adagrad": nnc.Adagrad}
    return classes[name](**kwargs)


def _check_output_path(path, what):
    from nnc._validation import check_file_path, folder_problem

    try:
        check_file_path(path, what)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    problem = folder_problem(path)
    if problem:
        raise CommandError(f"{what}: {problem}")


def _same_file(a, b):
    """Whether two output paths end at one file (symbolic links and relative
    paths resolved; a hard link is not overwritten: save replaces the file)."""
    return os.path.realpath(a) == os.path.realpath(b)


def set_threads(n):
    """``nnc.set_num_threads(n)`` for ``--threads`` (errors name the flag)."""
    import nnc

    if not 1 <= n <= nnc.threads.MAX_THREADS:
        raise CommandError(f"--threads: expected a whole number from 1 to "
                           f"{nnc.threads.MAX_THREADS}, got {n}")
    nnc.set_num_threads(n)


def train(args):
    """The ``train`` sub-command."""
    import nnc

    for path, what in ((args.save, "--save"), (args.csv, "--csv")):
        if path is not None:
            _check_output_path(path, what)
    if args.save is not None and args.csv is not None and _same_file(args.save, args.csv):
        raise CommandError(f"--save and --csv name the same file ({args.save}): the model "
                           "would overwrite the log; give them different paths")
    if args.momentum is not None and args.optimizer not in MOMENTUM_OPTIMIZERS:
        raise CommandError(f"--momentum applies to --optimizer momentum or nesterov, not "
                           f"{args.optimizer}")
    if not args.hidden and (args.bn or args.dropout):
        raise CommandError(f"{'--bn' if args.bn else '--dropout'} acts on hidden layers, and "
                           "--hidden none has none")
    if args.threads:
        set_threads(args.threads)
    X_train, y_train, X_test, y_test, split = load_dataset(args.dataset)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    callbacks = []
    validation = None
    if args.val_fraction > 0:
        try:
            X_train, X_val, y_train, y_val = nnc.datasets.train_test_split(
                X_train, y_train, args.val_fraction, seed=1)
        except ValueError:
            raise CommandError(f"--val-fraction {args.val_fraction} leaves no training samples "
                               f"out of {len(X_train)}: expected a smaller fraction "
                               "(0 for no validation)") from None
        validation = (X_val, y_val)
        if args.patience is not None:
            callbacks.append(nnc.callbacks.EarlyStopping("val_loss", patience=args.patience))
    elif args.patience is not None:
        raise CommandError("--patience watches the validation loss: it needs --val-fraction > 0")
    if args.csv is not None:
        callbacks.append(nnc.callbacks.CSVLogger(args.csv))
    if args.quiet:
        callbacks.append(nnc.callbacks.LambdaCallback(on_epoch_end=_print_epoch))
    check_batch_size(args.batch_size, len(X_train))
    model = build_model(X_train.shape[1], n_classes, args.hidden, args.activation, args.bn,
                        args.dropout, args.backend, args.seed, init=args.init)
    optimizer = build_optimizer(args.optimizer, args.lr, args.momentum)
    schedule = nnc.schedules.over_run(args.schedule, optimizer.lr,
                                      args.epochs * -(-len(X_train) // args.batch_size))
    trainer = nnc.Trainer(model, optimizer=optimizer, batch_size=args.batch_size, l2=args.l2,
                          clip_norm=args.clip_norm, schedule=schedule)
    sizes = "-".join(str(n) for n in (X_train.shape[1], *args.hidden, n_classes))
    print(f"{args.dataset}: {len(X_train)} training, "
          f"{0 if validation is None else len(validation[0])} validation and {len(X_test)} "
          f"test samples, {X_train.shape[1]} features, {n_classes} classes")
    kind = (f"{args.activation}{', batch-norm' if args.bn else ''}"
            f"{f', dropout {args.dropout}' if args.dropout else ''}" if args.hidden else "linear")
    print(f"model {sizes} ({kind}), {model.n_params} "
          f"parameters; {optimizer!r}{f', {schedule!r}' if schedule else ''}, "
          f"batch {args.batch_size}, {args.epochs} epochs, "
          f"backend {args.backend}, {nnc.get_num_threads()} thread(s)")
    try:
        trainer.fit(X_train, y_train, epochs=args.epochs, validation_data=validation,
                    verbose=not args.quiet, callbacks=callbacks)
    except nnc.TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = trainer.evaluate(X_test, y_test)
    print(f"test: loss {result['loss']:.4f}, accuracy {result['accuracy']:.4f} "
          f"({len(X_test)} samples)")
    if args.save is not None:
        model.save(args.save, metadata={
            "dataset": args.dataset, "split": split, "test_loss": result["loss"],
            "test_accuracy": result["accuracy"], "epochs": len(trainer.history["loss"]),
            "optimizer": repr(optimizer), "schedule": repr(schedule), "init": args.init,
            "batch_size": args.batch_size})
        print(f"saved to {args.save}; check it with: python -m nnc evaluate "
              f"{shlex.quote(args.save)}")
    return 0


def _print_epoch(trainer, epoch, logs):
    print(f"epoch {epoch + 1}: " + "  ".join(f"{k} {v:.4f}" for k, v in logs.items()))


# --- evaluate -------------------------------------------------------------------
def evaluate(args):
    """The ``evaluate`` sub-command."""
    import nnc
    from nnc.persistence import read_header

    if not os.path.exists(args.model):
        raise CommandError(f"no such file: {args.model!r}")
    if not os.path.isfile(args.model):
        raise CommandError(f"{args.model!r} is not a model file (a folder, pipe or device)")
    metadata = read_header(args.model).get("metadata") or {}
    dataset = args.dataset or metadata.get("dataset")
    if dataset is None:
        raise CommandError(f"{args.model} does not say which data set it was trained on: "
                           f"pass --dataset ({', '.join(DATASETS)})")
    if dataset not in DATASETS:  # from the file's header
        raise CommandError(f"{args.model}: header metadata 'dataset' is {dataset!r:.60}, "
                           f"expected one of {', '.join(DATASETS)} (or pass --dataset)")
    model = nnc.load(args.model, backend=args.backend)
    _, _, X_test, y_test, _ = load_dataset(dataset)
    if X_test.shape[1] != model.in_features:
        raise CommandError(f"the model expects {model.in_features} features, but {dataset} "
                           f"has {X_test.shape[1]}: it was not trained on {dataset}")
    if int(y_test.max()) >= model.out_features:
        raise CommandError(f"{dataset} has {int(y_test.max()) + 1} classes, the model "
                           f"{model.out_features} outputs")
    result = nnc.Trainer(model, batch_size=args.batch_size).evaluate(X_test, y_test)
    print(f"{args.model} on the {dataset} test set ({len(X_test)} samples): "
          f"loss {result['loss']:.4f}, accuracy {result['accuracy']:.4f}")
    return 0


# --- registration -----------------------------------------------------------------
def _run(command):
    def run(args):
        try:
            return command(args)
        except CommandError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # unreadable or unwritable files
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return run


TRAIN_EPILOG = """\
examples:
  python -m nnc train                                   # 64-128-10 MLP on the bundled digits
  python -m nnc train --hidden 256,128 --bn --optimizer adam --lr 1e-3 --epochs 10 --save model.npz
  python -m nnc train --optimizer momentum --lr 0.1 --epochs 30 --patience 5 --csv log.csv
  python -m nnc evaluate model.npz

The data set is split into training, validation (--val-fraction of the training
part, watched after every epoch) and test samples (measured once at the end and
by `evaluate`). digits is bundled; mnist and fashion-mnist need
nnc.datasets.load_mnist / load_fashion_mnist.
"""


def add_parsers(sub, parent=None):
    """Register ``train`` and ``evaluate`` on an argparse sub-parser set
    (and give ``parent``, the top-level parser, one-line errors too)."""
    if parent is not None:
        _one_line_errors(parent)
    p = _one_line_errors(sub.add_parser(
        "train", help="train an MLP classifier on a data set and save it",
        description="Train a multi-layer perceptron (Dense layers with an activation,\n"
                    "optionally batch-norm and dropout) with mini-batch gradient descent,\n"
                    "report its test accuracy and optionally save it.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="data set (default: digits, the bundled 8x8 images)")
    p.add_argument("--hidden", type=_hidden_sizes, default=(128,), metavar="N,N,...",
                   help="widths of the hidden layers, e.g. 256,128 (default: 128; "
                        "'none' for a linear model)")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                   help="activation after each hidden layer (default: relu)")
    p.add_argument("--bn", action="store_true",
                   help="batch-normalise each hidden layer (lecture, section 9)")
    p.add_argument("--dropout", type=_fraction, default=0.0, metavar="P",
                   help="drop each hidden unit with probability P in training (default: 0)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                   help="update rule (default: adam); momentum/nesterov are SGD with "
                        "--momentum")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: the optimizer's own: 0.01 for SGD, "
                        "1e-3 for Adam/RMSprop)")
    p.add_argument("--momentum", type=_fraction, default=None, metavar="BETA",
                   help="momentum for --optimizer momentum/nesterov (default: 0.9)")
    p.add_argument("--schedule", choices=RUN_SCHEDULES, default="constant",
                   help="learning rate over the run: constant (default), linear (the "
                        "lecture's decay from --lr to --lr/100 over all steps) or cosine "
                        "(to 0)")
    p.add_argument("--init", choices=INITS, default=None,
                   help="initialiser of the hidden layers (default: he_normal before "
                        "relu/leaky_relu, glorot_normal before tanh/sigmoid)")
    p.add_argument("--batch-size", type=_positive_int, default=128, metavar="N",
                   help="samples per gradient step (default: 128)")
    p.add_argument("--epochs", type=_positive_int, default=10, metavar="N",
                   help="passes over the training data (default: 10)")
    p.add_argument("--l2", type=_non_negative_float, default=0.0, metavar="LAMBDA",
                   help="L2 penalty on the weights (default: 0)")
    p.add_argument("--clip-norm", type=_positive_float, default=None, metavar="C",
                   help="rescale gradients to a global norm of at most C (default: off)")
    p.add_argument("--val-fraction", type=_fraction, default=0.1, metavar="F",
                   help="part of the training data held out for validation (default: 0.1)")
    p.add_argument("--patience", type=_positive_int, default=None, metavar="EPOCHS",
                   help="stop early when the validation loss has not improved for EPOCHS "
                        "epochs, keeping the best weights (default: off)")
    p.add_argument("--csv", default=None, metavar="PATH", help="write per-epoch metrics to PATH")
    p.add_argument("--save", default=None, metavar="PATH",
                   help="save the trained model to PATH (.npz; load it with nnc.load)")
    p.add_argument("--seed", type=_non_negative_int, default=0,
                   help="seed for the weights, dropout and shuffling (default: 0)")
    p.add_argument("--backend", choices=["cython", "numpy"], default="cython",
                   help="cython (compiled kernels, default) or numpy (the reference)")
    p.add_argument("--threads", type=_non_negative_int, default=0, metavar="N",
                   help="OpenMP threads (default: 0, all cores)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bars; one line per epoch")
    p.set_defaults(run=_run(train))

    p = _one_line_errors(sub.add_parser(
        "evaluate", help="measure a saved model on its test set",
        description="Load a model saved by `python -m nnc train --save` (or model.save)\n"
                    "and print its loss and accuracy on the test set of a data set.",
        epilog="example:\n  python -m nnc evaluate model.npz\n  python -m nnc evaluate "
               "model.npz --dataset digits",
        formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("model", metavar="MODEL.npz", help="a file written by model.save / --save")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="data set (default: the one the model was trained on, from the file)")
    p.add_argument("--backend", choices=["cython", "numpy"], default=None,
                   help="run on this backend (default: the saved one)")
    p.add_argument("--batch-size", type=_positive_int, default=1024, metavar="N",
                   help="samples per forward pass (default: 1024)")
    p.set_defaults(run=_run(evaluate))
