# SPDX-License-Identifier: Apache-2.0
"""Upstream vLLM 0.25.1's Hopper block-FP8 linear path (FlashInferFp8DeepGEMMDynamicBlockScaledKernel,
VLLM_USE_DEEP_GEMM_E8M0=1 default) with only torch, deep_gemm, flashinfer and, optionally,
vLLM's _C ops (torch.ops.load_library): the block baselines of bench_fp8_linear.py, following
the 0.25.1 sources named in each docstring. The packages come from tools/gpu/block_baselines_bundle.sh;
run as a script for a smoke test (after `source tools/gpu/block_env.sh`)."""
import os
import time

import torch

FP8, FP8_MAX = torch.float8_e4m3fn, 448.0  # get_fp8_min_max() on CUDA: (-448, 448)


def cdiv(a, b):
    return (a + b - 1) // b


def per_block_cast_to_fp8(x, block=(128, 128), use_ue8m0=True):
    """vllm/utils/deep_gemm.py per_block_cast_to_fp8 (torch.compile'd there, eager here)."""
    m, n = x.shape
    bm, bn = block
    xp = torch.zeros((cdiv(m, bm) * bm, cdiv(n, bn) * bn), dtype=x.dtype, device=x.device)
    xp[:m, :n] = x
    xv = xp.view(-1, bm, xp.size(1) // bn, bn)
    sf = xv.abs().float().amax(dim=(1, 3), keepdim=True).clamp(1e-4) / FP8_MAX
    if use_ue8m0:
        sf = torch.pow(2.0, torch.ceil(torch.log2(sf.abs())))
    xs = (xv * (1.0 / sf)).to(FP8)
    return xs.view_as(xp)[:m, :n].contiguous(), sf.view(xv.size(0), xv.size(2))


def process_weight(wq, ws, use_e8m0=True):
    """DeepGemmFp8BlockScaledMMKernel.process_weights_after_loading (also what the FlashInfer
    branch of the dynamic kernel gets): wq [N, K] e4m3fn, ws [N/128, K/128] float32 (the
    checkpoint's weight_scale_inv). E8M0: requant_weight_ue8m0_inplace (dequantize, re-quantize
    with power-of-two block scales); then deep_gemm.transform_sf_into_required_layout, which on
    SM90 for float32 (128, 128) scales only checks them (contiguous [N/128, K/128] float32)."""
    import deep_gemm
    assert wq.dtype == FP8 and ws.dtype == torch.float32
    n, k = wq.shape
    if use_e8m0:
        s = ws.repeat_interleave(128, 0).repeat_interleave(128, 1)[:n, :k]
        wq, ws = per_block_cast_to_fp8(wq.float() * s, (128, 128), use_ue8m0=True)
    ws = deep_gemm.transform_sf_into_required_layout(
        sf=ws.unsqueeze(0), mn=n, k=k, recipe=(1, 128, 128), num_groups=1, is_sfa=False,
        disable_ue8m0_cast=not use_e8m0).squeeze(0)
    return wq, ws


def _scale_buffer(m, k, tma_aligned, device):
    if tma_aligned:  # column-major, M padded to a multiple of 4 (16 B): DeepGEMM's TMA layout
        return torch.empty_strided((m, k // 128), (1, cdiv(m, 4) * 4), dtype=torch.float32, device=device)
    return torch.empty((k // 128, m), dtype=torch.float32, device=device).permute(-1, -2)


def quant_act(x, use_ue8m0=True, tma_aligned=True):
    """per_token_group_quant_fp8(x, 128, column_major_scales=True, tma_aligned_scales=...,
    use_ue8m0=...): torch.ops._C.per_token_group_fp8_quant (layout taken from the scale
    tensor's strides; the last two bools are schema dummies), else the same math in torch."""
    assert x.is_contiguous() and x.shape[-1] % 128 == 0
    m, k = x.shape
    q = torch.empty((m, k), dtype=FP8, device=x.device)
    s = _scale_buffer(m, k, tma_aligned, x.device)
    if hasattr(torch.ops._C, "per_token_group_fp8_quant"):
        torch.ops._C.per_token_group_fp8_quant(x, q, s, 128, 1e-10, -FP8_MAX, FP8_MAX, use_ue8m0,
                                               True, tma_aligned)
        return q, s
    g = x.view(m, k // 128, 128).float()
    sc = g.abs().amax(-1).clamp(min=1e-10) * (1.0 / FP8_MAX)
    if use_ue8m0:
        sc = torch.exp2(torch.ceil(torch.log2(sc)))
    q.copy_((g / sc[..., None]).clamp(-FP8_MAX, FP8_MAX).to(FP8).view(m, k))
    s.copy_(sc)
    return q, s


def dg_gemm(q, s, wq, ws, use_ue8m0=True, out=None):
    """vllm.utils.deep_gemm.fp8_gemm_nt((q, s), (wq, ws), out, is_deep_gemm_e8m0_used=...)
    = deep_gemm.fp8_gemm_nt((q, s), (wq, ws), out, disable_ue8m0_cast=not use_ue8m0)
    (c=None, recipe=None -> (1, 128, 128) on SM90, compiled_dims='nk')."""
    import deep_gemm
    if out is None:
        out = torch.empty((q.shape[0], wq.shape[0]), dtype=torch.bfloat16, device=q.device)
    deep_gemm.fp8_gemm_nt((q, s), (wq, ws), out, disable_ue8m0_cast=not use_ue8m0)
    return out


def fi_gemm(x, wq, ws):
    """vllm flashinfer_fp8_blockscale_gemm(input=x, weight=wq, weight_scale=ws, out_dtype=bf16)."""
    from flashinfer.gemm import fp8_blockscale_gemm_sm90
    return fp8_blockscale_gemm_sm90(x, wq, None, ws, out_dtype=torch.bfloat16)


def vllm_block_linear(x, wq, ws, use_e8m0=True):
    """_dynamic_flashinfer_deepgemm_blockscale_gemm_impl: M < 32 -> FlashInfer (bf16 in),
    else per_token_group_quant_fp8(column_major_scales=True, tma_aligned_scales=False) + DeepGEMM."""
    x2 = x.reshape(-1, x.shape[-1])
    if x2.shape[0] < 32:
        y = fi_gemm(x2, wq, ws)
    else:
        q, s = quant_act(x2, use_e8m0, tma_aligned=False)
        y = dg_gemm(q, s, wq, ws, use_e8m0)
    return y.view(*x.shape[:-1], wq.shape[0])


def setup_like_vllm():
    """vllm.utils.deep_gemm._lazy_init: DG_JIT_CACHE_DIR default, set_pdl(True) on SM90+."""
    os.environ.setdefault("DG_JIT_CACHE_DIR", os.path.expanduser("~/.cache/vllm/deep_gemm"))
    import deep_gemm
    if torch.cuda.get_device_capability()[0] >= 9:
        deep_gemm.set_pdl(True)
    return deep_gemm


def _main():
    lib = os.environ.get("VLLM_C_LIB")
    if lib:
        torch.ops.load_library(lib)
    t0 = time.time()
    dg = setup_like_vllm()
    import flashinfer
    print(f"torch {torch.__version__}, deep_gemm {dg.__version__}, flashinfer {flashinfer.__version__}, "
          f"_C quant {'upstream' if hasattr(torch.ops._C, 'per_token_group_fp8_quant') else 'torch copy'}; "
          f"imports {time.time() - t0:.1f} s", flush=True)
    torch.manual_seed(0)
    n, k = 1024, 2048
    w = torch.randn(n, k, device="cuda") * 0.02
    wq0, ws0 = per_block_cast_to_fp8(w, use_ue8m0=False)  # checkpoint-like: float32 block scales
    wq, ws = process_weight(wq0.clone(), ws0.clone(), use_e8m0=True)
    assert ws.dtype == torch.float32 and ws.shape == (n // 128, k // 128) and ws.is_contiguous()
    assert bool((torch.log2(ws) == torch.round(torch.log2(ws))).all()), "scales not powers of two"

    def deq(q, s):
        return q.float() * s.repeat_interleave(128, 0).repeat_interleave(128, 1)[: q.shape[0], : q.shape[1]]

    def rel(y, ref):
        return ((y.double() - ref).norm() / ref.norm()).item()

    def deq_act(q, s):
        return (q.float().view(q.shape[0], -1, 128) * s[..., None]).view(q.shape).double()

    w_e8m0, ok = deq(wq, ws).double(), True
    for m in (1, 8, 31, 32, 64, 257):
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        t0 = time.time()
        y = vllm_block_linear(x, wq, ws)
        torch.cuda.synchronize()
        dt = time.time() - t0
        # against the unquantized activation: FP8 activations with power-of-two scales give ~3e-2
        err = rel(y, x.double() @ w_e8m0.t())
        ok &= err < 6e-2 and bool(torch.isfinite(y).all())
        line = f"M={m:4d} {'flashinfer' if m < 32 else 'deep_gemm '} rel.err {err:.2e}"
        if m >= 32:  # against the same quantized operands in float64: bf16 output rounding only
            q, s = quant_act(x, True, tma_aligned=False)
            errq = rel(y, deq_act(q, s) @ w_e8m0.t())
            ok &= errq < 5e-3
            line += f", vs quantized operands {errq:.2e}"
        print(f"{line}; first call {dt:.1f} s", flush=True)
    x = torch.randn(64, k, device="cuda", dtype=torch.bfloat16)
    q, s = quant_act(x, use_ue8m0=False, tma_aligned=True)
    y = dg_gemm(q, s, wq0, ws0, use_ue8m0=False)  # plain float32 scales, no E8M0 anywhere
    errq = rel(y, deq_act(q, s) @ deq(wq0, ws0).double().t())
    ok &= errq < 5e-3
    print(f"M=  64 deep_gemm float32 scales, vs quantized operands {errq:.2e}")
    print("block baselines smoke test:", "PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    _main()
