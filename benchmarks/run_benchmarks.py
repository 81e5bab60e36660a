"""The full benchmark sweep of issue 5 (minutes; run on a quiet machine).

    python benchmarks/run_benchmarks.py            # 60 000 samples, batch 32/128/512,
                                                   # with and without batch-norm, 1 and 2 threads
    python benchmarks/run_benchmarks.py --quick    # seconds: a smoke run

Results go to benchmarks/results/ (JSON, Markdown, PNG with matplotlib).
The contenders and the GEMM floor are described in nnc/benchmark.py.
"""
import argparse
import os

from nnc import benchmark


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    if args.quick:
        result = benchmark.run_sweep(n_samples=512, batch_sizes=(32,), batchnorm=(False, True),
                                     threads=(1,), repeats=1, tiny_steps=50, progress=False)
    else:
        result = benchmark.run_sweep()
    paths = benchmark.write_results(result, args.out)
    print(benchmark.markdown_table(result))
    print("\nwritten: " + ", ".join(paths.values()))


if __name__ == "__main__":
    main()
