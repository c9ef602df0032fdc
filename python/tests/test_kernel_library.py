"""The ctypes side of a built library, on the CPU: a stand-in library (g++, no CUDA) exports the
manifest's functions with the real signatures, so args_init, the scratch sizes and launch's error
path go through attnc.kernel.Kernel exactly as with a .cu built by nvcc."""
import shutil
import subprocess

import pytest

from attnc.errors import ArgumentError, LaunchError
from attnc.kernel import Kernel

FAKE = r'''
#include <stddef.h>
#include <string.h>
static char message[256];
extern "C" {
void ARGS_INIT(char* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, BYTES);
  int sizes[5] = {B, H, Hkv, Nq, Nk};
  for (int i = 0; i < 5; i++) memcpy(a + SIZE_AT + 4 * i, &sizes[i], 4);
  int q_offset = Nk - Nq;
  memcpy(a + Q_OFFSET_AT, &q_offset, 4);
  float scale = 0.125f;
  memcpy(a + SCALE_AT, &scale, 4);
}
size_t SUMMARY(const char* a) { int Nk; memcpy(&Nk, a + SIZE_AT + 16, 4); return (size_t)((Nk + 15) / 16) * 2; }
int LAUNCH(const char* a, void* stream) {
  void* q; memcpy(&q, a, sizeof q);
  if (q == NULL) { strcpy(message, "q, k, v and out must be non-NULL and 16-byte aligned"); return 1; }
  strcpy(message, stream ? "" : "launched on stream 0");
  return 0;
}
const char* LAST_ERROR(void) { return message; }
}
'''


def fake_library(m, tmp_path, skip=None):
    gxx = shutil.which('g++')
    assert gxx, 'g++ is missing (scripts/setup-system.sh installs it)'
    at = {f['name']: f['offset'] for f in m.fields}
    fn = m.functions
    defines = dict(
        BYTES=m.struct_bytes, SIZE_AT=at['B'], Q_OFFSET_AT=at['q_offset'], SCALE_AT=at['scale'],
        ARGS_INIT=fn['argsInit'], SUMMARY=fn['summaryElems']['doc'], LAUNCH=fn['launch'], LAST_ERROR=fn['lastError'],
    )  # fmt: skip
    if skip:
        defines[skip] = 'unused_' + skip.lower()
    src, so = tmp_path / 'fake.cpp', tmp_path / 'fake.so'
    src.write_text(FAKE)
    flags = [f'-D{k}={v}' for k, v in defines.items()]
    r = subprocess.run([gxx, '-shared', '-fPIC', *flags, '-o', str(so), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return str(so)


def test_args_init_scratch_sizes_and_launch(manifests, tmp_path):
    m = manifests['document']
    kern = Kernel(m, fake_library(m, tmp_path))
    args = kern.new_args(dict(B=2, H=8, Hkv=2, Nq=100, Nk=333))
    assert (args.B, args.H, args.Hkv, args.Nq, args.Nk, args.q_offset, args.k_offset, args.scale) == (2, 8, 2, 100, 333, 233, 0, 0.125)
    assert kern.summary_sizes(args) == {'doc': (42, 'i32')}
    assert kern.route_scratch_size(args) is None
    with pytest.raises(LaunchError, match=r'^document: launch failed \(code 1\): q, k, v and out must be non-NULL and 16-byte aligned$'):
        kern.launch_or_raise(args, 0)
    kern.set_pointer(args, 'q', 0x1000)
    assert kern.launch(args, 0) == (0, 'launched on stream 0')
    kern.launch_or_raise(args, 0x2000)
    with pytest.raises(ArgumentError, match=r'^document: size Nk = 2147483648 is outside \[0, 2147483647\]$'):
        kern.new_args(dict(B=1, H=1, Hkv=1, Nq=1, Nk=2**31))


def test_a_library_of_another_artifact_is_refused(manifests, tmp_path):
    m = manifests['document']
    so = fake_library(m, tmp_path, skip='SUMMARY')
    with pytest.raises(LaunchError, match=r'document: the library exports no attnc_document_summary_elems_doc \(built from another artifact\?\)'):
        Kernel(m, so)
    with pytest.raises(LaunchError, match=r'document: cannot load .*missing.so'):
        Kernel(m, str(tmp_path / 'missing.so'))
