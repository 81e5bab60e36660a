"""The full speed benchmark: nnc against NumPy and PyTorch and the GEMM floor
(minutes; run on a quiet machine).

    python benchmarks/run_benchmarks.py            # 60 000 samples, batch 32/128/512,
                                                   # with and without batch-norm, 1 and 2 threads
    python benchmarks/run_benchmarks.py --quick    # seconds: a smoke run
    python benchmarks/run_benchmarks.py --threads 1,2,4,8,16 --contenders nnc,torch,gemm-floor

Results go to benchmarks/results/ (JSON, Markdown, PNG with matplotlib).
The contenders and the GEMM floor are described in nnc/benchmark.py.
"""
import argparse
import os

from nnc import benchmark


def int_list(text):
    return tuple(int(v) for v in text.split(","))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--batch-sizes", type=int_list, default=(32, 128, 512))
    parser.add_argument("--threads", type=int_list, default=(1, 2))
    parser.add_argument("--batchnorm", choices=["no", "yes", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--contenders", default=",".join(benchmark.CONTENDERS))
    parser.add_argument("--tiny-steps", type=int, default=5000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    batchnorm = {"no": (False,), "yes": (True,), "both": (False, True)}[args.batchnorm]
    if args.quick:
        result = benchmark.run_sweep(n_samples=512, batch_sizes=(32,), batchnorm=(False, True),
                                     threads=(1,), repeats=1, tiny_steps=50, progress=False)
    else:
        result = benchmark.run_sweep(n_samples=args.samples, batch_sizes=args.batch_sizes,
                                     batchnorm=batchnorm, threads=args.threads,
                                     repeats=args.repeats,
                                     contenders=tuple(args.contenders.split(",")),
                                     tiny_steps=args.tiny_steps)
    paths = benchmark.write_results(result, args.out)
    print(benchmark.markdown_table(result))
    print("\nwritten: " + ", ".join(paths.values()))


if __name__ == "__main__":
    main()
