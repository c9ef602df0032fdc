// Test files that build with nvcc or g++ (test/cuda: compile checks, the CPU emulator, launcher
// programs) get 15 minutes a test: a translation unit takes 1–3 minutes on an idle 2-core CI
// machine and several times that when the machine is busy (one failed at 300 s). Everything else
// keeps the config's 2 minutes, so a hang elsewhere still fails fast.
import { expect, vi } from 'vitest';

const file = expect.getState().testPath ?? '';
if (/[\\/]test[\\/]cuda[\\/]/.test(file)) vi.setConfig({ testTimeout: 900_000, hookTimeout: 900_000 });
