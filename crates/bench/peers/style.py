"""PyTorch peer of `bench style`: Lucid's style transfer as Lucent runs it. One batch holds the
transfer image (Lucent's param.image: FFT with decorrelated colour and a sigmoid, at the
content's size), the content photo and the style painting; render_vis applies Lucent's standard
transformations to the whole batch and minimises the content weight x the content loss (mean L1 of the
activations) plus the style loss (mean L1 of Gram matrices F F^T / (H W)) with Adam 0.05.
InceptionV1 (Lucent's, with the weights the Rust side wrote) or timm's tf_efficientnet_lite0.
Prints one JSON object.

The loss functions are the notebook's (`gram_matrix`, `mean_L1`, `activation_difference`);
make_objective_fixtures.py imports them to write the book's parity fixture.
"""
import argparse
import json
import time

import numpy as np
import torch
from versions import versions

TRANSFER_INDEX, CONTENT_INDEX, STYLE_INDEX = 0, 1, 2


def gram_matrix(features, normalize=True):
    """F F^T / (H W) of one image's activations (C, H, W)."""
    c, h, w = features.shape
    f = features.reshape(c, h * w)
    gram = f @ f.t()
    return gram / (h * w) if normalize else gram


def mean_std(features):
    """Each channel's mean and (population) standard deviation, eps 1e-5 under the root."""
    c, h, w = features.shape
    f = features.reshape(c, h * w)
    return torch.cat([f.mean(1), (f.var(1, unbiased=False) + 1e-5).sqrt()])


def mean_L1(a, b):
    return torch.abs(a - b).mean()


def activation_difference(layer_names, activation_loss_f=mean_L1, transform_f=None, difference_to=CONTENT_INDEX):
    """A loss of the hook T: the transfer image's activations against image `difference_to`'s."""
    def inner(T):
        targets = [T(name)[difference_to].detach() for name in layer_names]
        ours = [T(name)[TRANSFER_INDEX] for name in layer_names]
        if transform_f is not None:
            targets = [transform_f(t) for t in targets]
            ours = [transform_f(o) for o in ours]
        return sum(activation_loss_f(o, t) for o, t in zip(ours, targets))

    return inner


def load(path, size):
    """The file as a (1, 3, size, size) tensor in [0, 1]: the largest centred square, resized."""
    from PIL import Image

    img = Image.open(path).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR)
    return torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1)[None] / 255


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["inceptionv1", "efficientnet-lite0"], required=True)
    p.add_argument("--weights", help="InceptionV1's weights (safetensors)")
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--content-layers", required=True, help="comma-separated, Lucent's hook names")
    p.add_argument("--style-layers", required=True)
    p.add_argument("--content-weight", type=float, default=100.0, help="Lucid's: 100")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    from lucent.optvis import objectives, param, render

    if a.model == "inceptionv1":
        from lucent.modelzoo import inceptionv1
        from safetensors.torch import load_file

        net = inceptionv1(pretrained=False)
        net.load_state_dict(load_file(a.weights))
    else:
        import timm

        net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    net.eval()
    for q in net.parameters():
        q.requires_grad_(False)
    content, style = load(a.content, a.size), load(a.style, a.size)

    def param_f():
        params, image_f = param.image(a.size)
        return params, lambda: torch.cat([image_f(), content, style])

    content_obj = a.content_weight * objectives.Objective(activation_difference(a.content_layers.split(","), difference_to=CONTENT_INDEX))
    style_obj = objectives.Objective(
        activation_difference(a.style_layers.split(","), transform_f=gram_matrix, difference_to=STYLE_INDEX)
    )
    kw = dict(thresholds=(a.steps,), show_image=False, progress=False)
    render.render_vis(net, content_obj + style_obj, param_f=param_f, **dict(kw, thresholds=(2,)))  # warm-up
    t = time.perf_counter()
    render.render_vis(net, content_obj + style_obj, param_f=param_f, **kw)
    seconds = time.perf_counter() - t
    print(json.dumps({"name": f"Lucent 0.1.8 (PyTorch {torch.__version__})", "seconds": seconds,
                      "versions": versions("torch", "torch-lucent", "timm", "kornia")}))


if __name__ == "__main__":
    main()
