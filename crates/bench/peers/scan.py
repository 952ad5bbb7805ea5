"""PyTorch peer of `bench scan`: pass 1 of a dataset scan. A DataLoader with worker processes
decodes each image and cuts its views (view 0: resize to 256 and centre crop 224; the others:
RandomResizedCrop(224, scale=(0.1, 1))), the model runs up to the layer (a forward hook stops it
there), and per channel the spatial max and mean update running top-k lists (torch.topk over
the batch and the kept ones). Runs the data once with --views V and once with 4 V views per
image, and prints images/s and the peak resident memory after each, as one JSON object."""
import argparse
import json
import pathlib
import resource
import time

import torch
from PIL import Image
from safetensors.torch import load_file
from torchvision import transforms
from versions import versions


class Stop(Exception):
    pass


class Views(torch.utils.data.Dataset):
    def __init__(self, paths, views):
        self.paths, self.views = paths, views
        self.centre = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
        self.random = transforms.Compose([transforms.RandomResizedCrop(224, scale=(0.1, 1.0)), transforms.ToTensor()])

    def __len__(self):
        return len(self.paths) * self.views

    def __getitem__(self, i):
        img = Image.open(self.paths[i // self.views]).convert("RGB")
        return (self.centre if i % self.views == 0 else self.random)(img)


def peak_mb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["inceptionv1", "efficientnet-lite0"], required=True)
    p.add_argument("--weights")
    p.add_argument("--images", required=True)
    p.add_argument("--views", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--top-k", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    if a.model == "inceptionv1":
        from lucent.modelzoo import inceptionv1

        net = inceptionv1(pretrained=False)
        net.load_state_dict(load_file(a.weights))
        name, prep = "Lucent 0.1.8", lambda t: t * 255 - 117
        branches = [getattr(net, f"mixed4a_{b}_pre_relu_conv") for b in ["1x1", "3x3", "5x5", "pool_reduce"]]
    else:
        import timm

        net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        name, prep = f"timm {timm.__version__}", lambda t: (t * 255 - 127) / 128
        branches = [net.blocks[3]]
    net.eval()
    seen = {}

    def keep(module, _inp, out):
        # Stop the forward pass as soon as every branch of the layer has run (whatever order
        # the model runs them in), as the Rust side stops at the layer.
        seen[module] = out
        if len(seen) == len(branches):
            raise Stop

    for b in branches:
        b.register_forward_hook(keep)
    paths = sorted(str(q) for q in pathlib.Path(a.images).rglob("*") if q.suffix.lower() in (".jpg", ".jpeg", ".png"))
    result = {"name": f"{name} (PyTorch {torch.__version__}, DataLoader with {a.workers} workers)"}
    for factor in (1, 4):
        views = a.views * factor
        loader = torch.utils.data.DataLoader(Views(paths, views), batch_size=a.batch, num_workers=a.workers)
        top = None
        start = time.perf_counter()
        n = 0
        with torch.no_grad():
            for x in loader:
                seen.clear()
                try:
                    net(prep(x))
                except Stop:
                    pass
                act = torch.cat([seen[b] for b in branches], 1).flatten(2)
                scores = torch.cat([act.amax(2), act.mean(2)], 1)  # (B, 2C)
                act.argmax(2), act.argmin(2)
                k = min(a.top_k, scores.shape[0])
                cand = scores.topk(k, dim=0).values
                top = cand if top is None else torch.cat([top, cand]).topk(min(a.top_k, top.shape[0] + k), dim=0).values
                n += x.shape[0]
        secs = time.perf_counter() - start
        result[f"images_per_s_{factor}x"] = n / secs
        result[f"views_{factor}x"] = n
        result[f"peak_mb_{factor}x"] = peak_mb()
    result["versions"] = versions("torch", "torchvision", "timm", "torch-lucent", "Pillow")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
