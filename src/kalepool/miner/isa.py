"""The CPU's SIMD width as numba (LLVM) compiles for it: how many nonces the generated
kernel hashes side by side. Imported by the kernel's loader (:mod:`kalepool.miner.kernel`)
and by the generated kernel itself (:mod:`kalepool.miner._kernel`), which import nothing
else of each other."""

from __future__ import annotations

__all__ = ["probe_isa", "simd_block"]

_PROBE_IR = """
define void @wide(ptr %p, ptr %q) {
  %a = load <8 x i64>, ptr %p
  %b = load <8 x i64>, ptr %q
  %c = xor <8 x i64> %a, %b
  store <8 x i64> %c, ptr %p
  ret void
}
define void @varshift(ptr %p, ptr %q) {
  %a = load <4 x i64>, ptr %p
  %b = load <4 x i64>, ptr %q
  %c = shl <4 x i64> %a, %b
  store <4 x i64> %c, ptr %p
  ret void
}
"""


def probe_isa(cpu_name: str, features: str) -> tuple[str, int]:
    """``(simd, vector bits)`` LLVM has for this CPU name and feature string.

    Found by compiling two tiny functions for that target: a 512-bit XOR (zmm with
    AVX-512, ymm with AVX, xmm with SSE2) and a per-lane variable shift (one
    instruction, ``vpsllvq``, only from AVX2 on).
    """
    import llvmlite.binding as ll

    try:
        ll.initialize_native_target()
        ll.initialize_native_asmprinter()
        target = ll.Target.from_triple(ll.get_process_triple())
        tm = target.create_target_machine(cpu=cpu_name, features=features, opt=2)
        asm = tm.emit_assembly(ll.parse_assembly(_PROBE_IR))
    except Exception:  # pragma: no cover - an LLVM without opaque pointers, say
        return "unknown", 0
    if "zmm" in asm:
        return "avx512", 512
    if "ymm" in asm:
        return ("avx2" if "vpsllvq" in asm else "avx"), 256
    if "xmm" in asm:
        return "sse2", 128
    return "none", 0


def simd_block() -> int:
    """Nonces the kernel hashes side by side for numba's target: one vector of 64-bit lanes.

    8 with AVX-512, 4 with AVX2 (and AVX), 2 with SSE2. Read by the generated kernel
    module when it is imported, so numba's target must be settled first (:func:`load`).
    """
    from numba.core.registry import cpu_target

    codegen = cpu_target.target_context.codegen()
    _, bits = probe_isa(codegen._get_host_cpu_name(), codegen._tm_features)
    return {512: 8, 256: 4, 128: 2}.get(bits, 4)
