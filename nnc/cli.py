"""``python -m nnc``: the demo and the configuration report."""
import argparse
import os
import sys
import time

from nnc import commands


def demo(args):
    """Train 64-128-10 (ReLU, softmax cross-entropy, SGD) on the bundled digits."""
    import nnc

    if args.threads:
        commands.set_threads(args.threads)
    X, y = nnc.datasets.load_digits()
    X_train, X_test, y_train, y_test = nnc.datasets.train_test_split(X, y, 0.2, seed=args.seed)
    print(f"digits: {len(X_train)} training and {len(X_test)} held-out images of 8x8 pixels, "
          f"10 classes; backend={args.backend}, threads={nnc.get_num_threads()}")
    commands.check_batch_size(args.batch_size, len(X_train))
    model = nnc.Sequential(
        nnc.Dense(64, 128), nnc.ReLU(), nnc.Dense(128, 10),
        backend=args.backend, seed=args.seed,
    )
    trainer = nnc.Trainer(model, loss="softmax_cross_entropy",
                          optimizer=nnc.SGD(lr=args.lr), batch_size=args.batch_size)
    start = time.perf_counter()
    try:
        # one line per epoch (Keras' verbose=2): an epoch takes milliseconds,
        # too short for a progress bar to show anything
        trainer.fit(X_train, y_train, epochs=args.epochs, validation_data=(X_test, y_test),
                    verbose=0 if args.quiet else 2)
    except nnc.TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    accuracy = trainer.evaluate(X_test, y_test)["accuracy"]
    print(f"held-out accuracy: {accuracy:.4f} ({seconds:.2f} s of training)")
    return 0


def bench(args):
    """A small speed sweep: nnc vs its NumPy reference, a plain NumPy MLP,
    PyTorch (if installed) and the GEMM floor."""
    from nnc import benchmark

    try:  # the folder the results go to, before minutes of measuring
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        print(f"error: --out: cannot use {args.out!r} as the results folder ({exc})",
              file=sys.stderr)
        return 2
    result = benchmark.run_sweep(
        n_samples=args.samples, batch_sizes=args.batch_sizes, batchnorm=(False,),
        threads=args.threads, repeats=args.repeats, tiny_steps=args.tiny_steps,
        progress=not args.quiet)
    paths = benchmark.write_results(result, args.out)
    print(benchmark.markdown_table(result))
    print("\nwritten: " + ", ".join(paths.values()))
    return 0


def _int_list(text):
    """'32,128' -> (32, 128), each a positive whole number."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected positive whole numbers separated by commas, e.g. 32,128; got {text!r}")
    return values


def _thread_list(text):
    """'1,2' -> (1, 2), each a thread count nnc accepts."""
    from nnc.threads import MAX_THREADS

    values = _int_list(text)
    if max(values) > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected thread counts from 1 to {MAX_THREADS}, "
                                         f"got {text!r}")
    return values


def config(args):
    import nnc

    nnc.show_config()
    return 0


def diagnose(args):
    """Print the diagnosis of a saved History (logic in nnc.diagnostics)."""
    from nnc.diagnostics import diagnose_command

    try:  # (diagnose_command checks --plot before it reports)
        return diagnose_command(args.run_file, plot=args.plot)
    except TypeError as exc:  # a History whose lists do not hold numbers
        raise ValueError(f"{args.run_file}: cannot diagnose this run ({exc}); expected a "
                         "History written by history.save, with numbers in its lists") from None


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m nnc",
                                     description="nnc: neural networks for learning optimization")
    from nnc._version import __version__

    parser.add_argument("--version", action="version", version=f"nnc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    one_line = commands._one_line_errors
    positive_int, positive_float = commands._positive_int, commands._positive_float
    p = one_line(sub.add_parser("demo", help="train a small MLP on the bundled 8x8 digits"))
    p.add_argument("--backend", choices=["cython", "numpy"], default="cython",
                   help="kernel backend (default: cython)")
    p.add_argument("--epochs", type=positive_int, default=20,
                   help="passes over the data (default: 20)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="samples per step (default: 32)")
    p.add_argument("--lr", type=positive_float, default=0.1,
                   help="SGD learning rate (default: 0.1)")
    p.add_argument("--seed", type=commands._non_negative_int, default=0,
                   help="seed for weights, split, shuffling (default: 0)")
    p.add_argument("--threads", type=commands._non_negative_int, default=0,
                   help="OpenMP threads (default: 0, all)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(run=commands._run(demo))
    p = one_line(sub.add_parser("bench", help="time training epochs against NumPy and PyTorch"))
    p.add_argument("--samples", type=positive_int, default=10000,
                   help="samples per epoch (default: 10000)")
    p.add_argument("--batch-sizes", type=_int_list, default=(32, 128),
                   help="e.g. 32,128,512 (default: 32,128)")
    p.add_argument("--threads", type=_thread_list, default=(1,), help="e.g. 1,2 (default: 1)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="epochs per contender, whose median is reported (default: 3)")
    p.add_argument("--tiny-steps", type=positive_int, default=2000,
                   help="steps for the tiny-net row (default: 2000)")
    p.add_argument("--out", default="benchmark-results",
                   help="folder for JSON/Markdown/PNG, created if missing "
                        "(default: benchmark-results)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=bench)
    p = one_line(sub.add_parser("config",
                                help="print version, OpenMP, BLAS and thread settings"))
    p.set_defaults(run=config)
    p = one_line(sub.add_parser("diagnose", help="read a verdict from a saved training run "
                                "(history.save('RUN.json')); exit status 1 when problems are "
                                "found"))
    p.add_argument("run_file", metavar="RUN.json", help="a History written by history.save")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="also draw the learning curves to this file (needs matplotlib)")
    p.set_defaults(run=commands._run(diagnose))
    commands.add_parsers(sub, parent=parser)  # train, evaluate (nnc/commands.py)
    return parser


class _UntilClosed:
    """The commands' stdout and stderr (progress bars): once the reader has
    gone (``... | head -1``, ``2>&1 | head``), further output is dropped
    instead of stopping the command, so a training run still finishes and
    saves its model."""

    def __init__(self, stream):
        self._stream = stream

    def _reader_gone(self):
        # the stream's file descriptor now writes to /dev/null, so that its
        # buffer (and Python's flush at exit) no longer fail either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._reader_gone()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = (_until_closed(stream) for stream in streams)
    try:
        return args.run(args)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: files are written atomically, none is half-done
        print("interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:  # e.g. --hidden 100000000,100000000
        print(f"error: not enough memory ({exc}); choose smaller layers or data",
              file=sys.stderr)
        return 2
    finally:
        sys.stdout, sys.stderr = streams


def _until_closed(stream):
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return stream  # not a file (captured in a test, say): nothing to close
    return _UntilClosed(stream)
