"""Benchmark of the physiology core; prints ratios against baselines measured in one run.

    python bench/core.py [--spectra N] [--scipy N] [--readings N] [--measurements N]
                         [--db-measurements N]

1. Batched ``fit_cole`` on three workloads, each timed with its intervals (the
   parameters' covariance propagated from the points' stated uncertainty) and
   without: a 50-frequency BIS sweep (3 kHz–1 MHz, 0.2 % noise, the noise as the
   stated uncertainty: the issue's target workload), and the simulator's
   healthy adults on a Tanita MC-780 (5/50/250 kHz: exact three-point arcs, the
   real analyzer's case) and an MC-980 (six frequencies, 1 kHz–1 MHz), exactly
   the arrays ``hanai-bis`` hands to ``fit_cole`` (segments, derived trunk,
   0.1 Ω rounding, each profile's uncertainty), recorded from ``estimate`` and
   repeated to the same number of spectra. On the sweep, three per-spectrum
   ``scipy.optimize.least_squares`` loops (same model, weighting and circle-fit
   start; parameters only): trf with scipy's default finite-difference
   Jacobian, trf with the analytic Jacobian (same bounds), and MINPACK lm with
   the analytic Jacobian (the strongest simple baseline), with the median
   relative error of R0 and R∞ for all.
2. Regression equations (Sun, Kushner, Lukaski & Bolonchuk TBW and ECW) on
   arrays of 10^6 measurements vs the plain-Python scalar reference of the tests.
3. ``bia-acq recompute`` end to end (read impedances, compute, write results)
   on a generated database of 10^5 measurements, measurements per second.

Targets (issue 16, not tests): fit_cole ≥ 100,000 spectra/s on one core with
its intervals, at scipy's accuracy (median relative error of R0 and R∞ within
5 % of scipy's); regression ≥ 5 million/s; recompute ≥ 20,000/s.
Needs the ``bench`` extra (scipy). Runs single-threaded (BLAS threads = 1);
rates are per CPU second of this process (robust to other load on the
machine, whose load average is printed), each the best of several runs (the
same number for both sides of a ratio); recompute reports wall clock and the
CPU seconds of all its processes (it reads and computes in a worker process
while the main one writes), and peak resident memory.
"""

from __future__ import annotations

import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import hashlib  # noqa: E402
import sqlite3  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TypeVar  # noqa: E402

import numpy as np  # noqa: E402

from bia_acq.core import cole_impedance, fit_cole  # noqa: E402
from bia_acq.core.cole import circle_fit  # noqa: E402
from bia_acq.core.regression import (  # noqa: E402
    ecw_lukaski_bolonchuk,
    tbw_kushner_1992,
    tbw_lukaski_bolonchuk,
    tbw_sun_2003,
)
from bia_acq.store.db import open_writer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import machine  # noqa: E402
import scalar_reference as ref  # noqa: E402

T = TypeVar("T")
FREQ = np.geomspace(3e3, 1e6, 50)
REPEAT = 3  # every timing is the best of this many runs, for both sides of a ratio
FIT_REPEAT = 5  # fit_cole's runs are short: more of them


def best_of(fn: Callable[[], T]) -> tuple[float, T]:
    """(shortest CPU time of REPEAT runs, the last result)."""
    return machine.best_of(fn, REPEAT)


NOISE = 0.002  # relative, on R and X


