"""PyTorch peer of `bench models`: forward pass, and forward plus the gradient of one logit
with respect to the input, for Lucent's InceptionV1 (weights from the safetensors file the Rust
side wrote) and timm's tf_efficientnet_lite0, on the input the Rust side wrote. Prints one JSON
object."""
import argparse
import json
import time

import torch
from safetensors.torch import load_file


def median_time(f, warmup, runs):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["inceptionv1", "efficientnet-lite0"], required=True)
    p.add_argument("--weights")
    p.add_argument("--input", required=True)
    p.add_argument("--class-index", type=int, default=0)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    x = load_file(a.input)["input"]
    if a.model == "inceptionv1":
        from lucent.modelzoo import inceptionv1

        net = inceptionv1(pretrained=False)
        net.load_state_dict(load_file(a.weights))
        name, prep = "Lucent 0.1.8", lambda t: t * 255 - 117
    else:
        import timm

        net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        name, prep = f"timm {timm.__version__}", lambda t: (t * 255 - 127) / 128
    net.eval()

    def forward():
        with torch.no_grad():
            net(prep(x))

    def gradient():
        xi = x.clone().requires_grad_(True)
        net(prep(xi))[0, a.class_index].backward()
        return xi.grad

    out = {
        "name": f"{name} (PyTorch {torch.__version__})",
        "forward_s": median_time(forward, 2, a.runs),
        "gradient_s": median_time(gradient, 2, a.runs),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
