"""PyTorch peer of `bench accent`: Faccent's render_vis with accent_reg_layer set, written out
from its specification (the faccent package is not on PyPI in a usable form): a Fourier image
started exactly at the photo (logit, colour decorrelation, desaturation 5, rfft / scale), each
step 16 random views of the batch [image, seed] (box_crop_2 0.05-0.99, uniform+Gaussian noise
0.02, antialiased resize to 224) run as one batch, the objective (logit 292) and the L2
regulariser at blocks[2] (Lite0's stage2) balanced by the gradient ratio measured at the start,
a separate backward pass for the transparency map, Adam 0.05. Then the same algorithm with the
book's two economies: the seed's views run only as far as blocks[2], without gradients, and the
pixels are a leaf of their own, so that one full backward pass (the objective's, which is the
transparency) and one shallow one (the regulariser's) give both gradients. Prints one JSON
object."""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from versions import versions

N = torch.tensor([[0.56282854, 0.19482528, 0.04329450],
                  [0.58447580, 0.00000000, -0.10823626],
                  [0.58447580, -0.19482528, 0.06494176]])


def spectrum_scale(h, w):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    return torch.tensor(1.0 / np.maximum(f, 1.0 / max(h, w)), dtype=torch.float32)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--photo", required=True)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--views", type=int, default=16)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    import timm

    net = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    for q in net.parameters():
        q.requires_grad_(False)
    feats = {}
    net.blocks[2].register_forward_hook(lambda _m, _i, out: feats.__setitem__("reg", out))
    img = Image.open(a.photo).convert("RGB")
    side = min(img.size)
    img = img.crop(((img.width - side) // 2, (img.height - side) // 2, (img.width + side) // 2, (img.height + side) // 2))
    img = img.resize((a.size, a.size), Image.BICUBIC)
    seed = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1)[None] / 255
    s = a.size
    scale = spectrum_scale(s, s)

    def to_img(params):
        x = torch.fft.irfftn(torch.view_as_complex(params * scale[..., None]), s=(s, s), norm="ortho") / 5.0
        x = torch.einsum("ij,bjhw->bihw", N, x)
        return torch.sigmoid(x)

    v = torch.logit(seed.clamp(1e-6, 1 - 1e-6))
    v = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(N), v) * 5.0
    params = (torch.view_as_real(torch.fft.rfftn(v, norm="ortho", s=(s, s))) / scale[..., None]).requires_grad_(True)
    opt = torch.optim.Adam([params], lr=0.05)

    class Stop(Exception):
        pass

    def stop_at_reg(_m, _i, out):
        if feats.get("stop"):
            raise Stop

    net.blocks[2].register_forward_hook(stop_at_reg)

    def draw():
        out = []
        for _ in range(a.views):
            d = float(torch.rand(1)) * (0.99 - 0.05) + 0.05
            x0, y0 = float(torch.rand(1)) * (1 - d), float(torch.rand(1)) * (1 - d)
            box = (int(y0 * s), int((y0 + d) * s), int(x0 * s), int((x0 + d) * s))
            side = (box[1] - box[0], box[3] - box[2])
            noise = torch.randn(3, *side) * 0.02 + (torch.rand(3, *side) - 0.5) * 0.02
            out.append((box, noise))
        return out

    def views_of(batch, views):
        return torch.cat([F.interpolate(batch[:, :, y0:y1, x0:x1] + n, size=(224, 224), mode="bilinear", antialias=True)
                          for (y0, y1, x0, x1), n in views])

    def forward(im):
        batch = torch.cat([im, seed])
        views = []
        for _ in range(a.views):
            d = float(torch.rand(1)) * (0.99 - 0.05) + 0.05
            x0, y0 = float(torch.rand(1)) * (1 - d), float(torch.rand(1)) * (1 - d)
            crop = batch[:, :, int(y0 * s):int((y0 + d) * s), int(x0 * s):int((x0 + d) * s)]
            noise = torch.randn_like(crop[0]) * 0.02 + (torch.rand_like(crop[0]) - 0.5) * 0.02
            views.append(F.interpolate(crop + noise, size=(224, 224), mode="bilinear", antialias=True))
        logits = net((torch.cat(views) * 255 - 127) / 128)
        obj = -logits.view(a.views, 2, -1)[:, 0, 292].mean()
        f = feats["reg"]
        f = f.view(a.views, 2, *f.shape[1:])
        reg = -torch.norm(f[:, 0] - f[:, 1], dim=1).mean()
        return obj, reg

    start = time.perf_counter()
    im = to_img(params)
    obj, reg = forward(im)
    reg.backward(retain_graph=True)
    reg_grad = params.grad.abs().sum().item()
    params.grad = None
    obj.backward()
    balance = params.grad.abs().sum().item() / reg_grad
    params.grad = None
    tr = torch.zeros_like(seed)
    for _ in range(a.steps):
        opt.zero_grad()
        im = to_img(params)
        im.retain_grad()
        obj, reg = forward(im)
        obj.backward(retain_graph=True)
        tr += im.grad.abs()
        im.grad = None
        params.grad = None
        (obj - balance * reg).backward()
        opt.step()
    secs = time.perf_counter() - start

    # The same steps with the book's economies.
    params = (torch.view_as_real(torch.fft.rfftn(v, norm="ortho", s=(s, s))) / scale[..., None]).requires_grad_(True)
    opt = torch.optim.Adam([params], lr=0.05)
    start = time.perf_counter()
    tr = torch.zeros_like(seed)
    balance = None
    for _ in range(a.steps):
        opt.zero_grad()
        im = to_img(params)
        x = im.detach().requires_grad_(True)
        views = draw()
        logits = net((views_of(x, views) * 255 - 127) / 128)
        mine = feats["reg"]
        obj = -logits[:, 292].mean()
        with torch.no_grad():
            feats["stop"] = True
            try:
                net((views_of(seed, views) * 255 - 127) / 128)
            except Stop:
                pass
            feats["stop"] = False
        theirs = feats["reg"]
        dist = torch.norm(mine - theirs, dim=1).mean()
        g_obj = torch.autograd.grad(obj, x, retain_graph=True)[0]
        g_reg = torch.autograd.grad(dist, x)[0]
        tr += g_obj.abs()
        if balance is None:
            go = torch.autograd.grad(im, params, g_obj, retain_graph=True)[0].abs().sum()
            gr = torch.autograd.grad(im, params, g_reg, retain_graph=True)[0].abs().sum()
            balance = (go / gr).item()
        im.backward(g_obj + balance * g_reg)
        opt.step()
    lean = time.perf_counter() - start
    name = f"Faccent's algorithm (PyTorch {torch.__version__}, timm {timm.__version__})"
    print(json.dumps({"name": name, "seconds": secs, "lean_seconds": lean,
                      "versions": versions("torch", "torchvision", "timm", "kornia")}))


if __name__ == "__main__":
    main()
