"""The plain-PyTorch reference, written the way a typical MNIST tutorial is: torchvision MNIST,
ToTensor + Normalize per item, a DataLoader with 2 worker processes, batch 64, the same CNN and
Adam. bench/speed.py times it against train.py; run alone: DATA_DIR=../shared/data .venv/bin/python
bench/reference_plain.py --epochs 2
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, random_split
from torchvision import datasets, transforms


class Net(nn.Module):
    """The reference CNN: conv32 -> pool -> conv64 -> pool -> fc128 -> dropout 0.25 -> fc10."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.dropout = nn.Dropout(0.25)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for (B, 1, 28, 28) images."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)


def evaluate(model: nn.Module, loader: DataLoader) -> float:
    """Accuracy over a loader."""
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
    model.train()
    return correct / total


def main() -> None:
    """Train, validate each epoch, test; print one JSON line with the timings."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--data", default=os.environ.get("DATA_DIR", "data"))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    full = datasets.MNIST(args.data, train=True, transform=tf)
    train_set, val_set = random_split(
        full, [55000, 5000], generator=torch.Generator().manual_seed(42)
    )
    test_set = datasets.MNIST(args.data, train=False, transform=tf)
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, num_workers=2)
    val_loader = DataLoader(val_set, batch_size=64, num_workers=2)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    epoch_times = []
    for _ in range(args.epochs):
        t = time.perf_counter()
        for x, y in train_loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        evaluate(model, val_loader)
        epoch_times.append(time.perf_counter() - t)
    acc = evaluate(model, DataLoader(test_set, batch_size=64, num_workers=2))
    wall = time.perf_counter() - start
    print(
        json.dumps(
            {"wall_s": wall, "epoch_s": sum(epoch_times) / len(epoch_times), "test_acc": acc}
        )
    )


if __name__ == "__main__":
    main()
