"""Output-error restoration and least-squares refit of one layer (the core of EAP).

For a layer with weights ``A`` (one column per filter) the output error on real data is

    err(A) = ||Y - X A||_F^2 = sum over filters m of  y_m'y_m - 2 a_m'b_m + a_m'G a_m

with X the im2col rows of the layer's inputs, Y the target outputs (bias removed),
``G = X'X`` and ``b_m = X'y_m``. Only G, B = X'Y and y'y are kept (`LayerStats`), so the
cost of every step below is independent of the number of samples.

**Samples (our choice).** ``samples`` training images (default 1024); for a
convolution, ``positions`` output positions (default 16) drawn per image without
replacement. X comes from the *current* network (the layers pruned before this one in
the round included), Y from the network at the start of the round: the refit thus also
compensates the error that earlier layers introduced.

**Greedy rule (our choice; the paper's exact rule is not known).** The restoration
problem ``min ||Y - X A||  s.t.  ||A||_0 <= q`` is solved greedily by backward
elimination. To keep q of the layer's non-zero weights when k = (non-zeros) - q must go
this round:

1. *Remove by magnitude* (the poster's "quickly remove weights"): the ``k - e``
   smallest |w| of the layer go (one ranking over all its filters),
   ``e = round(error_share * k)``.
2. *Choose the last e by output error*: in ``restore_steps`` batches, the kept weights
   are refit (step 3) and every kept weight j of filter m is scored by how much the
   output error grows if it goes and the others of its filter are re-solved,
   ``a_mj^2 / [(G_SS + lam I)^-1]_jj`` (the Optimal-Brain-Surgeon cost of the
   least-squares problem, exact for one weight); the lowest-cost weights of the whole
   layer go, however large they are.
3. *Refit* the kept weights by least squares on their support S:
   ``(G_SS + lam I) a_S = b_S``, ``lam = ridge * mean(diag G)`` (Tikhonov; bounded,
   NaN-free weights also when X is rank deficient).

An earlier version restored weights by forward selection (matching pursuit, scores
``c_mj^2 / G_jj`` in two batches); on LeNet-5 layers it left 2x to 25x the output error
of magnitude pruning plus refit, so it was replaced (docs/pruning.md). With
``error_share=0`` the rule is magnitude pruning plus refit; with ``refit=False`` the
kept weights keep their values. Weights pruned in an earlier round stay pruned (masks
only shrink).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nnjoules.errors import InputError
from nnjoules.prune.config import RestoreConfig as RestoreConfig


@dataclass(frozen=True)
class LayerStats:
    """Sufficient statistics of ``||Y - X A||^2`` per group g (float64)."""

    gram: Tensor   # [G, D, D]   X_g' X_g
    cross: Tensor  # [G, D, Mg]  X_g' Y_g
    y_sq: Tensor   # [G, Mg]     column sums of Y_g^2
    rows: int      # rows of X per group

    def error(self, a: Tensor) -> float:
        """``||Y - X A||_F^2`` for A of shape [G, D, Mg]."""
        a = a.to(self.gram)
        quad = (a * (self.gram @ a)).sum()
        return float(self.y_sq.sum() - 2 * (a * self.cross).sum() + quad)

    def relative_error(self, a: Tensor) -> float:
        """``||Y - X A||^2 / ||Y||^2`` (0 when Y is all zeros)."""
        total = float(self.y_sq.sum())
        return self.error(a) / total if total > 0 else 0.0


def to_columns(module: nn.Module, weight: Tensor) -> Tensor:
    """Weight of a Conv2d [M, C/G, R, S] or Linear [M, D] as A: [G, D, M/G] (float64)."""
    groups = module.groups if isinstance(module, nn.Conv2d) else 1
    m_total = weight.shape[0]
    return weight.reshape(groups, m_total // groups, -1).transpose(1, 2).double()


def from_columns(module: nn.Module, a: Tensor, like: Tensor) -> Tensor:
    """Inverse of `to_columns`, in the dtype and shape of ``like``."""
    return a.transpose(1, 2).reshape(like.shape).to(like)


def im2col(module: nn.Module, x: Tensor) -> Tensor:
    """The layer input as columns ``[N, G*D, L]``: one column per output position."""
    if isinstance(module, nn.Linear):
        return x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)
    assert isinstance(module, nn.Conv2d)
    pad = module._reversed_padding_repeated_twice
    mode = "constant" if module.padding_mode == "zeros" else module.padding_mode
    x = F.pad(x, pad, mode=mode) if any(pad) else x
    return F.unfold(x, module.kernel_size, dilation=module.dilation, stride=module.stride)


def outputs(module: nn.Module, y: Tensor) -> Tensor:
    """The layer output as ``[N, M, L]``, bias removed."""
    if isinstance(module, nn.Conv2d):
        y = y.reshape(y.shape[0], y.shape[1], -1)
    else:
        y = y.reshape(y.shape[0], -1, y.shape[-1]).transpose(1, 2)
    bias = module.bias
    if isinstance(bias, Tensor):
        y = y - bias.detach().reshape(1, -1, 1)
    return y


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the layer has been seen."""


