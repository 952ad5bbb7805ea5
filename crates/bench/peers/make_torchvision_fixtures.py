"""Writes crates/vision-interp/tests/fixtures/torchvision-parity.json: for timm's resnet18,
resnet50, vgg16 (torchvision's architectures), mobilenetv2_100, tf_efficientnet_lite1 and
tf_efficientnet_lite2, and torchvision's googlenet, every tensor name and shape, and the logits
and a few layer summaries for weights and an input rebuilt from the integer-hash recipe that
InceptionV1's parity fixture uses (extended to BatchNorm):

  seed(name) = FNV-1a 32-bit of name, XOR phase;  u(seed, j) = mix32(j*2654435761 + seed) / 2^32
  rank >= 2 ".weight": sqrt(6 / fan_in) * (2u - 1);  rank-1 ".weight" (BatchNorm): 1 + 0.1 (2u - 1)
  ".bias": 0.01 (2u - 1);  ".running_mean": 0.1 (2u - 1);  ".running_var": 1 + u
  input [1, 3, S, S]: u of the name "input"; the model sees ImageNet-normalised input (GoogLeNet
  maps it to [-1, 1] itself, as torchvision's weights expect; EfficientNet-Lite sees
  (255 x - 127) / 128, its TensorFlow convention).
Layers are keyed by the book's layer names.

Run with the peer environment: .venv-bench/bin/python crates/bench/peers/make_torchvision_fixtures.py
"""
import json
import os

import numpy as np
import timm
import torch
import torchvision

M32 = np.uint64(0xFFFFFFFF)


def seed(name, phase=0):
    h = 0x811C9DC5
    for b in name.encode():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h ^ phase


def mix32(h):
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x45D9F3B)) & M32
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x45D9F3B)) & M32
    return h ^ (h >> np.uint64(16))


def uniform(name, n, phase=0):
    j = np.arange(n, dtype=np.uint64)
    h = (j * np.uint64(2654435761) + np.uint64(seed(name, phase))) & M32
    return (mix32(h).astype(np.float64) / 4294967296.0).astype(np.float32)


def value(name, shape):
    n = int(np.prod(shape))
    u = uniform(name, n)
    if name.endswith(".weight") and len(shape) >= 2:
        return np.sqrt(6.0 / (n // shape[0])).astype(np.float32) * (2 * u - 1)
    if name.endswith(".weight"):
        return 1 + 0.1 * (2 * u - 1)
    if name.endswith(".bias"):
        return 0.01 * (2 * u - 1)
    if name.endswith(".running_mean"):
        return 0.1 * (2 * u - 1)
    if name.endswith(".running_var"):
        return 1 + u
    raise ValueError(name)


def summary(t):
    v = t.detach().double().flatten()
    idx = np.linspace(0, v.numel() - 1, 8).astype(int)
    return {"shape": list(t.shape), "sum": v.sum().item(), "sum_sq": (v * v).sum().item(),
            "samples": {str(i): v[i].item() for i in idx}}


def main():
    torch.set_num_threads(2)
    out = {"about": __doc__.strip().splitlines()[0], "models": {}}
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    imagenet = lambda x: (x - mean) / std  # noqa: E731
    tf = lambda x: (255 * x - 127) / 128  # noqa: E731
    timm_model = lambda name: lambda: timm.create_model(name, pretrained=False)  # noqa: E731
    googlenet = lambda: torchvision.models.googlenet(  # noqa: E731
        weights=None, aux_logits=False, transform_input=True, init_weights=False)
    # book name: (constructor, input size, preprocessing, {book layer: module})
    models = {
        "resnet18": (timm_model("resnet18"), 224, imagenet,
                     {"layer1": "layer1", "layer3_1": "layer3.1", "layer4": "layer4"}),
        "resnet50": (timm_model("resnet50"), 224, imagenet, {"layer2_3": "layer2.3", "layer4": "layer4"}),
        "vgg16": (timm_model("vgg16"), 224, imagenet, {"features_15": "features.15", "features_30": "features.30"}),
        "mobilenet-v2": (timm_model("mobilenetv2_100"), 224, imagenet,
                         {"features_10": "blocks.3", "features_15": "blocks.5.1", "features_18": "bn2"}),
        "efficientnet-lite1": (timm_model("tf_efficientnet_lite1"), 240, tf,
                               {"stage3": "blocks.3", "stage5": "blocks.5", "head": "bn2"}),
        "efficientnet-lite2": (timm_model("tf_efficientnet_lite2"), 260, tf,
                               {"stage3": "blocks.3", "stage5": "blocks.5", "head": "bn2"}),
        "googlenet": (googlenet, 224, imagenet,
                      {"inception3a": "inception3a", "inception4c": "inception4c", "inception5b": "inception5b"}),
    }
    for arch, (make, size, pre, hooks) in models.items():
        x = torch.from_numpy(uniform("input", 3 * size * size)).reshape(1, 3, size, size)
        net = make().eval()
        sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        net.load_state_dict({k: torch.from_numpy(value(k, tuple(v.shape))).reshape(v.shape) for k, v in sd.items()},
                            strict=False)
        acts = {}
        for book, module in hooks.items():
            net.get_submodule(module).register_forward_hook(lambda m, i, o, book=book: acts.__setitem__(book, o))
        with torch.no_grad():
            logits = net(pre(x))
        out["models"][arch] = {
            "input_size": size,
            "tensors": {k: list(v.shape) for k, v in sd.items()},
            "layers": {k: summary(v) for k, v in acts.items()},
            "logits": summary(logits),
        }
    path = os.path.join(os.path.dirname(__file__), "../../vision-interp/tests/fixtures/torchvision-parity.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
