// `attnc doctor [--install-lavapipe] [--json]`: what this machine offers attnc (Node, the optional
// `webgpu` package, a WebGPU adapter and its features and limits, Vulkan drivers, nvcc) and what to
// do about each missing piece. Exit 0 when kernels can run here, 1 when not (a script can branch
// on it). --install-lavapipe first installs a CPU Vulkan driver on Debian/Ubuntu, then reports.
import { homedir } from 'node:os';
import { lavapipeDir } from '../../runtime/lavapipe.js';
import { EXIT } from '../exit.js';
import { head, writeJson } from '../json.js';
import { install, machineContext } from './install-lavapipe.js';
import { machineProbes, type DoctorProbes } from './probes.js';
import { examine, renderReport } from './report.js';

export interface DoctorFlags {
  'install-lavapipe'?: boolean | undefined;
  json?: boolean | undefined;
}

export async function doctorCommand(f: DoctorFlags, probes: DoctorProbes = machineProbes): Promise<number> {
  let installed: string | undefined;
  if (f['install-lavapipe']) {
    // Progress lines and apt's own output go to stderr: stdout carries the report.
    const log = (line: string) => process.stderr.write(`${line}\n`);
    installed = install(machineContext(lavapipeDir(process.env, homedir()), probes.distro()), log);
    log(`installed ${installed}`);
  }
  const report = await examine(probes);
  const code = report.canRunKernels ? EXIT.ok : EXIT.userError;
  if (f.json) writeJson({ ...head('doctor', code), ...(installed ? { installed } : {}), ...report });
  else process.stdout.write(renderReport(report));
  return code;
}
