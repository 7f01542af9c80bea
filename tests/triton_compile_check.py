"""Compile the Triton SHM kernels for an H100 (sm_90) without a GPU and report their resources.

Run by ``tests/test_memory_triton_compile.py`` in a fresh process with ``TRITON_INTERPRET=0``
(the interpreter, which the rest of the suite uses, would not compile anything). Prints one JSON
line per kernel: the tile, the dtype, and cuobjdump's registers / stack / local memory per thread.
Uses Triton's compiler entry points (``ASTSource``, ``GPUTarget``) of the pinned version.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from rllib_shm.memory.kernels import triton_kernels
from rllib_shm.memory.kernels.triton_scan import tile_plan

TARGET = GPUTarget("cuda", 90, 32)
CUOBJDUMP = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
VECTORS = ("theta", "calib", "value", "key", "query", "reads", "grad_reads")


def compile_kernel(kernel, dtype: str, constants: dict, num_warps: int):
    types = {name: "i32" for name in ("steps", "size", "chunk", "batch")}
    signature = {name: "constexpr" if name in constants else types.get(name, f"*{dtype}" if name in VECTORS
                                                                        else "*fp32")
                 for name in kernel.arg_names}
    return triton.compile(ASTSource(kernel, signature, constants), target=TARGET, options={"num_warps": num_warps})


def resources(compiled) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        cubin = Path(folder) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        text = subprocess.run([str(CUOBJDUMP), "--dump-resource-usage", str(cubin)], capture_output=True,
                              text=True, check=True).stdout
    fields = next(line for line in text.splitlines() if "REG:" in line).split()
    return {key.lower(): int(value) for key, value in (f.split(":") for f in fields)
            if key in ("REG", "STACK", "LOCAL")}


def main() -> int:
    cases = [  # (H, dtype, forward constants, backward constants)
        (256, "fp32", {"STORE_BOUNDARIES": True}, {"HAS_GRAD_MEMORY": True, "ATOMIC": True}),
        (128, "bf16", {"STORE_BOUNDARIES": False}, {"HAS_GRAD_MEMORY": False, "ATOMIC": False}),
        (32, "fp32", None, {"HAS_GRAD_MEMORY": True, "ATOMIC": False}),
    ]
    for size, dtype, forward, backward in cases:
        plan = tile_plan(size)
        blocks = {"BLOCK_I": plan.block_rows, "BLOCK_J": plan.block_cols}
        for name, kernel, constants in (("forward", triton_kernels.shm_scan_forward, forward),
                                        ("backward", triton_kernels.shm_scan_backward, backward)):
            if constants is None:
                continue
            compiled = compile_kernel(kernel, dtype, {**blocks, **constants}, plan.num_warps)
            print(json.dumps({"kernel": name, "H": size, "dtype": dtype, "tile": [plan.block_rows, plan.block_cols],
                              "num_warps": plan.num_warps, **resources(compiled)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