def spectra(n: int, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    r0 = rng.uniform(300, 1100, n)
    rinf = r0 / rng.uniform(1.2, 3.0, n)
    alpha = rng.uniform(0.5, 0.95, n)
    fc = rng.uniform(20e3, 150e3, n)
    z = cole_impedance(FREQ, r0[:, None], rinf[:, None], alpha[:, None], fc[:, None])
    noise = rng.normal(0, 1, z.shape) + 1j * rng.normal(0, 1, z.shape)
    return z + NOISE * np.abs(z) * noise, r0, rinf


def scipy_fit(z: np.ndarray, method: str, analytic: bool) -> tuple[float, float]:
    """One spectrum: complex NLLS with modulus weighting and the same start;
    scipy's finite-difference Jacobian or (``analytic``) the Cole model's own;
    ``method`` "trf" with fit_cole's bounds, or "lm" (MINPACK, no bounds: the
    fastest of scipy's, and these spectra's optima lie inside the bounds)."""
    from scipy.optimize import least_squares

    w = 1.0 / np.abs(z)
    cf = circle_fit(FREQ, z.real, z.imag, check_monotonic=False)
    x0 = [float(cf.r0), float(cf.rinf), min(float(cf.alpha), 1.0), float(np.log(cf.fc_hz))]
    lf = np.log(FREQ)

    def resid(p: np.ndarray) -> np.ndarray:
        q = (1j * np.exp(lf - p[3])) ** p[2]
        d = (p[1] + (p[0] - p[1]) / (1 + q) - z) * w
        return np.concatenate([d.real, d.imag])

    def jac(p: np.ndarray) -> np.ndarray:
        # q = (j f/fc)^α, G = 1/(1 + q): ∂Z/∂R0 = G, ∂Z/∂R∞ = 1 − G,
        # ∂Z/∂α = −ΔR·G²·q·(ln(f/fc) + jπ/2), ∂Z/∂ln fc = ΔR·G²·α·q
        lr = lf - p[3]
        q = (1j * np.exp(lr)) ** p[2]
        g = 1 / (1 + q)
        dg = (p[0] - p[1]) * g * g * q
        j = np.stack([g, 1 - g, -dg * (lr + 0.5j * np.pi), dg * p[2]], axis=-1) * w[:, None]
        return np.concatenate([j.real, j.imag])

    lo = [0.0, 0.0, 0.05, np.log(FREQ[0]) - 4.6]
    hi = [np.inf, np.inf, 1.0, np.log(FREQ[-1]) + 4.6]
    x0 = list(np.clip(x0, np.array(lo) + 1e-9, np.array(hi) - 1e-9))
    sol = least_squares(
        resid,
        x0,
        jac=jac if analytic else "2-point",
        method=method,
        bounds=(lo, hi) if method != "lm" else (-np.inf, np.inf),
    )
    return float(sol.x[0]), float(sol.x[1])


def simulated(profile: str, readings: int, seed: int) -> tuple[np.ndarray, ...]:
    """(frequencies in Hz, Z, σ) as ``hanai-bis`` hands them to ``fit_cole`` for
    ``readings`` measurements of the simulator's healthy adults on ``profile``:
    recorded from :func:`bia_acq.core.estimate.estimate`, spectra (measurement ×
    segment) with at least three points, flattened to rows."""
    import datetime as dt

    from bia_acq.core import methods
    from bia_acq.core.estimate import estimate
    from bia_acq.drivers import get_profile
    from bia_acq.simulator.population import Population, load_scenario

    pop = Population(
        load_scenario("healthy-adults"), get_profile(profile), np.random.default_rng(seed)
    )
    now = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
    batch = [pop.next_measurement(now)[0] for _ in range(readings)]
    seen = []
    real = methods.fit_cole

    def record(f: np.ndarray, z: np.ndarray, **kw: np.ndarray) -> object:
        seen.append((f, z, kw["sigma"]))
        return real(f, z, **kw)

    methods.fit_cole = record  # type: ignore[assignment]
    try:
        estimate(batch, "hanai-bis")
    finally:
        methods.fit_cole = real
    f, z, sigma = seen[0]
    z = z.reshape(-1, z.shape[-1])
    sigma = np.broadcast_to(sigma, (*seen[0][1].shape[:-1], z.shape[-1])).reshape(z.shape)
    keep = np.isfinite(z).sum(-1) >= 3
    return np.asarray(f, dtype=float), z[keep], sigma[keep]


def fit_rates(f: np.ndarray, z: np.ndarray, sigma: np.ndarray) -> tuple[float, float, object]:
    """fit_cole's spectra per CPU second with intervals and without (best of
    FIT_REPEAT each), and the fit with intervals."""
    fit_cole(f, z[:2000], sigma=sigma[:2000])  # warm up
    t_cov, fit = machine.best_of(lambda: fit_cole(f, z, sigma=sigma), FIT_REPEAT)
    t_bare, _ = machine.best_of(lambda: fit_cole(f, z), FIT_REPEAT)
    assert fit.cov is not None
    return len(z) / t_cov, len(z) / t_bare, fit


def bench_fit(n: int, n_scipy: int, n_readings: int) -> None:
    z, r0, rinf = spectra(n)
    sigma = NOISE * np.abs(z)  # the points' stated uncertainty: the noise put on them
    ours_rate, bare_rate, fit = fit_rates(FREQ, z, sigma)
    assert np.isfinite(fit.cov).all()
    sim = {name: simulated(name, n_readings, 4) for name in ("tanita-mc780", "tanita-mc980")}
    print(
        f"fit_cole, spectra per CPU second (best of {FIT_REPEAT}; {machine.load()}):"
        f"{'with intervals':>22}{'parameters only':>17}"
    )
    print(
        f"  BIS sweep, 50 frequencies, {NOISE:.1%} noise ({n} spectra)"
        f"{ours_rate:14,.0f}{bare_rate:17,.0f}   target 100,000 with intervals:"
        f" {'met' if ours_rate >= 100_000 else 'NOT met'}"
    )
    for name, (f, zs, ss) in sim.items():
        reps = -(-n // len(zs))  # the recorded spectra, repeated to n
        zz, sg = np.tile(zs, (reps, 1))[:n], np.tile(ss, (reps, 1))[:n]
        cov_rate, bare, sfit = fit_rates(f, zz, sg)
        label = f"simulator, {name}, {len(f)} frequencies ({len(zs)} spectra to {n})"
        print(f"  {label:<58}{cov_rate:9,.0f}{bare:17,.0f}")
        grades = dict(zip(*np.unique(sfit.grade, return_counts=True), strict=True))
        print(f"    grades: {', '.join(f'{k} {v}' for k, v in grades.items())}")
    print(f"  peak RSS of this process so far: {machine.peak_rss_mb():,.0f} MB")
    e = {
        "fit_cole": (
            np.median(np.abs(fit.r0[:n_scipy] / r0[:n_scipy] - 1)),
            np.median(np.abs(fit.rinf[:n_scipy] / rinf[:n_scipy] - 1)),
        )
    }
    baselines = (
        ("trf, finite differences", "trf", False),  # scipy's default
        ("trf, analytic Jacobian", "trf", True),
        ("lm, analytic Jacobian", "lm", True),  # the strongest simple baseline
    )
    print(
        f"  scipy least_squares on the BIS sweep, parameters only (loop over {n_scipy});"
        " fit_cole with intervals / without, per this"
    )
    for name, method, analytic in baselines:
        t_sp, sp = best_of(
            lambda m=method, a=analytic: np.array([scipy_fit(z[i], m, a) for i in range(n_scipy)])
        )
        sp_rate = n_scipy / t_sp
        print(
            f"    {name:<26} {sp_rate:7,.0f} spectra/s;"
            f" {ours_rate / sp_rate:6,.1f} × / {bare_rate / sp_rate:6,.1f} ×"
        )
        e[f"scipy {name}"] = (
            np.median(np.abs(sp[:, 0] / r0[:n_scipy] - 1)),
            np.median(np.abs(sp[:, 1] / rinf[:n_scipy] - 1)),
        )
    print(f"  median |relative error| on the {n_scipy} spectra all fitted:")
    for k, (e0, einf) in e.items():
        print(f"    {k:<36} R0 {e0:.5f}  R∞ {einf:.5f}")
    ref0 = min(v[0] for k, v in e.items() if k != "fit_cole")
    refinf = min(v[1] for k, v in e.items() if k != "fit_cole")
    ok = e["fit_cole"][0] <= 1.05 * ref0 and e["fit_cole"][1] <= 1.05 * refinf
    print(f"  fit_cole within 5 % of scipy's best error: {'yes' if ok else 'NO'}")
    grades = dict(zip(*np.unique(fit.grade, return_counts=True), strict=True))
    print(f"  fit_cole grades on the sweep: {', '.join(f'{k} {v}' for k, v in grades.items())}")


def bench_regression(n: int, n_scalar: int) -> None:
    rng = np.random.default_rng(2)
    h = rng.uniform(140, 200, n)
    w = rng.uniform(40, 130, n)
    r = rng.uniform(263, 954, n)
    xc = rng.uniform(25, 107, n)
    age = rng.uniform(18, 90, n)
    male = rng.random(n) < 0.5
    t_vec, out = best_of(
        lambda: (
            tbw_sun_2003(h, w, r, male),
            tbw_kushner_1992(h, w, r),
            tbw_lukaski_bolonchuk(h, w, r, age, male),
            ecw_lukaski_bolonchuk(h, w, r, xc),
        )
    )
    hl, wl, rl, xl, al, ml = (a[:n_scalar].tolist() for a in (h, w, r, xc, age, male))

    def scalar() -> None:
        for i in range(n_scalar):
            ref.sun_2003(rl[i], hl[i], wl[i], ml[i])
            ref.kushner_1992(rl[i], hl[i], wl[i])
            ref.lukaski_bolonchuk(rl[i], xl[i], hl[i], wl[i], al[i], ml[i])

    t_sc, _ = best_of(scalar)
    assert np.isfinite(out[0]).all()
    vec_rate, sc_rate = n / t_vec, n_scalar / t_sc
    print(f"regression (Sun, Kushner, Lukaski-Bolonchuk TBW + ECW) on {n:,} measurements")
    print(f"  vectorised            {vec_rate:12,.0f} measurements/s")
    print(f"  scalar reference      {sc_rate:12,.0f} measurements/s  (loop over {n_scalar:,})")
    print(f"  ratio                 {vec_rate / sc_rate:12,.1f} ×")


def make_db(path: Path, n: int) -> None:
    """n MC-780-like measurements (5/50/250 kHz, 4 limbs and both hand-to-foot paths,
    Cole spectra rounded to 0.1 Ω as the device sends them)."""
    db = open_writer(path)
    conn = db.conn
    rng = np.random.default_rng(3)
    f = np.array([5.0, 50.0, 250.0])
    base = {"right_arm": 330, "left_arm": 330, "trunk": 30, "right_leg": 270, "left_leg": 270}
    now = "2026-01-01T00:00:00.000Z"
    with db.atomic():
        conn.execute(
            "INSERT INTO device (driver, port, model, serial_number, first_seen_utc)"
            " VALUES ('tanita-mc780', 'bench', 'MC-780', '1', ?)",
            (now,),
        )
        conn.executemany(
            "INSERT INTO subject (external_id, pseudonym, first_seen_utc) VALUES (?, ?, ?)",
            [(f"S{i:05d}", f"P-{i:010d}", now) for i in range(1000)],
        )
        conn.executemany(
            "INSERT INTO raw_frame (id, port, driver, kind, received_at_utc, received_at_epoch,"
            " data, sha256, status) VALUES (?, 'bench', 'tanita-mc780', 'frame', ?, ?, ?, ?, 'decoded')",
            [
                (i + 1, now, 1.767e9 + i, b"x", hashlib.sha256(str(i).encode()).hexdigest())
                for i in range(n)
            ],
        )
        sex = rng.choice(["male", "female"], n)
        h = rng.uniform(150, 195, n).round(1)
        w = rng.uniform(45, 120, n).round(1)
        conn.executemany(
            "INSERT INTO measurement (id, raw_frame_id, device_id, subject_id, frame_sha256,"
            " measured_at_utc, measured_at_epoch, received_at_utc, received_at_epoch, sex, age_years,"
            " height_cm, weight_kg, device_values_json, warnings_json)"
            " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, 40, ?, ?, '{}', '[]')",
            [
                (
                    i + 1,
                    i + 1,
                    i % 1000 + 1,
                    str(i),
                    now,
                    1.767e9 + i,
                    now,
                    1.767e9 + i,
                    str(sex[i]),
                    float(h[i]),
                    float(w[i]),
                )
                for i in range(n)
            ],
        )
        rows = []
        zs = {}
        for seg in base:
            r0 = base[seg] * rng.uniform(0.8, 1.2, n)
            zs[seg] = cole_impedance(
                f * 1e3,
                r0[:, None],
                (r0 / rng.uniform(1.3, 1.8, n))[:, None],
                rng.uniform(0.6, 0.8, n)[:, None],
                rng.uniform(30e3, 90e3, n)[:, None],
            )
        # the device sends no trunk: the hand-to-foot paths are arm + trunk + leg
        zs["whole_body_right"] = zs["right_arm"] + zs["trunk"] + zs["right_leg"]
        zs["whole_body_left"] = zs["left_arm"] + zs["trunk"] + zs["left_leg"]
        del zs["trunk"]
        for seg, z in zs.items():
            z = z.round(1)
            for k, fk in enumerate(f):
                rows += zip(
                    range(1, n + 1),
                    [seg] * n,
                    [float(fk)] * n,
                    z[:, k].real.tolist(),
                    z[:, k].imag.tolist(),
                    strict=True,
                )
        conn.executemany(
            "INSERT INTO impedance (measurement_id, segment, freq_khz, r_ohm, x_ohm)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    conn.close()


def bench_recompute(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.db"
        t = time.perf_counter()
        make_db(path, n)
        print(
            f"recompute on a generated database of {n:,} measurements "
            f"({time.perf_counter() - t:.1f} s to build; {machine.load()})"
        )
        for method in ("hanai-bis", "lukaski-bolonchuk"):
            wall, cpu, rss, _ = machine.run_cli(
                ["recompute", "--db", str(path), "--method", method]
            )
            print(
                f"  {method:<18} {n / wall:12,.0f} measurements/s wall clock, "
                f"{n / cpu:,.0f}/s per CPU second (read, compute, write, commit; all"
                f" processes); peak RSS {rss:,.0f} MB"
            )
        with sqlite3.connect(path) as c:
            k = c.execute("SELECT count(*) FROM segment_result").fetchone()[0]
        print(f"  rows written: {k:,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spectra", type=int, default=50_000)
    ap.add_argument("--scipy", type=int, default=500)
    ap.add_argument("--readings", type=int, default=300, help="simulated per analyzer")
    ap.add_argument("--measurements", type=int, default=1_000_000)
    ap.add_argument("--scalar", type=int, default=100_000)
    ap.add_argument("--db-measurements", type=int, default=100_000)
    a = ap.parse_args()
    print(machine.header())
    bench_fit(a.spectra, a.scipy, a.readings)
    bench_regression(a.measurements, a.scalar)
    bench_recompute(a.db_measurements)


if __name__ == "__main__":
    main()
