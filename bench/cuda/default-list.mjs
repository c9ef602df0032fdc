// The stdlib kernels of stdlib-list.mjs at the schedules the schedule pass picks by itself (the
// CLI's choice), named `std_NAME__default`: for checking and timing a changed default.
//   npm run build && node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
//   ONLY=std_document__default BUILD=bench/build/cuda-default bash bench/cuda/run-table.sh 16384
import stdlib from './stdlib-list.mjs';

// `pattern` (the stdlib name) is what bench/cuda/table.py groups timings by: without it the table
// timed nothing (device call 20, round 20). Names outside table.py's PATTERNS are checked, not timed.
export default stdlib.map((e) => ({
  ...e,
  name: `${e.name}__default`,
  pattern: e.name.replace(/^std_/, ''),
  defaultSchedule: true,
}));
