"""The BiLSTM's two paths: a masked bidirectional LSTM over nn.LSTM's own parameters, fast to train on
CPU, and nn.LSTM on a packed sequence (cuDNN) on CUDA; both give the same values.

PyTorch's CPU LSTM backward accumulates full weight gradients once per timestep (memory
bound: ~5-10 s per 64x256 batch on 2 cores). Here the input projection of all timesteps is
one GEMM, both directions step together with one batched matmul, and the recurrence stops at
the batch's longest document. Each sequence is reversed within its own length for the
backward direction, so padding never enters a state: the result equals packed nn.LSTM.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from newsclf.batching import to_device


def reverse_index(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B, T) gather index that reverses each row's first `length` positions and keeps the rest."""
    t = torch.arange(total, device=lengths.device).unsqueeze(0)  # (1, T)
    L = lengths.unsqueeze(1)  # (B, 1)
    return torch.where(t < L, L - 1 - t, t)


def masked_bilstm(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor, dropout: float, training: bool) -> torch.Tensor:
    """x (B, T, E), mask (B, T) -> (B, T, 2H); zero at padded positions."""
    B, T, _ = x.shape
    H = lstm.hidden_size
    maskb = mask.bool()
    lengths = maskb.sum(1)
    steps = int(lengths.max().item()) if B else 0
    rev = reverse_index(lengths, T)
    out = x
    for layer in range(lstm.num_layers):
        w_ih = [getattr(lstm, f"weight_ih_l{layer}{s}") for s in ("", "_reverse")]
        w_hh = torch.stack([getattr(lstm, f"weight_hh_l{layer}{s}") for s in ("", "_reverse")])  # (2, 4H, H)
        bias = [getattr(lstm, f"bias_ih_l{layer}{s}") + getattr(lstm, f"bias_hh_l{layer}{s}") for s in ("", "_reverse")]
        inputs = (out, out.gather(1, rev.unsqueeze(-1).expand_as(out)))
        gx = torch.stack([torch.addmm(bias[d], inputs[d].reshape(B * T, -1), w_ih[d].t()).view(B, T, 4 * H)
                          for d in (0, 1)])  # (2, B, T, 4H)
        h = x.new_zeros(2, B, H)
        c = x.new_zeros(2, B, H)
        w_hh_t = w_hh.transpose(1, 2)  # (2, H, 4H)
        hs = []
        gx_steps = gx[:, :, :steps].unbind(2)  # one view per step: a slice per step would make autograd
        # materialise a full (2, B, T, 4H) gradient at every step
        for t in range(steps):
            gates = torch.baddbmm(gx_steps[t], h, w_hh_t)  # (2, B, 4H)
            i, f, g, o = gates.chunk(4, dim=-1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            m = maskb[:, t].view(1, B, 1)
            c = torch.where(m, c_new, c)
            h = torch.where(m, h_new, h)
            hs.append(h_new * m)
        if steps < T:
            hs += [x.new_zeros(2, B, H)] * (T - steps)
        seq = torch.stack(hs, dim=2)  # (2, B, T, H)
        backward = seq[1].gather(1, rev.unsqueeze(-1).expand(B, T, H))
        out = torch.cat([seq[0], backward], dim=-1)  # (B, T, 2H)
        if layer < lstm.num_layers - 1 and dropout > 0:
            out = nn.functional.dropout(out, dropout, training)
    return out


def packed_bilstm(lstm: nn.LSTM, x: torch.Tensor, host_lengths: torch.Tensor) -> torch.Tensor:
    """x (B, T, E), lengths (B,) on the HOST -> (B, T, 2H) through nn.LSTM on a packed sequence (cuDNN on CUDA).

    The batch is sorted by length on the host and the two permutations go to the device from pinned
    memory without blocking (pack_padded_sequence(enforce_sorted=False) would copy its sort order from
    pageable memory, which can make the host wait for the device on every batch). Zero at padding, and
    zero for an empty row (as the masked LSTM gives), although nn.LSTM must read one step of it.
    """
    given = np.asarray(host_lengths, dtype=np.int64).reshape(-1)  # host values (a CPU tensor reads as an array)
    lengths = np.maximum(given, 1)
    order = np.argsort(-lengths, kind="stable")  # (B,) longest first
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    order_d, inverse_d = (to_device(torch.from_numpy(t), x.device) for t in (order, inverse))
    packed = nn.utils.rnn.pack_padded_sequence(x.index_select(0, order_d), torch.from_numpy(lengths[order]),
                                               batch_first=True, enforce_sorted=True)
    out, _ = lstm(packed)
    padded = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]
    padded = padded.index_select(0, inverse_d)
    if (given == 0).any():
        keep = torch.from_numpy((given > 0).astype(np.float32)).to(padded.dtype)
        padded = padded * to_device(keep, x.device).view(-1, 1, 1)
    return padded
