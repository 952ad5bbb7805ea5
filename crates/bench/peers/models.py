"""PyTorch peer of `bench models`: forward pass, and forward plus the gradient of one logit
with respect to the input, for Lucent's InceptionV1 (weights from the safetensors file the Rust
side wrote), timm's tf_efficientnet_lite0 and mobilenetv2_100 and torchvision's googlenet, on
the input the Rust side wrote. Prints one JSON object."""
import argparse
import json
import time

import torch
from safetensors.torch import load_file
from versions import versions


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
    p.add_argument("--model", choices=["inceptionv1", "efficientnet-lite0", "googlenet", "mobilenet-v2"], required=True)
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
    elif a.model == "googlenet":
        import torchvision

        # torchvision's weights come with transform_input=True: ImageNet-normalised input in.
        net = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        name, prep = f"torchvision {torchvision.__version__}", lambda t: (t - mean) / std
    else:
        import timm

        arch = {"efficientnet-lite0": "tf_efficientnet_lite0", "mobilenet-v2": "mobilenetv2_100"}[a.model]
        net = timm.create_model(arch, pretrained=False)
        if a.model == "mobilenet-v2":
            mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
            std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
            prep = lambda t: (t - mean) / std  # noqa: E731
        else:
            prep = lambda t: (t * 255 - 127) / 128  # noqa: E731
        name = f"timm {timm.__version__}"
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
    out["versions"] = versions("torch", "torchvision", "timm", "torch-lucent", "safetensors")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
