# SPDX-License-Identifier: Apache-2.0
"""The acceptance check of every GEMM test (tests/test_*scaled_mm.py).

A result passes when, against the float64 reference computed from the same
FP8 codes and scales,
  1. the relative-error metric 1 - 2<x,y>/(|x|^2+|y|^2) is below 1e-5, and
  2. every element satisfies
        |out - ref| <= eps_out * |ref| + acc_eps(K) * S + tiny_out
     where S = sum_k |a_k b_k| * |scales| (reference.*_abs):
       eps_out * |ref|  one rounding to the output dtype (half an ulp is
                        eps/2; eps leaves room for the float32 epilogue);
       acc_eps(K) * S   float32 accumulation: the worst case of K float32
                        additions is K * 2^-24 * S; on the GPU the FP8
                        tensor cores add the 32 products of one MMA into the
                        accumulator with only ~12-13 bits kept, and four,
                        eight or sixteen MMAs (a 128-, 256- or 512-deep
                        chunk) run before the float32 promotion (CUTLASS's
                        promotion interval, Triton's
                        max_num_imprecise_acc). Measured on an H100
                        with 128-deep chunks: up to 2^-10.7 * S_chunk for
                        CUTLASS (M=16384, K=512) and 2^-10 for cuBLASLt
                        (K=256); allowed: 2^-9 per chunk, which the 256- and
                        512-deep chunks meet too (test_every_config, 86102e8
                        and, on an H200, b329fc2);
       tiny_out         the smallest normal of the output dtype.
A NaN anywhere (for instance an unwritten, poisoned element) fails.
"""

import torch

from vllm.custom_fp8.numerics import rel_error

REL_ERROR_LIMIT = 1e-5


def acc_eps(k: int, device: str) -> float:
    chunk = 2.0**-9 if device == "cuda" else 0.0
    return chunk + k * 2.0**-24


def check_gemm(out: torch.Tensor, ref: torch.Tensor, ref_abs: torch.Tensor, k: int) -> None:
    assert not torch.isnan(out).any(), "NaN in the output (unwritten element?)"
    got = out.double()  # compared on the output's device
    info = torch.finfo(out.dtype)
    # Results past the output range must overflow to inf of the right sign
    # (round-to-nearest: from max + ulp/2 on); a thin band around that edge
    # may go either way.
    overflow_edge = info.max * (1 + info.eps / 2)
    overflow = ref.abs() > overflow_edge * 1.001
    assert torch.equal(got[overflow], torch.sign(ref[overflow]) * float("inf")), \
        "a result past the output range did not become inf of its sign"
    checked = ref.abs() < info.max * 0.999
    got, ref, ref_abs = got[checked], ref[checked], ref_abs[checked]

    bound = info.eps * ref.abs() + acc_eps(k, out.device.type) * ref_abs + info.tiny
    err = (got - ref).abs()
    if err.numel():
        worst = int((err / bound).argmax())
        assert bool((err <= bound).all()), (
            f"elementwise bound exceeded: got {got[worst].item():.6g}, "
            f"ref {ref[worst].item():.6g}, bound {bound[worst].item():.3g}")
    metric = rel_error(got, ref)
    assert metric < REL_ERROR_LIMIT, f"relative error metric {metric:.3g} >= {REL_ERROR_LIMIT}"