def _capture(model: nn.Module, module: nn.Module, x: Tensor, *, want: str) -> Tensor:
    seen: list[Tensor] = []

    def hook(_m: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        seen.append(args[0] if want == "input" else out)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        model(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not seen:
        raise InputError("the layer being pruned is not called by the model's forward")
    return seen[0].detach()


@torch.no_grad()
def collect_stats(current: nn.Module, reference: nn.Module, layer: str, images: Tensor, *,
                  positions: int, generator: torch.Generator, chunk: int = 256) -> LayerStats:
    """G, B and y'y of ``layer``: X from ``current``, Y from ``reference`` (same images).

    ``images`` are model inputs ``[N, ...]``; for convolutions ``positions`` output
    positions per image are drawn with ``generator``.
    """
    cur_mod = dict(current.named_modules())[layer]
    ref_mod = dict(reference.named_modules())[layer]
    modes = [(m, m.training) for m in (current, reference)]
    current.eval()
    reference.eval()
    gram = cross = y_sq = None
    rows = 0
    try:
        for start in range(0, len(images), chunk):
            batch = images[start:start + chunk]
            x = im2col(cur_mod, _capture(current, cur_mod, batch, want="input"))
            y = outputs(ref_mod, _capture(reference, ref_mod, batch, want="output"))
            if x.shape[2] != y.shape[2]:
                raise InputError(f"layer {layer}: {x.shape[2]} input columns but "
                                 f"{y.shape[2]} outputs per item")
            length = x.shape[2]
            if length > positions:
                pick = torch.rand(len(batch), length, generator=generator).argsort(1)
                pick = pick[:, None, :positions].to(x.device)
                x = x.gather(2, pick.expand(-1, x.shape[1], -1))
                y = y.gather(2, pick.expand(-1, y.shape[1], -1))
            groups = getattr(cur_mod, "groups", 1)
            # [N, G*D, P] -> [G, N*P, D]; [N, M, P] -> [G, N*P, Mg]
            xg = x.double().reshape(x.shape[0], groups, -1, x.shape[2]).permute(1, 0, 3, 2)
            xg = xg.reshape(groups, -1, xg.shape[-1])
            yg = y.double().reshape(y.shape[0], groups, -1, y.shape[2]).permute(1, 0, 3, 2)
            yg = yg.reshape(groups, -1, yg.shape[-1])
            g_part, b_part = xg.transpose(1, 2) @ xg, xg.transpose(1, 2) @ yg
            s_part = (yg * yg).sum(1)
            gram = g_part if gram is None else gram + g_part
            cross = b_part if cross is None else cross + b_part
            y_sq = s_part if y_sq is None else y_sq + s_part
            rows += xg.shape[1]
    finally:
        for m, training in modes:
            m.train(training)
    assert gram is not None and cross is not None and y_sq is not None
    return LayerStats(gram=gram, cross=cross, y_sq=y_sq, rows=rows)


def collect_tied_stats(current: nn.Module, reference: nn.Module, layers: list[str],
                       images: Tensor, *, positions: int, generator: torch.Generator,
                       chunk: int = 256) -> LayerStats:
    """`collect_stats` of layers that share one weight, summed: one joint least-squares
    problem ``sum_k ||Y_k - X_k A||^2``, so that the shared weight gets one refit that
    serves every use (layers of another shape of A contribute nothing)."""
    total = collect_stats(current, reference, layers[0], images, positions=positions,
                          generator=generator, chunk=chunk)
    for name in layers[1:]:
        part = collect_stats(current, reference, name, images, positions=positions,
                             generator=generator, chunk=chunk)
        if part.gram.shape == total.gram.shape and part.cross.shape == total.cross.shape:
            total = LayerStats(gram=total.gram + part.gram, cross=total.cross + part.cross,
                               y_sq=total.y_sq + part.y_sq, rows=total.rows + part.rows)
    return total


def refit(stats: LayerStats, support: Tensor, *, ridge: float = 1e-4) -> Tensor:
    """Least squares on the support, per filter: ``(G_SS + lam I) a_S = b_S``, zero off S.

    ``lam = ridge * mean(diag G)`` per group (plus 1e-12 so that an all-zero input
    gives zero weights). Each filter's system is solved on its support only (Cholesky;
    a least-squares solve with ``rcond`` if it fails). Returns A [G, D, Mg] (float64).
    """
    gram, cross = stats.gram, stats.cross
    groups, _d, mg = cross.shape
    out = torch.zeros_like(cross)
    for g in range(groups):
        lam = ridge * float(gram[g].diagonal().mean()) + 1e-12
        for m in range(mg):
            idx = support[g, :, m].nonzero().flatten()
            if idx.numel() == 0:
                continue
            h = gram[g].index_select(0, idx).index_select(1, idx)
            h.diagonal().add_(lam)
            out[g, idx, m] = _solve_spd(h, cross[g, idx, m, None])[:, 0]
    return out


def _solve_spd(h: Tensor, rhs: Tensor) -> Tensor:
    """Solve an SPD system; a failed Cholesky falls back to a least-squares solve."""
    factor, info = torch.linalg.cholesky_ex(h)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor)
    return torch.linalg.lstsq(h, rhs, rcond=1e-10, driver="gelsd").solution


def magnitude_support(a: Tensor, candidates: Tensor, keep: int) -> Tensor:
    """The ``keep`` largest |a| among ``candidates`` (ties: lower index first)."""
    flat = a.abs().flatten().masked_fill(~candidates.flatten(), -1.0)
    order = torch.sort(flat, descending=True, stable=True).indices[:max(0, keep)]
    support = torch.zeros(flat.numel(), dtype=torch.bool)
    support[order] = True
    return support.reshape(a.shape) & candidates


def restore(a0: Tensor, candidates: Tensor, keep: int, stats: LayerStats,
            config: RestoreConfig) -> tuple[Tensor, Tensor]:
    """Prune a layer to ``keep`` non-zeros by the greedy rule of the module docstring.

    Args:
        a0: current weights [G, D, Mg] (zeros where pruned).
        candidates: weights that may be kept (the current mask), bool [G, D, Mg].
        keep: non-zero weights to keep (clipped to the candidates).
        stats: the layer's `LayerStats`.
        config: error share, steps, ridge, refit.

    Returns:
        New weights [G, D, Mg] (float64) and the new mask (bool).
    """
    a0 = a0.double()
    n_cand = int(candidates.sum())
    keep = max(0, min(keep, n_cand))
    chosen = round(config.error_share * (n_cand - keep))
    support = magnitude_support(a0, candidates, keep + chosen)
    for step in range(config.restore_steps):
        excess = int(support.sum()) - keep
        if excess <= 0:
            break
        cost = removal_cost(stats, support, ridge=config.ridge)
        take = math.ceil(excess / (config.restore_steps - step))
        order = torch.sort(cost.flatten(), stable=True).indices[:take]
        flat = support.flatten().clone()
        flat[order] = False
        support = flat.reshape(support.shape)
    a = refit(stats, support, ridge=config.ridge) if config.refit else a0 * support
    return a, support


def removal_cost(stats: LayerStats, support: Tensor, *, ridge: float = 1e-4,
                 chunk: int = 32) -> Tensor:
    """Per kept weight, the growth of ``||Y - X A||^2`` if it alone goes and the rest of
    its filter is re-solved: ``a_j^2 / [(G_SS + lam I)^-1]_jj`` at the least-squares
    ``a`` on the support (+inf off the support). [G, D, Mg], float64.

    Filters are processed ``chunk`` at a time (one batched Cholesky each, of the size of
    the largest support in the chunk, so the cost falls as the layer gets sparser).
    """
    a = refit(stats, support, ridge=ridge)
    gram = stats.gram.double()
    groups, d, mg = support.shape
    diag = torch.ones(groups, mg, d, dtype=torch.float64)
    for g in range(groups):
        lam = ridge * float(gram[g].diagonal().mean()) + 1e-12
        h = gram[g] + lam * torch.eye(d, dtype=torch.float64)
        for start in range(0, mg, chunk):
            s = support[g, :, start:start + chunk].T  # [m, D]
            width = int(s.sum(1).max())
            if width == 0:
                continue
            # each filter's support first (padding: identity rows, so H stays SPD)
            idx = torch.sort(s.to(torch.int8), dim=1, descending=True,
                             stable=True).indices[:, :width]
            valid = torch.gather(s, 1, idx).double()  # [m, width]
            hm = h[idx[:, :, None], idx[:, None, :]] * (valid[:, :, None] * valid[:, None, :])
            hm = hm + torch.diag_embed(1 - valid)
            factor = torch.linalg.cholesky(hm)
            eye = torch.eye(width, dtype=torch.float64).expand_as(factor)
            inv = torch.linalg.solve_triangular(factor, eye, upper=False)
            diag[g, start:start + chunk].scatter_(1, idx, inv.square().sum(-2))
    cost = a.square() / diag.permute(0, 2, 1)
    return cost.masked_fill(~support, math.inf)
