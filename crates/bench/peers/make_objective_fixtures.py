"""Writes crates/vision-interp/tests/fixtures/lucent-objectives.json: the loss of Lucent's batch
objectives (diversity, channel_interpolate, alignment, channel with a batch index) on
activations that no model made, so that the book's objectives are checked against Lucent's own
code. Layer `a` is (4, 6, 5, 5) and layer `b` (4, 8, 5, 5); element k of a layer (row-major) is
sin(0.37 k + phase) + 0.25 cos(1.3 k) + 0.5 sin(0.011 k²), with phase 0 for `a` and 1 for `b`.

Also writes style-losses.json: the style-transfer notebook's losses (style.py's gram_matrix,
mean_L1 and activation_difference) on a batch of three (transfer, content, style), layer `a`
(3, 6, 5, 5) and `b` (3, 8, 4, 7), built the same way.

Run with the peer environment: .venv-bench/bin/python crates/bench/peers/make_objective_fixtures.py
"""
import json
import os

import torch
from lucent.optvis import objectives as o

SHAPES = {"a": (4, 6, 5, 5), "b": (4, 8, 5, 5)}
PHASES = {"a": 0.0, "b": 1.0}


def layer(name, shapes=SHAPES):
    n = 1
    for d in shapes[name]:
        n *= d
    k = torch.arange(n, dtype=torch.float64)
    v = torch.sin(0.37 * k + PHASES[name]) + 0.25 * torch.cos(1.3 * k) + 0.5 * torch.sin(0.011 * k * k)
    return v.reshape(shapes[name]).float()


ACTS = {name: layer(name) for name in SHAPES}
CASES = {
    "diversity a": o.diversity("a"),
    "diversity b": o.diversity("b"),
    "channel_interpolate a:2 b:5": o.channel_interpolate("a", 2, "b", 5),
    "alignment a 2": o.alignment("a", decay_ratio=2),
    "alignment b 5": o.alignment("b", decay_ratio=5),
    "channel a:3 batch 1 - batch 0": o.channel("a", 3, batch=1) - o.channel("a", 3, batch=0),
    "channel a:1 - 100 diversity a": o.channel("a", 1) - 1e2 * o.diversity("a"),
}
out = {
    "lucent": "torch-lucent 0.1.8",
    "shapes": {k: list(v) for k, v in SHAPES.items()},
    "losses": {name: float(obj(lambda l: ACTS[l])) for name, obj in CASES.items()},
}
path = os.path.join(os.path.dirname(__file__), "../../vision-interp/tests/fixtures/lucent-objectives.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print(json.dumps(out["losses"], indent=1))

from style import CONTENT_INDEX, STYLE_INDEX, activation_difference, gram_matrix, mean_std  # noqa: E402

STYLE_SHAPES = {"a": (3, 6, 5, 5), "b": (3, 8, 4, 7)}
STYLE_ACTS = {name: layer(name, STYLE_SHAPES) for name in STYLE_SHAPES}
T = lambda name: STYLE_ACTS[name]  # noqa: E731
style = {
    "shapes": {k: list(v) for k, v in STYLE_SHAPES.items()},
    "gram b image 2": gram_matrix(STYLE_ACTS["b"][2]).flatten().tolist(),
    "losses": {
        "content a": float(activation_difference(["a"], difference_to=CONTENT_INDEX)(T)),
        "content a,b": float(activation_difference(["a", "b"], difference_to=CONTENT_INDEX)(T)),
        "style a,b": float(activation_difference(["a", "b"], transform_f=gram_matrix, difference_to=STYLE_INDEX)(T)),
        "mean_std style a,b": float(activation_difference(["a", "b"], transform_f=mean_std, difference_to=STYLE_INDEX)(T)),
    },
}
path = os.path.join(os.path.dirname(__file__), "../../vision-interp/tests/fixtures/style-losses.json")
with open(path, "w") as f:
    json.dump(style, f, indent=1)
print(json.dumps(style["losses"], indent=1))
