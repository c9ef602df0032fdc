"""One profiled call per timed kernel, for Nsight Compute without replaying a whole benchmark:
run a bench under `ncu --profile-from-start off ...` with ATTNC_NCU=<regex>, and every timing whose
label matches the regex first runs its function once between cudaProfilerStart and Stop (only
those launches are profiled; everything else runs at full speed). Unset: does nothing."""
import os
import re

import torch


def profile_once(fn, label):
    pattern = os.environ.get('ATTNC_NCU')
    if not pattern or not re.search(pattern, label):
        return
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()
    print(f'ncu: profiled {label}', flush=True)
