"""The native BLAS under MLlib: which one the JVM will load, and how it is set up.

MLlib calls BLAS through dev.ludovic.netlib, which loads ``libblas.so.3`` from the system's
library path when it can (``make blas`` installs Debian's OpenBLAS there) and otherwise uses
its Java implementation (``VectorBLAS``). Two settings matter for OpenBLAS, and both must be in
the environment before the JVM starts (:func:`prepare_environment`, called by ``get_spark``):

* ``OPENBLAS_NUM_THREADS=1``: a local session's driver JVM runs every task; OpenBLAS
  threading each call over every core as well would oversubscribe them. Spark does the same
  for a cluster's executors (``OMP_NUM_THREADS = spark.task.cpus``, SPARK-41188).
* ``OPENBLAS_CORETYPE``: OpenBLAS picks its kernels from the CPU model it recognises. On a
  CPU it does not know (a cloud VM's generic "Intel Xeon Processor"; OpenBLAS 0.3.21 in
  Debian 12) it falls back to its Prescott (SSE3) kernels, slower than the Java fallback for
  matrix products (bench/blas.py). When that happens and the CPU's flags show AVX-512 or
  AVX2, mktpipe names the matching kernels (SkylakeX, Haswell). A value already set wins.

Without a native LAPACK, MLlib's eigen-decompositions (a Gaussian mixture's covariances) run
on F2J's Java translation, whose machine constants are computed on first use into unguarded
static fields: two tasks making their first call at once can read half-written constants and
spin for ever in ``Dlascl`` (SPARK-59618; seen here once in four ``bench/blas.py`` runs).
:func:`warm_lapack`, called by ``get_spark``, computes them once before any task runs. That
covers a local session, whose driver JVM runs the tasks; a cluster's executors need the native
LAPACK (``make blas`` on each node) or Spark's fix.

Everything here looks at the machine the driver runs on; a cluster's executors load their
own machine's library.
"""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LIBRARY = "libblas.so.3"  # what dev.ludovic.netlib loads by default
FALLBACK_KERNELS = "Prescott"  # what OpenBLAS's DYNAMIC_ARCH picks for a CPU it does not know
# CPU flag -> the OpenBLAS kernels that need it, best first
KERNELS_BY_FLAG = (("avx512f", "SkylakeX"), ("avx2", "Haswell"))


@dataclass(frozen=True)
class Blas:
    """The BLAS library the JVM will load: None fields when there is none."""

    library: str | None  # the name loaded, or None: MLlib uses its Java BLAS
    openblas: str | None = None  # "OpenBLAS 0.3.21" when the library is OpenBLAS
    kernels: str | None = None  # the kernels OpenBLAS chose for this CPU (in this process)


def probe(library: str = LIBRARY) -> Blas:
    """Load ``library`` as the JVM would (the same dlopen lookup) and ask OpenBLAS what it
    chose. The kernels depend on ``OPENBLAS_CORETYPE`` as set when this process loaded it."""
    try:
        lib = ctypes.CDLL(library)
    except OSError:
        return Blas(library=None)
    try:
        config, core = lib.openblas_get_config, lib.openblas_get_corename
    except AttributeError:
        return Blas(library=library)
    config.restype = core.restype = ctypes.c_char_p
    return Blas(library=library, openblas=" ".join(config().decode().split()[:2]),
                kernels=core().decode())


def cpu_kernels(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The best OpenBLAS kernels this CPU's flags support, or None (no AVX2, or not Linux)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return next((kernels for flag, kernels in KERNELS_BY_FLAG if flag in flags), None)


def forced_kernels(found: Blas) -> str | None:
    """The kernels to name in OPENBLAS_CORETYPE: the CPU's best, where OpenBLAS fell back to
    Prescott on a CPU whose flags support better ones; else None (leave OpenBLAS's choice)."""
    return cpu_kernels() if found.kernels == FALLBACK_KERNELS else None


def prepare_environment(environ=os.environ) -> dict[str, str]:
    """Set the OpenBLAS variables for a JVM this process is about to start (values already
    in ``environ`` win); returns what was set."""
    chosen = {}
    if "OPENBLAS_NUM_THREADS" not in environ:
        chosen["OPENBLAS_NUM_THREADS"] = "1"
        environ.update(chosen)  # before probe() loads the library into this process too
    if "OPENBLAS_CORETYPE" not in environ:
        better = forced_kernels(probe())
        if better:
            chosen["OPENBLAS_CORETYPE"] = better
            log.info("OpenBLAS did not recognise this CPU and chose its %s kernels; the CPU "
                     "supports %s: using those (set OPENBLAS_CORETYPE to choose)",
                     FALLBACK_KERNELS, better)
    environ.update(chosen)
    return chosen


def describe() -> tuple[str, str]:
    """(backend, why) for ``mktpipe doctor``."""
    found = probe()
    if found.library is None:
        return ("Java (dev.ludovic.netlib VectorBLAS)",
                f"no {LIBRARY} on the library path; `make blas` installs OpenBLAS "
                "(Debian package libopenblas0-pthread)")
    if found.openblas is None:
        return f"native: {found.library}", "a BLAS other than OpenBLAS (kernels not reported)"
    kernels, better = found.kernels, forced_kernels(found)
    if os.environ.get("OPENBLAS_CORETYPE"):
        why = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} is set"
    elif better:
        why = (f"OpenBLAS does not recognise this CPU (it picks {kernels}); mktpipe sessions "
               f"set OPENBLAS_CORETYPE={better}, which the CPU supports")
        kernels = better
    else:
        why = "the kernels OpenBLAS picks for this CPU"
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "1 (set by mktpipe sessions)")
    return (f"native: {found.openblas} ({found.library}), {kernels} kernels",
            f"{why}; OPENBLAS_NUM_THREADS={threads}")


def warm_lapack(spark) -> str:
    """Compute F2J LAPACK's machine constants once in this session's driver JVM, before tasks
    can race to do it (see the module docstring); returns the LAPACK implementation MLlib uses
    there (``F2jLAPACK`` for the Java one, ``JNILAPACK`` for the native library)."""
    jvm = spark._jvm
    used = jvm.dev.ludovic.netlib.lapack.LAPACK.getInstance().getClass().getSimpleName()
    if used == "F2jLAPACK":
        jvm.org.netlib.lapack.Dlamch.dlamch("E")  # the first call fills every constant
    return used
