"""PyTorch peer of `bench render`: Lucent's render_vis at its defaults (128-px FFT image with
decorrelated colour, standard transforms, upsampled to 224, Adam 0.05) on InceptionV1 with the
weights the Rust side wrote; for each batch size, one render of that many units (one image per
unit). Prints one JSON object."""
import argparse
import json
import time

import torch
from safetensors.torch import load_file
from versions import versions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--unit", default="mixed4a:476")
    p.add_argument("--steps", type=int, default=512)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from lucent.modelzoo import inceptionv1
    from lucent.optvis import objectives, param, render

    net = inceptionv1(pretrained=False)
    net.load_state_dict(load_file(a.weights))
    net.eval()
    kw = dict(thresholds=(a.steps,), show_image=False, progress=False)
    layer, unit = a.unit.split(":")
    # A short warm-up render first, as the book's side has (PyTorch's first pass sets up its
    # kernels).
    warm = objectives.channel(layer, int(unit))
    render.render_vis(net, warm, param_f=lambda: param.image(128), **dict(kw, thresholds=(4,)))
    seconds = {}
    for b in [int(x) for x in a.batches.split(",")]:
        obj = objectives.Objective.sum([objectives.channel(layer, (int(unit) + i) % 508, batch=i) for i in range(b)])
        t = time.perf_counter()
        render.render_vis(net, obj, param_f=lambda: param.image(128, batch=b), **kw)
        seconds[str(b)] = time.perf_counter() - t
    print(json.dumps({"name": f"Lucent 0.1.8 (PyTorch {torch.__version__})", "seconds": seconds,
                      "versions": versions("torch", "torch-lucent", "safetensors")}))

if __name__ == "__main__":
    main()
