"""scikit-learn peer of `bench nmf`: the same non-negative matrix (raw little-endian f32, rows x
cols, written by the Rust side) factorised into k groups twice: with multiplicative updates
from a random start, the same number of iterations and no early stop (the book's algorithm),
and with scikit-learn's default (coordinate descent from NNDSVDa, what Lucid's ChannelReducer
calls). Prints one JSON object: the relative Frobenius error ||X - WH|| / ||X|| and the median
time of three runs of each.
"""
import argparse
import json
import os
import time
from versions import versions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--matrix", required=True)
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--cols", type=int, required=True)
    p.add_argument("--groups", type=int, default=6)
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import warnings

    import numpy as np
    import sklearn
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning

    warnings.simplefilter("ignore", ConvergenceWarning)
    x = np.fromfile(a.matrix, dtype="<f4").reshape(a.rows, a.cols).astype(np.float64)
    norm = np.linalg.norm(x)

    def run(**kw):
        times, model, w = [], None, None
        for _ in range(3):
            model = NMF(n_components=a.groups, random_state=0, **kw)
            t = time.perf_counter()
            w = model.fit_transform(x)
            times.append(time.perf_counter() - t)
        err = np.linalg.norm(x - w @ model.components_) / norm
        return {"error": float(err), "seconds": sorted(times)[1], "iterations": int(model.n_iter_)}

    out = {
        "version": sklearn.__version__,
        "mu": run(init="random", solver="mu", max_iter=a.iterations, tol=0.0),
        "default": run(max_iter=a.iterations),
    }
    out["versions"] = versions("scikit-learn", "numpy", "scipy")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
