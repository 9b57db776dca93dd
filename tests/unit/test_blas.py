"""MLlib's native BLAS: what the JVM loads, and the OpenBLAS settings made before it starts."""

from __future__ import annotations

import pytest

from mktpipe import blas


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\n"
                    f"flags\t\t: fpu sse sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    return path


@pytest.mark.parametrize("flags, kernels", [
    ("sse4_2 avx avx2 fma avx512f avx512dq", "SkylakeX"),
    ("sse4_2 avx avx2 fma", "Haswell"),
    ("sse4_2 avx", None),
])
def test_kernels_follow_the_first_cpus_flags(tmp_path, flags, kernels):
    assert blas.cpu_kernels(_cpuinfo(tmp_path, flags)) == kernels


def test_no_cpuinfo_means_no_kernel_choice(tmp_path):
    assert blas.cpu_kernels(tmp_path / "missing") is None


@pytest.mark.parametrize("chosen, cpu, expected", [
    ("Prescott", "SkylakeX", {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "SkylakeX"}),
    ("Prescott", None, {"OPENBLAS_NUM_THREADS": "1"}),  # an old CPU: Prescott is right
    ("Haswell", "SkylakeX", {"OPENBLAS_NUM_THREADS": "1"}),  # OpenBLAS recognised the CPU
    (None, "SkylakeX", {"OPENBLAS_NUM_THREADS": "1"}),  # no OpenBLAS
])
def test_environment_corrects_only_the_unrecognised_cpu_fallback(monkeypatch, chosen, cpu,
                                                                 expected):
    monkeypatch.setattr(blas, "probe", lambda library=blas.LIBRARY: blas.Blas(
        library=library if chosen else None, openblas="OpenBLAS 0.3.21" if chosen else None,
        kernels=chosen))
    monkeypatch.setattr(blas, "cpu_kernels", lambda: cpu)
    environ = {"PATH": "/bin"}
    assert blas.prepare_environment(environ) == expected
    assert environ == {"PATH": "/bin", **expected}


def test_the_users_settings_win(monkeypatch):
    monkeypatch.setattr(blas, "probe", lambda library=blas.LIBRARY: blas.Blas(
        library=library, openblas="OpenBLAS 0.3.21", kernels="Prescott"))
    monkeypatch.setattr(blas, "cpu_kernels", lambda: "SkylakeX")
    environ = {"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}
    assert blas.prepare_environment(environ) == {}
    assert environ == {"OPENBLAS_NUM_THREADS": "2", "OPENBLAS_CORETYPE": "Haswell"}


def test_doctor_names_the_java_fallback_and_how_to_install(monkeypatch):
    monkeypatch.setattr(blas, "probe", lambda library=blas.LIBRARY: blas.Blas(library=None))
    backend, why = blas.describe()
    assert backend.startswith("Java")
    assert "make blas" in why and "libblas.so.3" in why


def test_probe_of_a_missing_library_is_the_java_fallback():
    assert blas.probe("libmktpipe-no-such-blas.so.3") == blas.Blas(library=None)


def test_the_session_jvm_uses_the_native_blas_when_the_machine_has_one(spark):
    """`make setup` installs OpenBLAS (make blas) where apt-get is usable; MLlib's BLAS in
    this session's JVM is then dev.ludovic.netlib's JNI binding, not its Java fallback."""
    found = blas.probe()
    if found.library is None:
        pytest.skip(f"no {blas.LIBRARY} on this machine (`make blas` installs OpenBLAS where "
                    "apt-get is usable): MLlib runs on its Java BLAS")
    used = spark._jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getSimpleName()
    assert used == "JNIBLAS"
    # the library answers a product through the JVM: 2x2 times identity
    dense = spark._jvm.org.apache.spark.ml.linalg.DenseMatrix
    product = dense.eye(2).multiply(dense.eye(2))
    assert [product.apply(i, j) for i in range(2) for j in range(2)] == [1.0, 0.0, 0.0, 1.0]


def test_lapack_is_named_and_f2j_constants_are_computed_once(spark):
    """get_spark warms F2J LAPACK's machine constants in the driver JVM (SPARK-59618: two
    tasks making the first call at once can spin for ever in Dlascl); the name says which
    LAPACK MLlib uses there, native where libblas/liblapack load."""
    used = blas.warm_lapack(spark)
    native = blas.probe().library is not None
    assert used == ("JNILAPACK" if native else "F2jLAPACK")
    # the constants F2J computes on its first call: machine epsilon and the safe minimum
    dlamch = spark._jvm.org.netlib.lapack.Dlamch.dlamch
    assert dlamch("E") == 2.0 ** -53
    assert dlamch("S") == 2.0 ** -1022
