"""Build nnc's Cython kernels.

Flags: ``-O3 -fno-math-errno`` (gcc will not vectorise a
loop calling ``sqrtf`` without the latter) and OpenMP when the compiler has it.
OpenMP support is detected by compiling a tiny OpenMP program, as
scikit-learn does; without it the same sources build serially (the kernels
include ``_openmp_shim.h``, which stands in for ``omp.h``).
Set ``NNC_NATIVE=1`` for a local ``-march=native`` build (never distribute one).
"""
import os
import platform
import shutil
import sys
import tempfile
import textwrap
from glob import glob

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

KERNEL_DIR = os.path.join("nnc", "_kernels")
# modules named *_avx2 are the same kernels compiled with AVX2 (x86 only);
# nnc picks them at import when the CPU has AVX2
AVX2_SUFFIX = "_avx2"
IS_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
#: NNC_NATIVE=1: a local build for this CPU only (-march=native; never distribute one)
NATIVE = os.environ.get("NNC_NATIVE") == "1"

OPENMP_TEST_PROGRAM = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0 ? omp_get_max_threads() : 0);
        return 0;
    }
    """
)


def openmp_flags(compiler_type):
    """(compile_args, link_args) that switch OpenMP on for this compiler."""
    if compiler_type == "msvc":
        return ["/openmp"], []
    return ["-fopenmp"], ["-fopenmp"]


def compiler_has_openmp(compiler):
    """Try to compile and link a tiny OpenMP program with ``compiler``."""
    compile_args, link_args = openmp_flags(compiler.compiler_type)
    workdir = tempfile.mkdtemp(prefix="nnc-openmp-")
    try:
        source = os.path.join(workdir, "test_openmp.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST_PROGRAM)
        objects = compiler.compile([source], output_dir=workdir, extra_postargs=compile_args)
        compiler.link_executable(objects, "test_openmp", output_dir=workdir, extra_postargs=link_args)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class BuildKernels(build_ext):
    """build_ext that adds optimisation and (when available) OpenMP flags."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            opt = ["/O2"]
        else:
            # -fno-trapping-math: nnc never reads the floating-point exception
            # flags, and without it gcc will not turn `x if x > 0 else a * x`
            # into a vector blend (the multiply might raise a flag the branch
            # avoids). Neither flag changes a computed value.
            opt = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-g0"]
            if IS_X86 and sys.maxsize < 2 ** 32:
                # 32-bit x86 defaults to x87 arithmetic, whose 80-bit
                # intermediates break the rounding _vector_math.h relies on
                opt += ["-msse2", "-mfpmath=sse"]
            if NATIVE:
                opt.append("-march=native")
                for ext in self.extensions:  # (nnc.show_config says so)
                    ext.define_macros.append(("NNC_NATIVE_BUILD", "1"))
        omp_compile, omp_link = [], []
        if compiler_has_openmp(self.compiler):
            omp_compile, omp_link = openmp_flags(ctype)
        else:
            print(
                "\n*** WARNING: the C compiler has no OpenMP support; nnc's kernels "
                "are built serially (one thread). Install a compiler with OpenMP "
                "(e.g. gcc, or clang with libomp) for multi-threaded kernels. ***\n",
                file=sys.stderr,
            )
        for ext in self.extensions:
            if ext.name.endswith(AVX2_SUFFIX):
                # -mavx2 without -mfma: no fused multiply-adds, identical results
                ext.extra_compile_args = ["/arch:AVX2" if ctype == "msvc" else "-mavx2"] \
                    + ext.extra_compile_args
            ext.extra_compile_args = opt + omp_compile + ext.extra_compile_args
            ext.extra_link_args = omp_link + ext.extra_link_args
        super().build_extensions()


def kernel_extensions():
    from Cython.Build import cythonize

    extensions = [
        Extension(
            "nnc._kernels." + os.path.splitext(os.path.basename(path))[0],
            [path],
            include_dirs=[KERNEL_DIR],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for path in sorted(glob(os.path.join(KERNEL_DIR, "*.pyx")))
        if IS_X86 or not path.endswith(AVX2_SUFFIX + ".pyx")
    ]
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "initializedcheck": False,
            "cdivision": True,
            "nonecheck": False,
        },
    )


setup(ext_modules=kernel_extensions(), cmdclass={"build_ext": BuildKernels})
