"""PyTorch peer of `bench gan`: Lucent's upconvGAN (the DeePSiM generator of
`lucent.optvis.param.gan`, built with pretrained=False) with the hash-built weights the Rust side
wrote, and one step of code optimisation as Lucent's GAN parametrisation runs it: `visualize`
of a batch of codes, a loss on the images (minus the mean of the red channel), its gradient
with respect to the codes. Prints one JSON object: the median time of a step over the trials.
"""
import argparse
import json
import time

import torch
from versions import versions


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weights", required=True)
    p.add_argument("--generator", default="fc6")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from safetensors.torch import load_file
    from lucent.optvis.param.gan import upconvGAN

    g = upconvGAN(a.generator, pretrained=False).eval()
    g.G.load_state_dict(load_file(a.weights))
    g.G.requires_grad_(False)
    shape = (a.batch, 256, 6, 6) if a.generator == "pool5" else (a.batch, g.codelen)
    code = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).requires_grad_(True)

    def step():
        code.grad = None
        loss = -g.visualize(code)[:, 0].mean()
        loss.backward()
        return loss.item()

    step()
    times = []
    for _ in range(a.trials):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(json.dumps({"seconds": sorted(times)[len(times) // 2], "torch": torch.__version__,
                      "versions": versions("torch", "torch-lucent", "safetensors")}))


if __name__ == "__main__":
    main()
