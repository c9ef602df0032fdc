"""The staged prefill's host entries (quantPrefill 'staged', src/codegen/cuda/quant-stage.ts) through
attnc.kernel.Kernel, on the CPU: a stand-in library (g++, no CUDA) exports workspace_bytes and
launch_staged with the real signatures; Kernel finds them in the manifest's functions, sizes the
workspace, and launch_or_raise passes the workspace's pointer and byte count (or launches plainly
without one). A manifest without them (every fused kernel) has no workspace."""
import shutil
import subprocess

import pytest

from attnc.errors import LaunchError
from attnc.kernel import Kernel

FAKE = r'''
#include <stddef.h>
#include <stdio.h>
#include <string.h>
static char message[256];
static int size_at(const char* a, int i) { int x; memcpy(&x, a + SIZE_AT + 4 * i, 4); return x; }
extern "C" {
void ARGS_INIT(char* a, int B, int H, int Hkv, int Nq, int Nk) {
  memset(a, 0, BYTES);
  int sizes[5] = {B, H, Hkv, Nq, Nk};
  for (int i = 0; i < 5; i++) memcpy(a + SIZE_AT + 4 * i, &sizes[i], 4);
}
size_t SUMMARY(const char*) { return 2; }
int LAUNCH(const char*, void*) { strcpy(message, "fused"); return 0; }
size_t WS_BYTES(const char* a) { return (size_t)size_at(a, 0) * size_at(a, 2) * size_at(a, 4) * 256 * 2; }
int LAUNCH_STAGED(const char* a, void* ws, size_t bytes, void* stream) {
  if (ws == NULL) { snprintf(message, sizeof message, "workspace is NULL (needs %zu bytes)", WS_BYTES(a)); return 1; }
  snprintf(message, sizeof message, "staged ws=%p bytes=%zu stream=%p", ws, bytes, stream);
  return 0;
}
const char* LAST_ERROR(void) { return message; }
}
'''


class Buffer:
    """What launch_or_raise reads of a torch tensor: its pointer and size."""

    def __init__(self, ptr, n):
        self.ptr, self.n = ptr, n

    def data_ptr(self):
        return self.ptr

    def numel(self):
        return self.n

    def element_size(self):
        return 1


def staged_library(m, tmp_path):
    gxx = shutil.which('g++')
    assert gxx, 'g++ is missing (scripts/setup-system.sh installs it)'
    at = {f['name']: f['offset'] for f in m.fields}
    fn = m.functions
    defines = dict(
        BYTES=m.struct_bytes, SIZE_AT=at['B'], ARGS_INIT=fn['argsInit'], SUMMARY=fn['summaryElems']['doc'],
        LAUNCH=fn['launch'], LAST_ERROR=fn['lastError'], WS_BYTES='attnc_x_workspace_bytes', LAUNCH_STAGED='attnc_x_launch_staged',
    )  # fmt: skip
    src, so = tmp_path / 'staged.cpp', tmp_path / 'staged.so'
    src.write_text(FAKE)
    r = subprocess.run([gxx, '-shared', '-fPIC', *(f'-D{k}={v}' for k, v in defines.items()), '-o', str(so), str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return str(so)


def test_staged_entries_size_and_take_the_workspace(manifests, tmp_path):
    m = manifests['document']
    so = staged_library(m, tmp_path)
    assert Kernel(m, so).workspace_size(Kernel(m, so).new_args(dict(B=1, H=1, Hkv=1, Nq=1, Nk=1))) is None
    m.functions['workspaceBytes'] = 'attnc_x_workspace_bytes'
    m.functions['launchStaged'] = 'attnc_x_launch_staged'
    kern = Kernel(m, so)
    args = kern.new_args(dict(B=2, H=8, Hkv=2, Nq=300, Nk=333))
    assert kern.workspace_size(args) == 2 * 2 * 333 * 256 * 2
    with pytest.raises(LaunchError, match=r'^document: launch failed \(code 1\): workspace is NULL \(needs 681984 bytes\)$'):
        kern.launch_or_raise(args, 0, Buffer(0, 0))
    kern.launch_or_raise(args, 0x30, Buffer(0x1000, 681984))
    assert kern.err().decode() == 'staged ws=0x1000 bytes=681984 stream=0x30'
    kern.launch_or_raise(args, 0)
    assert kern.err().decode() == 'fused'


def test_a_manifest_naming_a_missing_staged_entry_is_refused(manifests, tmp_path):
    m = manifests['document']
    so = staged_library(m, tmp_path)
    m.functions['launchStaged'] = 'attnc_y_launch_staged'
    with pytest.raises(LaunchError, match=r'document: the library exports no attnc_y_launch_staged'):
        Kernel(m, so)
