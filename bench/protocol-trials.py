#!/usr/bin/env python3
"""Protocol trials (docs/protocol-notes.md): train the PyTorch peer's ResNet20-shaped CNN or ViT
(shared/peers/pytorch_peer.py, found beside the repository or through GLONET_PYTORCH_PEER) with
glonet's initialization and L2, on the digits glonet reads, with one optimizer/schedule/init, on
one thread. Prints one JSON line: the settings, per-epoch test accuracy (%) and train loss.
Run with Debian's torch: /usr/bin/python3 bench/protocol-trials.py cnn --arch glonet --opt adam --lr 1e-3

  --data mnist    data/mnist (the 10,000 MNIST test digits): seeded subset, 80/20 split
  --data fashion  /usr/share/datasets/fashion-mnist: seeded `subset` training images, subset/6 test
"""
import argparse, gzip, json, math, os, sys, time
import numpy as np
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.environ.get('GLONET_PYTORCH_PEER', os.path.join(ROOT, '..', 'shared', 'peers', 'pytorch_peer.py'))
sys.path.insert(0, os.path.dirname(PEER))
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
import pytorch_peer as peer

def idx(path):
    with gzip.open(path, 'rb') as f:
        b = f.read()
    magic = int.from_bytes(b[0:4], 'big')
    if magic == 0x803:
        n, r, c = (int.from_bytes(b[4+4*i:8+4*i], 'big') for i in range(3))
        return np.frombuffer(b, np.uint8, offset=16).reshape(n, r, c)
    n = int.from_bytes(b[4:8], 'big')
    return np.frombuffer(b, np.uint8, offset=8)

def load(name, subset, seed):
    rng = np.random.RandomState(seed)
    if name == 'mnist':
        d = os.path.join(ROOT, 'data', 'mnist')
        x, y = idx(f'{d}/t10k-images-idx3-ubyte.gz'), idx(f'{d}/t10k-labels-idx1-ubyte.gz')
        p = rng.permutation(len(y))[:subset]
        nt = int(round(len(p) * 0.8))
        tr, te = p[:nt], p[nt:]
        xtr, ytr, xte, yte = x[tr], y[tr], x[te], y[te]
    else:
        d = '/usr/share/datasets/fashion-mnist'
        x, y = idx(f'{d}/train-images-idx3-ubyte.gz'), idx(f'{d}/train-labels-idx1-ubyte.gz')
        xt, yt = idx(f'{d}/t10k-images-idx3-ubyte.gz'), idx(f'{d}/t10k-labels-idx1-ubyte.gz')
        p = rng.permutation(len(y))[:subset]
        q = rng.permutation(len(yt))[:max(1, round(subset / 6))]
        xtr, ytr, xte, yte = x[p], y[p], xt[q], yt[q]
    f = lambda a: torch.tensor(a, dtype=torch.float32).unsqueeze(1) / 255.0
    return f(xtr), torch.tensor(ytr, dtype=torch.long), f(xte), torch.tensor(yte, dtype=torch.long)

def build(a):
    if a.model == 'cnn':
        m = peer.CNN(a.arch, a.blocks, 10, in_ch=1)
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, nonlinearity='relu')
                if mod.bias is not None: nn.init.zeros_(mod.bias)
        head = m.fc
        L = 6 * a.blocks
    else:
        m = peer.ViT(a.arch, a.depth, a.width, 28, 1, 10)
        # as glonet's ViT: Glorot-uniform kernels, He-normal for the ReLU feed-forward, zero biases
        for name, p in m.named_parameters():
            if name.endswith('linear1.weight'):
                nn.init.kaiming_normal_(p, nonlinearity='relu')
            elif p.dim() > 1 and 'norm' not in name and name not in ('cls', 'pos'):
                nn.init.xavier_uniform_(p)
            elif name.endswith('bias'):
                nn.init.zeros_(p)
        nn.init.trunc_normal_(m.cls, std=0.02); nn.init.trunc_normal_(m.pos, std=0.02)
        head = m.head
        L = a.depth
    if a.head_init == 'scaled':
        with torch.no_grad(): head.weight.mul_(1.0 / L)
    elif a.head_init == 'zero':
        with torch.no_grad(): head.weight.zero_()
    return m

