"""One variant of bench/cuda/qfix-diag-emit.mjs checked against the float32 reference on small
shapes, in its own process (a GPU fault kills the CUDA context): prints PASS, FAIL or FAULT.
    python3 bench/cuda/qfix-check.py bench/build/qfix-diag qp_int8_full_orig"""
import importlib.util
import json
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
spec = importlib.util.spec_from_file_location('quant_prefill', os.path.join(here, 'quant-prefill.py'))
qp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(qp)
from artifact import Kernel  # noqa: E402


def main():
    build, name = sys.argv[1], sys.argv[2]
    e = next(x for x in json.load(open(os.path.join(build, 'index.json'))) if x['name'] == name)
    cases = [dict(B=2, H=2, Hkv=2, Nq=129, Nk=129, D=128), dict(B=1, H=4, Hkv=2, Nq=300, Nk=777, D=128)]
    try:
        kern = Kernel(build, e)
        msgs, ok = [], True
        for c in cases:
            good, msg = qp.check_small(kern, e, c)
            ok &= good
            msgs.append(msg)
        print(f'{"PASS " if ok else "FAIL "} {name}: ' + ' | '.join(msgs), flush=True)
        sys.exit(0 if ok else 1)
    except Exception as ex:  # a fault surfaces as a launch or synchronize error
        print(f'FAULT {name}: {type(ex).__name__}: {str(ex)[:300]}', flush=True)
        sys.exit(2)


if __name__ == '__main__':
    main()
