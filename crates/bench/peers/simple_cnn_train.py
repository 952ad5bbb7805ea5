"""PyTorch peer of `bench training`: SimpleCNN training steps (forward, cross-entropy, backward,
Adam) on random images, timed like the Rust side. Prints one JSON object."""
import argparse
import json
import time

import torch
from torch import nn
from versions import versions


class SimpleCNN(nn.Module):
    """The course's SimpleCNN: three conv3x3-BN-ReLU-maxpool blocks, adaptive pool to 4x4,
    2048 -> 512 -> classes with dropout 0.25 (1,147,914 parameters for 10 classes)."""

    def __init__(self, classes=10):
        super().__init__()
        layers, c_in = [], 3
        for c in (32, 64, 128):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2048, 512), nn.ReLU(), nn.Dropout(0.25), nn.Linear(512, classes)
        )

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = SimpleCNN()
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = torch.rand(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 10, (a.batch,))
    net.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net((x - mean) / std), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.trials):
        t = time.perf_counter()
        for _ in range(a.steps):
            step()
        times.append((time.perf_counter() - t) / a.steps)
    times.sort()
    print(json.dumps({"name": f"PyTorch {torch.__version__}", "params": params, "step_s": times[len(times) // 2],
                      "versions": versions("torch", "numpy")}))


if __name__ == "__main__":
    main()
