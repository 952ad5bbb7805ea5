"""The versions of the packages a peer ran with, for `book/bench/NAME.json`'s `peer` field: each
peer prints them under "versions" in its JSON result."""
from importlib.metadata import PackageNotFoundError, version


def versions(*packages):
    """{package: version} for the distributions named (as pip names them), "?" if absent."""
    out = {}
    for p in packages:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "?"
    return out