def kernels(m):
    return [p for n, p in m.named_parameters() if p.dim() > 1 and n not in ('cls', 'pos')]

def main():
    p = argparse.ArgumentParser()
    p.add_argument('model', choices=['cnn', 'vit'])
    p.add_argument('--arch', default='glonet')
    p.add_argument('--blocks', type=int, default=3)
    p.add_argument('--depth', type=int, default=4)
    p.add_argument('--width', type=int, default=128)
    p.add_argument('--data', default='mnist')
    p.add_argument('--subset', type=int, default=4000)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--opt', default='sgd')
    p.add_argument('--lr', type=float, default=0.1)
    p.add_argument('--momentum', type=float, default=0.9)
    p.add_argument('--l2', type=float, default=5e-5)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--warmup', type=float, default=0, help='linear warm-up, epochs')
    p.add_argument('--schedule', default='constant', choices=['constant', 'step', 'cosine'])
    p.add_argument('--clip', type=float, default=0)
    p.add_argument('--head-init', default='he', choices=['he', 'scaled', 'zero'], help='he = the paper\'s (glonet\'s \"paper\")')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--tag', default='')
    p.add_argument('--standardize', action='store_true')
    a = p.parse_args()
    torch.manual_seed(a.seed)
    xtr, ytr, xte, yte = load(a.data, a.subset, 0)
    if a.standardize:
        mu, sd = xtr.mean(), xtr.std(); xtr = (xtr - mu) / sd; xte = (xte - mu) / sd
    m = build(a)
    ks = kernels(m)
    opt = torch.optim.Adam(m.parameters(), lr=a.lr) if a.opt == 'adam' else torch.optim.SGD(m.parameters(), lr=a.lr, momentum=a.momentum)
    n = len(ytr); bpe = math.ceil(n / a.batch); total = bpe * a.epochs; step = 0
    accs, losses, t0 = [], [], time.time()
    g = torch.Generator().manual_seed(a.seed)
    status = 'ok'
    for ep in range(1, a.epochs + 1):
        if a.schedule == 'step':
            q = max(1, a.epochs // 4); base = a.lr * 0.1 ** min(3, (ep - 1) // q)
        else: base = a.lr
        m.train(); perm = torch.randperm(n, generator=g); lsum = 0.0
        for b in range(bpe):
            i = perm[b * a.batch:(b + 1) * a.batch]
            lr = base
            if a.schedule == 'cosine': lr = a.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            if a.warmup > 0 and step < a.warmup * bpe: lr = lr * (step + 1) / (a.warmup * bpe)
            for gr in opt.param_groups: gr['lr'] = lr
            out = m(xtr[i]); loss = F.cross_entropy(out, ytr[i])
            if a.l2 > 0: loss = loss + a.l2 * sum((k * k).sum() for k in ks)
            opt.zero_grad(); loss.backward()
            if a.clip > 0: nn.utils.clip_grad_norm_(m.parameters(), a.clip)
            opt.step(); step += 1
            if not math.isfinite(loss.item()): status = f'diverged ep{ep} b{b+1}'; break
            lsum += loss.item() * len(i)
        if status != 'ok': break
        m.eval()
        with torch.no_grad():
            acc = sum((m(xte[j:j+1000]).argmax(1) == yte[j:j+1000]).sum().item() for j in range(0, len(yte), 1000)) / len(yte)
        accs.append(round(acc * 100, 1)); losses.append(round(lsum / n, 3))
    cfg = {k: v for k, v in vars(a).items()}
    print(json.dumps(dict(cfg, status=status, acc=accs, trainLoss=losses, sec=round(time.time() - t0))), flush=True)

main()
